package dev.vhostdevice.vsock;

import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.readable;
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.writable;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The data path allocates nothing per packet: the bytes this thread (the device's worker here) allocates while
 * the device moves packets both ways on a warmed-up connection, counted by the JVM (not timed).
 */
class VsockAllocationTest {
    private static final int PACKETS = 10_000;
    private static final int PAYLOAD = 4096;

    @TempDir
    Path dir;

    @Test
    void steadyStateTxAndRxAllocateNothingPerPacket() throws Exception {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        try (VsockRig rig = new VsockRig(dir, VmConfig.DEFAULT_TX_BUFFER_SIZE); Arena arena = Arena.ofConfined()) {
            int listener = UnixPeer.listen(rig.udsPort(5000), HostSockets.SOCK_STREAM);
            rig.postRx(1);
            rig.sendOp(40000, 5000, VsockPacket.TYPE_STREAM, VsockPacket.OP_REQUEST, 0, new byte[0], Integer.MAX_VALUE, 0);
            rig.awaitOp(VsockPacket.OP_RESPONSE);
            UnixPeer host = UnixPeer.accept(listener, 5000);
            UnixPeer.SOCKETS.close(listener);
            long h = rig.write(VsockRig.header(VsockRig.GUEST_CID, VsockPacket.VMADDR_CID_HOST, 40000, 5000, PAYLOAD,
                    VsockPacket.TYPE_STREAM, VsockPacket.OP_RW, 0, Integer.MAX_VALUE, 0));
            int txHead = rig.tx.prepare(readable(h, VsockPacket.HEADER_SIZE), readable(rig.write(new byte[PAYLOAD]),
                    PAYLOAD));
            int[] rxHeads = new int[32];
            for (int i = 0; i < rxHeads.length; i++) {
                rxHeads[i] = rig.rx.prepare(writable(rig.write(new byte[VsockPacket.HEADER_SIZE + PAYLOAD]),
                        VsockPacket.HEADER_SIZE + PAYLOAD));
            }
            MemorySegment buffer = arena.allocate(PAYLOAD);
            IoVector vector = new IoVector(arena);
            int[] rxUsed = {rig.rx.usedIdx()};
            int[] next = {0};
            Runnable round = () -> {
                try {
                    rig.tx.publish(txHead); // guest -> host
                    rig.host.kick(VsockDevice.TX_QUEUE);
                    vector.clear();
                    vector.add(buffer, 0, PAYLOAD);
                    long got = 0;
                    while (got < PAYLOAD) {
                        long n = UnixPeer.SOCKETS.receive(host.fd, vector);
                        got += Math.max(n, 0);
                    }
                    rig.rx.publish(rxHeads[next[0]++ % rxHeads.length]); // host -> guest
                    if (UnixPeer.SOCKETS.send(host.fd, vector) != PAYLOAD) {
                        throw new AssertionError("host socket full");
                    }
                    while (rig.rx.usedIdx() == rxUsed[0]) {
                        rig.pump(10);
                    }
                    rxUsed[0] = rig.rx.usedIdx();
                } catch (Exception e) {
                    throw new AssertionError(e);
                }
            };
            long tid = Thread.currentThread().threadId();
            // Warm up until the JIT has compiled every path of the round (the credit updates come every 16th
            // round): at most 20 windows of 5000 rounds.
            for (int window = 0; window < 20; window++) {
                long before = threads.getThreadAllocatedBytes(tid);
                for (int i = 0; i < 5000; i++) {
                    round.run();
                }
                if (threads.getThreadAllocatedBytes(tid) == before) {
                    break;
                }
            }
            long before = threads.getThreadAllocatedBytes(tid);
            for (int i = 0; i < PACKETS; i++) {
                round.run();
            }
            long allocated = threads.getThreadAllocatedBytes(tid) - before;
            assertTrue(allocated < PACKETS / 10, "allocated " + allocated + " bytes for " + PACKETS
                    + " packets each way (under 0.1 B per round)");
            assertEquals(0, rig.device.complaints(VsockDevice.Complaint.OVER_CREDIT));
            host.close();
        }
    }
}
