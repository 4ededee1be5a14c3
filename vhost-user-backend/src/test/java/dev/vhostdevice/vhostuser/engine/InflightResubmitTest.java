package dev.vhostdevice.vhostuser.engine;

import static dev.vhostdevice.vhostuser.engine.FrontendSteps.VERSION_1;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.await;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.awaitIdle;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.memoryTable;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.negotiate;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.startRing;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.*;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.le;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.vringState;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.device.DeviceQueue;
import dev.vhostdevice.vhostuser.device.VirtioDevice;
import dev.vhostdevice.vhostuser.protocol.MessageHeader;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import dev.vhostdevice.vhostuser.server.ServerOptions;
import dev.vhostdevice.vhostuser.server.VhostUserServer;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.vhostuser.testkit.GuestFixture;
import dev.vhostdevice.vhostuser.testkit.MiniFrontend;
import dev.vhostdevice.virtqueue.Chain;
import dev.vhostdevice.virtqueue.memory.MemoryMapper;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * GET_INFLIGHT_FD / SET_INFLIGHT_FD over a real socket and memfd: a back-end that goes away while its device
 * holds chains is followed by a fresh one that gets the same buffer back and resubmits exactly what was in
 * flight, in submission order, and nothing that had completed.
 */
class InflightResubmitTest {
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final long PROTOCOL = ProtocolFeature.maskOf(ProtocolFeature.INFLIGHT_SHMFD, ProtocolFeature.REPLY_ACK,
            ProtocolFeature.MQ);
    private static final int QUEUES = 2;
    private static final byte HOLD = 'H';
    private static final byte COMPLETE = 'C';

    /** Holds chains whose first request byte is 'H' (first connection only), completes the rest at once. */
    static final class HoldingDevice implements VirtioDevice {
        final boolean holds;
        final List<Integer> popped = new CopyOnWriteArrayList<>();
        final List<Integer> held = new CopyOnWriteArrayList<>();
        private final Chain chain = new Chain();
        private final byte[] first = new byte[1];

        HoldingDevice(boolean holds) {
            this.holds = holds;
        }

        @Override
        public int queueCount() {
            return QUEUES;
        }

        @Override
        public int maxQueueSize() {
            return 256;
        }

        @Override
        public long deviceFeatures() {
            return 0;
        }

        @Override
        public void handleQueue(DeviceQueue queue) {
            while (queue.pop(chain)) {
                popped.add(chain.head());
                chain.reader().read(first, 0, 1);
                if (holds && first[0] == HOLD) {
                    held.add(chain.head()); // never completed: the back-end "dies" with it in flight
                } else {
                    chain.writer().write(first, 0, 1);
                    queue.complete(chain);
                }
            }
        }
    }

    @TempDir
    Path dir;
    VhostUserServer server;
    final List<HoldingDevice> devices = new CopyOnWriteArrayList<>();
    GuestFixture guest;
    final Linux linux = Linux.system();

    @BeforeEach
    void start() throws Exception {
        server = VhostUserServer.start(dir.resolve("vu.sock"), () -> {
            HoldingDevice d = new HoldingDevice(devices.isEmpty());
            devices.add(d);
            return d;
        });
        guest = new GuestFixture();
    }

    @AfterEach
    void stop() {
        server.close();
        guest.close();
    }

    private static byte[] inflightRequest(long mmapSize, int queues, int queueSize) {
        return le(24).putLong(mmapSize).putLong(0).putShort((short) queues).putShort((short) queueSize).array();
    }

