package dev.vhostdevice.vsock;

import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.readable;
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.writable;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
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
 * The vsock device's data paths over a driver-side test ring (no guest, no vhost-user socket), with a real Unix
 * socket on the host side: {@link #tx} a guest packet of {@code payload} bytes written to the host socket,
 * {@link #rx} {@code payload} host bytes read into a guest RX buffer. The driver re-publishes prepared
 * descriptors, and the host end moves bytes through the same native seam into a reused buffer, so
 * {@code gc.alloc.rate.norm} is the device's own allocation per packet. Multiply ops/s by {@code payload} for
 * bytes per second.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class VsockPathBench {
    static final int BATCH = 16;
    private static final int GUEST_PORT = 40000;
    private static final int HOST_PORT = 5000;

    @Param({"4096", "65536"})
    int payload;

    private Path dir;
    private VsockRig rig;
    private UnixPeer host;
    private int txHead;
    private int creditHead;
    private final ArrayDeque<Integer> rxPublished = new ArrayDeque<>();
    private int rxUsedSeen;
    private int txUsedSeen;
    private final Arena arena = Arena.ofShared();
    private MemorySegment hostBuffer;
    private IoVector hostVector;
    private long rxBytes;
    private long creditGpa;

    @Setup(Level.Trial)
    public void start() throws Exception {
        dir = Files.createTempDirectory("vsock-bench");
        rig = new VsockRig(dir, VmConfig.DEFAULT_TX_BUFFER_SIZE);
        int listener = UnixPeer.listen(rig.udsPort(HOST_PORT), HostSockets.SOCK_STREAM);
        rig.postRx(1);
        rig.sendOp(GUEST_PORT, HOST_PORT, VsockPacket.TYPE_STREAM, VsockPacket.OP_REQUEST, 0, new byte[0],
                Integer.MAX_VALUE, 0);
        rig.awaitOp(VsockPacket.OP_RESPONSE);
        host = UnixPeer.accept(listener, 5000);
        UnixPeer.SOCKETS.close(listener);
        rig.drainTxUsed();
        txUsedSeen = rig.tx.usedIdx();
        rxUsedSeen = rig.rx.usedIdx();
        // TX: one prepared chain, header + payload, published again and again.
        long h = rig.write(VsockRig.header(VsockRig.GUEST_CID, VsockPacket.VMADDR_CID_HOST, GUEST_PORT, HOST_PORT,
                payload, VsockPacket.TYPE_STREAM, VsockPacket.OP_RW, 0, Integer.MAX_VALUE, 0));
        long p = rig.write(new byte[payload]);
        txHead = rig.tx.prepare(readable(h, VsockPacket.HEADER_SIZE), readable(p, payload));
        creditGpa = rig.write(new byte[VsockPacket.HEADER_SIZE]);
        creditHead = rig.tx.prepare(readable(creditGpa, VsockPacket.HEADER_SIZE));
        // RX: buffers as Linux posts them (one writable descriptor: header and payload).
        for (int i = 0; i < 64; i++) {
            long at = rig.write(new byte[VsockPacket.HEADER_SIZE + payload]);
            int head = rig.rx.prepare(writable(at, VsockPacket.HEADER_SIZE + payload));
            rig.rx.publish(head);
            rxPublished.addLast(head);
        }
        rig.host.kick(VsockDevice.RX_QUEUE);
        hostBuffer = arena.allocate(1 << 20);
        hostVector = new IoVector(arena);
    }

    /** RX buffers the device filled, handed back in the order they were used. */
    private void recycleRx() {
        int used = rig.rx.usedIdx();
        while (rxUsedSeen != used) {
            int head = rxPublished.pollFirst();
            rig.rx.publish(head);
            rxPublished.addLast(head);
            rxUsedSeen = (rxUsedSeen + 1) & 0xFFFF;
        }
    }

    private void drainHost(long bytes) throws Exception {
        long left = bytes;
        while (left > 0) {
            hostVector.clear();
            hostVector.add(hostBuffer, 0, Math.min(left, hostBuffer.byteSize()));
            long n = UnixPeer.SOCKETS.receive(host.fd, hostVector);
            if (n > 0) {
                left -= n;
            } else {
                rig.pump(1); // the device's ring holds the rest: let it flush
            }
        }
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void tx() throws Exception {
        // One packet per kick, read by the host at once: a guest within its credit (a batch of 64 KiB packets
        // without a reader would exceed buf_alloc, and the device rightly resets such a connection).
        for (int i = 0; i < BATCH; i++) {
            rig.tx.publish(txHead);
            rig.host.kick(VsockDevice.TX_QUEUE);
            drainHost(payload);
        }
        rig.pump(0);
        recycleRx(); // CREDIT_UPDATEs
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void rx() throws Exception {
        for (int i = 0; i < BATCH; i++) {
            hostVector.clear();
            hostVector.add(hostBuffer, 0, payload);
            while (UnixPeer.SOCKETS.send(host.fd, hostVector) != payload) {
                rig.pump(0);
                recycleRx();
            }
            rig.pump(0);
            recycleRx();
        }
        rxBytes += (long) payload * BATCH;
        if (rxBytes > 1L << 30) {
            // As a guest does: report what it consumed, so the credit never runs out.
            rxBytes = 0;
            byte[] update = VsockRig.header(VsockRig.GUEST_CID, VsockPacket.VMADDR_CID_HOST, GUEST_PORT, HOST_PORT, 0,
                    VsockPacket.TYPE_STREAM, VsockPacket.OP_CREDIT_UPDATE, 0, Integer.MAX_VALUE,
                    rig.device.txCountForBench(GUEST_PORT, HOST_PORT));
            rig.tx.write(creditGpa, update);
            rig.tx.publish(creditHead);
            rig.host.kick(VsockDevice.TX_QUEUE);
        }
    }

    @TearDown(Level.Trial)
    public void stop() throws Exception {
        host.close();
        rig.close();
        arena.close();
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        }
    }
}
