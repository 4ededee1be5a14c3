package dev.vhostdevice.virtqueue.bench;

import static dev.vhostdevice.virtqueue.VirtioRing.DESCRIPTOR_SIZE;
import static dev.vhostdevice.virtqueue.VirtioRing.VIRTQ_DESC_F_INDIRECT;
import static dev.vhostdevice.virtqueue.bench.BenchRing.check;
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.readable;
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.writable;

import dev.vhostdevice.virtqueue.Chain;
import dev.vhostdevice.virtqueue.ChainReader;
import dev.vhostdevice.virtqueue.ChainWriter;
import dev.vhostdevice.virtqueue.SplitQueue;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer;
import dev.vhostdevice.virtqueue.testing.GuestAllocator;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Request round trips through one split queue, per chain: the driver re-publishes chains whose descriptors it wrote
 * once at set-up; the device pops each chain, reads its readable bytes (a 16-byte header as two little-endian longs,
 * the rest in bulk into a preallocated array), writes a 16-byte response through the writer and adds it to the used
 * ring; the driver then consumes the used entries, so the ring never fills.
 *
 * <p>Shapes ({@code shape}):
 * <ul>
 *   <li>{@code 1-desc}: one device-writable 16-byte buffer (an entropy/RX-style request: write only);</li>
 *   <li>{@code 3-desc}: readable 16-byte header, readable 64-byte payload, writable 16-byte response;</li>
 *   <li>{@code indirect-16}: one INDIRECT descriptor whose 16-entry table holds a readable 16-byte header,
 *       14 readable 64-byte buffers and a writable 16-byte response.</li>
 * </ul>
 * {@code memory} picks native memory from {@code GuestMemory.allocate} or a real shared mapping of a memfd.
 *
 * <p>{@link #batch} moves {@value #BATCH} chains per invocation: one notification decision (with its full fence) per
 * batch, as a device draining a kick does. {@link #single} does the whole round for one chain at a time, the
 * notification decision included. Both report time per chain.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {
        "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", "-Xms512m", "-Xmx512m"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class ChainBench {
    static final int QUEUE_SIZE = 256;
    static final int BATCH = 64;
    static final int HEADER = 16;
    static final int PAYLOAD = 64;
    static final int RESPONSE = 16;

    @Param({"1-desc", "3-desc", "indirect-16"})
    public String shape;

    @Param({BenchRing.ALLOCATE, BenchRing.MEMFD})
    public String memory;

    private BenchRing ring;
    private SplitQueue queue;
    private final Chain chain = new Chain();
    private final int[] heads = new int[BATCH];
    private final byte[] scratch = new byte[64 * 1024];
    private int descriptorsPerChain;
    private long readablePerChain;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        ring = new BenchRing(memory, QUEUE_SIZE);
        queue = ring.queue;
        GuestAllocator data = new GuestAllocator(BenchRing.DATA, BenchRing.MEMORY_BYTES - BenchRing.DATA);
        for (int i = 0; i < BATCH; i++) {
            heads[i] = switch (shape) {
                case "1-desc" -> ring.driver.prepare(writable(data.allocate(RESPONSE, 16), RESPONSE));
                case "3-desc" -> ring.driver.prepare(header(data), readable(data.allocate(PAYLOAD, 64), PAYLOAD),
                        writable(data.allocate(RESPONSE, 16), RESPONSE));
                case "indirect-16" -> {
                    Buffer[] table = new Buffer[16];
                    table[0] = header(data);
                    for (int b = 1; b < 15; b++) {
                        table[b] = readable(data.allocate(PAYLOAD, 64), PAYLOAD);
                    }
                    table[15] = writable(data.allocate(RESPONSE, 16), RESPONSE);
                    long tableAddress = BenchRing.TABLES + (long) i * 16 * DESCRIPTOR_SIZE;
                    ring.driver.writeIndirectTable(tableAddress, table);
                    int head = ring.driver.prepare(readable(tableAddress, 1));
                    ring.driver.writeDescriptor(head, tableAddress, 16 * DESCRIPTOR_SIZE, VIRTQ_DESC_F_INDIRECT, 0);
                    yield head;
                }
                default -> throw new IllegalArgumentException("shape: " + shape);
            };
        }
        descriptorsPerChain = switch (shape) {
            case "1-desc" -> 1;
            case "3-desc" -> 3;
            default -> 17; // the INDIRECT descriptor and its 16 entries
        };
        readablePerChain = switch (shape) {
            case "1-desc" -> 0;
            case "3-desc" -> HEADER + PAYLOAD;
            default -> HEADER + 14 * PAYLOAD;
        };
        // Prove the timed code does what it says, twice so that indices wrap past the first pass.
        for (int round = 0; round < 2; round++) {
            long expected = 0;
            for (int i = 0; i < BATCH; i++) {
                ring.publish(heads[i]);
                check(queue.pop(chain), "pop");
                check(chain.isValid(), "valid chain: " + chain);
                check(chain.head() == heads[i], "head");
                check(chain.descriptorCount() == descriptorsPerChain, "descriptors: " + chain.descriptorCount());
                check(chain.readableBytes() == readablePerChain, "readable bytes");
                check(chain.writableBytes() == RESPONSE, "writable bytes");
                serve(chain);
                check(chain.bytesWritten() == RESPONSE, "bytes written");
                queue.addUsed(chain);
                expected += BenchRing.usedChecksum(heads[i], RESPONSE);
            }
            queue.needsNotification();
            check(ring.consumeUsed() == expected, "used entries");
            check(queue.inFlightCount() == 0, "nothing in flight");
        }
    }

    private static Buffer header(GuestAllocator data) {
        return readable(data.allocate(HEADER, 16), HEADER);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        ring.close();
    }

    private long serve(Chain c) {
        return serve(c, scratch);
    }

    /** The device's work on one request: parse the header, take the payload, answer 16 bytes. */
    static long serve(Chain c, byte[] scratch) {
        ChainReader reader = c.reader();
        long h0 = 0;
        long h1 = 0;
        if (reader.remaining() >= HEADER) {
            h0 = reader.readLong();
            h1 = reader.readLong();
        }
        int rest = (int) reader.remaining();
        if (rest > 0) {
            reader.read(scratch, 0, rest);
        }
        ChainWriter writer = c.writer();
        writer.writeLong(h0 ^ c.head());
        writer.writeLong(h1 + rest);
        return h0 + scratch[0];
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public long batch() {
        BenchRing r = ring;
        SplitQueue q = queue;
        Chain c = chain;
        for (int i = 0; i < BATCH; i++) {
            r.publish(heads[i]);
        }
        long sink = 0;
        while (q.pop(c)) {
            sink += serve(c);
            q.addUsed(c);
        }
        if (q.needsNotification()) {
            sink++;
        }
        return sink + r.consumeUsed();
    }

    @Benchmark
    public long single() {
        BenchRing r = ring;
        SplitQueue q = queue;
        Chain c = chain;
        r.publish(heads[0]);
        q.pop(c);
        long sink = serve(c);
        q.addUsed(c);
        if (q.needsNotification()) {
            sink++;
        }
        return sink + r.consumeUsed();
    }
}