    @Test
    void getInflightFdHandsOutAZeroFilledSealedBufferCoveringEveryQueue() throws Exception {
        try (MiniFrontend fe = new MiniFrontend(server.socketPath())) {
            negotiate(fe, PROTOCOL, VERSION_1);
            MiniFrontend.Reply reply = fe.call(GET_INFLIGHT_FD, 0, inflightRequest(0, QUEUES, 16));
            long mmapSize = ByteBufferLE.u64(reply.body(), 0);
            assertEquals(24, reply.body().length);
            assertEquals(QUEUES * PackedInflightRegion.stride(16), mmapSize,
                    "packed rings are offered: room for the larger packed regions");
            assertEquals(0, ByteBufferLE.u64(reply.body(), 8), "mmap_offset");
            assertTrue(reply.fd() >= 0, "the buffer's fd rides on the reply");
            try {
                assertEquals(mmapSize, Files.size(Path.of("/proc/self/fd/" + reply.fd())));
                assertEquals(MemoryMapper.SEALS_FIXED_SIZE, MemoryMapper.system().seals(reply.fd()) & MemoryMapper.SEALS_FIXED_SIZE,
                        "sealed against grow, shrink and further seals");
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment buffer = MemoryMapper.system().map(reply.fd(), 0, mmapSize, arena);
                    for (long i = 0; i < mmapSize; i++) {
                        assertEquals(0, buffer.get(ValueLayout.JAVA_BYTE, i), "zero-filled at " + i);
                    }
                }
            } finally {
                linux.close(reply.fd());
            }
        }
    }

    @Test
    void withoutPackedRingsOfferedTheBufferHasTheSplitLayoutsSize() throws Exception {
        try (VhostUserServer splitOnly = VhostUserServer.start(dir.resolve("split.sock"), () -> new HoldingDevice(false),
                ServerOptions.DEFAULTS.withPackedRing(false));
             MiniFrontend fe = new MiniFrontend(splitOnly.socketPath())) {
            negotiate(fe, PROTOCOL, VERSION_1);
            MiniFrontend.Reply reply = fe.call(GET_INFLIGHT_FD, 0, inflightRequest(0, QUEUES, 16));
            linux.close(reply.fd());
            assertEquals(QUEUES * InflightQueueRegion.stride(16), ByteBufferLE.u64(reply.body(), 0));
        }
    }

    @Test
    void aBadInflightRequestGetsMmapSizeZeroAndNoFd() throws Exception {
        try (MiniFrontend fe = new MiniFrontend(server.socketPath())) {
            negotiate(fe, PROTOCOL, VERSION_1);
            MiniFrontend.Reply reply = fe.call(GET_INFLIGHT_FD, 0, inflightRequest(0, QUEUES, 24));
            assertEquals(0, ByteBufferLE.u64(reply.body(), 0), "mmap_size 0 means unsupported");
            assertEquals(-1, reply.fd());
            assertNotEquals(0, fe.getU64(GET_FEATURES), "the connection stays");
        }
    }

    @Test
    void aRestartedBackendResubmitsExactlyTheHeldChainsInSubmissionOrder() throws Exception {
        int inflightFd;
        long mmapSize;
        // Six completed chains (heads 0..10) come first, so the held ones wrap: pop order differs from head order.
        int heldA = 12;
        int heldB = 0;
        int heldC = 2;
        try (MiniFrontend fe = new MiniFrontend(server.socketPath())) {
            negotiate(fe, PROTOCOL, VERSION_1);
            MiniFrontend.Reply reply = fe.call(GET_INFLIGHT_FD, 0, inflightRequest(0, QUEUES, GuestFixture.RING_SIZE));
            inflightFd = reply.fd();
            mmapSize = ByteBufferLE.u64(reply.body(), 0);
            memoryTable(fe, guest);
            assertEquals(0, fe.ack(SET_INFLIGHT_FD, inflightRequest(mmapSize, QUEUES, GuestFixture.RING_SIZE), inflightFd));
            startRing(fe, guest, 0, guest.ring, 0, guest.kick, guest.call);
            for (int i = 0; i < 6; i++) {
                guest.ring.add(new byte[] {COMPLETE}, 4);
            }
            guest.kick();
            guest.awaitUsed(6);
            assertEquals(heldA, guest.ring.add(new byte[] {HOLD}, 4));
            int done = guest.ring.add(new byte[] {COMPLETE}, 4);
            assertEquals(heldB, guest.ring.add(new byte[] {HOLD}, 4));
            assertEquals(heldC, guest.ring.add(new byte[] {HOLD}, 4));
            guest.kick();
            guest.awaitUsed(7);
            HoldingDevice first = devices.getFirst();
            await(() -> first.popped.size() == 10, "the first device popped all ten chains");
            assertEquals(List.of(heldA, heldB, heldC), first.held);
            assertEquals(done, guest.ring.usedId(6));
        } // the front-end goes away while three chains are in flight
        awaitIdle(server, 1);
        assertEquals(7, guest.ring.usedIdx(), "nothing held was completed at disconnect");

        try (MiniFrontend fe = new MiniFrontend(server.socketPath())) {
            negotiate(fe, PROTOCOL, VERSION_1);
            memoryTable(fe, guest);
            assertEquals(0, fe.ack(SET_INFLIGHT_FD, inflightRequest(mmapSize, QUEUES, GuestFixture.RING_SIZE), inflightFd));
            // QEMU restores the base from the used index when the back-end could not answer GET_VRING_BASE.
            startRing(fe, guest, 0, guest.ring, 7, guest.kick, guest.call);
            guest.awaitUsed(10);
            HoldingDevice second = devices.get(1);
            assertEquals(List.of(heldA, heldB, heldC), second.popped, "resubmitted in submission order, once each");
            assertEquals(List.of(heldA, heldB, heldC), List.of(guest.ring.usedId(7), guest.ring.usedId(8),
                    guest.ring.usedId(9)));

            int fresh = guest.ring.add(new byte[] {COMPLETE}, 4);
            guest.kick();
            guest.awaitUsed(11);
            assertEquals(List.of(heldA, heldB, heldC, fresh), second.popped, "a new chain is popped once, after them");
            assertEquals(11, fe.call(GET_VRING_BASE, vringState(0, 0)).u32(4), "next avail after the resubmission");
        } finally {
            linux.close(inflightFd);
        }
    }

    @Test
    void anInterruptedLastBatchIsNotResubmitted() throws Exception {
        int inflightFd;
        long mmapSize;
        int completedHead;
        try (MiniFrontend fe = new MiniFrontend(server.socketPath())) {
            negotiate(fe, PROTOCOL, VERSION_1);
            MiniFrontend.Reply reply = fe.call(GET_INFLIGHT_FD, 0, inflightRequest(0, QUEUES, GuestFixture.RING_SIZE));
            inflightFd = reply.fd();
            mmapSize = ByteBufferLE.u64(reply.body(), 0);
            memoryTable(fe, guest);
            fe.ack(SET_INFLIGHT_FD, inflightRequest(mmapSize, QUEUES, GuestFixture.RING_SIZE), inflightFd);
            startRing(fe, guest, 0, guest.ring, 0, guest.kick, guest.call);
            int held = guest.ring.add(new byte[] {HOLD}, 4);
            completedHead = guest.ring.add(new byte[] {COMPLETE}, 4);
            guest.kick();
            guest.awaitUsed(1);
            await(() -> devices.getFirst().held.size() == 1, "one chain held");
            assertEquals(0, held);
        }
        awaitIdle(server, 1);
        // Rewind the buffer to "used entry published, not yet recorded": the back-end died between the two.
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment queue0 = MemoryMapper.system().map(inflightFd, 0, mmapSize, arena);
            assertEquals(completedHead, Short.toUnsignedInt(queue0.get(U16, 12)), "last_batch_head");
            assertEquals(1, Short.toUnsignedInt(queue0.get(U16, 14)), "used_idx recorded");
            queue0.set(ValueLayout.JAVA_BYTE, InflightQueueRegion.HEADER + 16L * completedHead, (byte) 1);
            queue0.set(U16, 14, (short) 0);
        }
        try (MiniFrontend fe = new MiniFrontend(server.socketPath())) {
            negotiate(fe, PROTOCOL, VERSION_1);
            memoryTable(fe, guest);
            fe.ack(SET_INFLIGHT_FD, inflightRequest(mmapSize, QUEUES, GuestFixture.RING_SIZE), inflightFd);
            startRing(fe, guest, 0, guest.ring, 1, guest.kick, guest.call);
            guest.awaitUsed(2);
            Thread.sleep(50);
            assertEquals(List.of(0), devices.get(1).popped, "only the held chain; the published one is not redone");
            assertEquals(2, guest.ring.usedIdx());
        } finally {
            linux.close(inflightFd);
        }
    }

    @Test
    void setInflightFdWhileARingRunsIsRefused() throws Exception {
        try (MiniFrontend fe = new MiniFrontend(server.socketPath())) {
            negotiate(fe, PROTOCOL, VERSION_1);
            MiniFrontend.Reply reply = fe.call(GET_INFLIGHT_FD, 0, inflightRequest(0, QUEUES, GuestFixture.RING_SIZE));
            long mmapSize = ByteBufferLE.u64(reply.body(), 0);
            try {
                memoryTable(fe, guest);
                startRing(fe, guest, 0, guest.ring, 0, guest.kick, guest.call);
                long ack = fe.ack(SET_INFLIGHT_FD, inflightRequest(mmapSize, QUEUES, GuestFixture.RING_SIZE), reply.fd());
                assertNotEquals(0, ack);
                assertEquals(MessageHeader.VERSION | MessageHeader.REPLY, fe.call(GET_FEATURES, new byte[0]).flags());
            } finally {
                linux.close(reply.fd());
            }
        }
    }
}
