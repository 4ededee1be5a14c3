package dev.vhostdevice.virtqueue.bench;

import static dev.vhostdevice.virtqueue.VirtioRing.DESCRIPTOR_SIZE;
import static dev.vhostdevice.virtqueue.VirtioRing.VIRTQ_DESC_F_INDIRECT;
import static dev.vhostdevice.virtqueue.bench.BenchRing.check;
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.readable;

import dev.vhostdevice.virtqueue.Chain;
import dev.vhostdevice.virtqueue.SplitQueue;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The cases of rust-vmm's {@code virtio-queue/benches/queue/mod.rs}, on a 256-entry queue, so that the results are
 * comparable in shape. Times are per invocation, which is one Criterion iteration there:
 * <ul>
 *   <li>{@code singleChain}: one chain of 128 descriptors (direct, or one INDIRECT descriptor with a 128-entry
 *       table), popped and its descriptors visited;</li>
 *   <li>{@code multipleChains}: 128 chains of one descriptor each (direct, or one INDIRECT descriptor with a
 *       1-entry table), popped and visited;</li>
 *   <li>{@code addUsed}: 128 used elements on a 256-entry queue.</li>
 * </ul>
 * Differences from rust-vmm, all making this side do more: the walker here validates each buffer against guest
 * memory and resolves it to a segment (rust-vmm's iterator yields raw descriptors), every popped chain is in flight
 * until completed so the walk cases also add the used elements (one notification decision per invocation), and the
 * driver re-publishes the chains and consumes the used entries inside the timed code. {@code addUsed} needs its 128
 * heads in flight: a per-invocation set-up (untimed, but JMH's per-invocation timestamps add some tens of ns per
 * invocation) walks them with {@link SplitQueue#popHead}.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {
        "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", "-Xms512m", "-Xmx512m"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class RustVmmShapesBench {
    static final int QUEUE_SIZE = 256;
    static final int COUNT = 128;

    /** {@code chains} chains of {@code descriptors} descriptors each, written once. */
    abstract static class Chains {
        BenchRing ring;
        SplitQueue queue;
        final Chain chain = new Chain();
        int[] heads;

        void build(int chains, int descriptors, boolean indirect) throws Exception {
            ring = new BenchRing(BenchRing.ALLOCATE, QUEUE_SIZE);
            queue = ring.queue;
            heads = new int[chains];
            long data = BenchRing.DATA;
            for (int i = 0; i < chains; i++) {
                Buffer[] buffers = new Buffer[descriptors];
                for (int d = 0; d < descriptors; d++) {
                    buffers[d] = readable(data, 64);
                    data += 64;
                }
                if (indirect) {
                    long table = BenchRing.TABLES + (long) i * descriptors * DESCRIPTOR_SIZE;
                    ring.driver.writeIndirectTable(table, buffers);
                    heads[i] = ring.driver.prepare(readable(table, 1));
                    ring.driver.writeDescriptor(heads[i], table, descriptors * DESCRIPTOR_SIZE,
                            VIRTQ_DESC_F_INDIRECT, 0);
                } else {
                    heads[i] = ring.driver.prepare(buffers);
                }
            }
            int expectedDescriptors = descriptors + (indirect ? 1 : 0);
            long expected = (long) chains * descriptors * 64 + chains;
            for (int head : heads) {
                expected += BenchRing.usedChecksum(head, 0);
            }
            for (int round = 0; round < 3; round++) {
                check(walk() == expected, "walk");
                check(chain.descriptorCount() == expectedDescriptors, "descriptors " + chain.descriptorCount());
                check(queue.inFlightCount() == 0, "nothing in flight");
            }
        }

        /** Publish every chain, pop each and visit its pieces, complete it; the driver takes the used entries. */
        final long walk() {
            BenchRing r = ring;
            SplitQueue q = queue;
            Chain c = chain;
            for (int head : heads) {
                r.publish(head);
            }
            long sink = 0;
            while (q.pop(c)) {
                for (int p = 0; p < c.pieceCount(); p++) {
                    sink += c.pieceLength(p);
                }
                sink++;
                q.addUsed(c.head(), 0);
            }
            q.needsNotification();
            return sink + r.consumeUsed();
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            ring.close();
        }
    }

    @State(Scope.Thread)
    public static class SingleChain extends Chains {
        @Param({"false", "true"})
        public boolean indirect;

        @Setup(Level.Trial)
        public void setUp() throws Exception {
            build(1, COUNT, indirect);
        }
    }

    @State(Scope.Thread)
    public static class MultipleChains extends Chains {
        @Param({"false", "true"})
        public boolean indirect;

        @Setup(Level.Trial)
        public void setUp() throws Exception {
            build(COUNT, 1, indirect);
        }
    }

    @State(Scope.Thread)
    public static class InFlight extends Chains {
        @Setup(Level.Trial)
        public void setUp() throws Exception {
            build(COUNT, 1, false);
        }

        @Setup(Level.Invocation)
        public void popAll() {
            for (int head : heads) {
                queue.popHead(head, chain);
            }
        }
    }

    @Benchmark
    public long singleChain(SingleChain s) {
        return s.walk();
    }

    @Benchmark
    public long multipleChains(MultipleChains s) {
        return s.walk();
    }

    @Benchmark
    public int addUsed(InFlight s) {
        SplitQueue q = s.queue;
        int[] heads = s.heads;
        for (int i = 0; i < COUNT; i++) {
            q.addUsed(heads[i], 0x1000);
        }
        return q.nextUsed();
    }
}
