package dev.vhostdevice.vhostuser.engine;

import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.*;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.memTable;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.u64;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.vringAddr;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.vringState;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.protocol.MessageHeader;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import dev.vhostdevice.vhostuser.protocol.VirtioFeatures;
import dev.vhostdevice.vhostuser.server.VhostUserServer;
import dev.vhostdevice.vhostuser.testkit.EchoDevice;
import dev.vhostdevice.vhostuser.testkit.GuestFixture;
import dev.vhostdevice.vhostuser.testkit.MiniFrontend;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The rules real front-ends depend on, against a real server over a real socket, memfd and eventfds. */
class VhostUserEngineTest {
    static final long F30 = 1L << VirtioFeatures.VHOST_USER_F_PROTOCOL_FEATURES;
    static final long VERSION_1 = 1L << VirtioFeatures.VIRTIO_F_VERSION_1;

    @TempDir
    Path dir;
    VhostUserServer server;
    final List<EchoDevice> devices = new CopyOnWriteArrayList<>();
    GuestFixture guest;
    MiniFrontend fe;

    @BeforeEach
    void start() throws Exception {
        server = VhostUserServer.start(dir.resolve("vu.sock"), () -> {
            EchoDevice d = new EchoDevice();
            devices.add(d);
            return d;
        });
        guest = new GuestFixture();
        fe = new MiniFrontend(server.socketPath());
    }

    @AfterEach
    void stop() {
        fe.close();
        server.close();
        guest.close();
    }

    private void negotiate(boolean protocolFeatures) throws Exception {
        long features = fe.getU64(GET_FEATURES);
        if (protocolFeatures) {
            long offered = fe.getU64(GET_PROTOCOL_FEATURES);
            fe.send(SET_PROTOCOL_FEATURES, u64(offered));
            fe.send(SET_OWNER, new byte[0]);
            fe.send(SET_FEATURES, u64(VERSION_1 | F30));
        } else {
            fe.send(SET_OWNER, new byte[0]);
            fe.send(SET_FEATURES, u64(VERSION_1 | (features & 1)));
        }
    }

    private void setUpRing(int index) throws Exception {
        fe.send(SET_MEM_TABLE, memTable(0, GuestFixture.RAM_SIZE, guest.uva(0), 0), guest.memfd);
        fe.send(SET_VRING_NUM, vringState(index, GuestFixture.RING_SIZE));
        fe.send(SET_VRING_BASE, vringState(index, 0));
        fe.send(SET_VRING_ADDR, vringAddr(index, guest.uva(guest.ring.descGpa), guest.uva(guest.ring.usedGpa),
                guest.uva(guest.ring.availGpa)));
        fe.send(SET_VRING_CALL, u64(index), guest.call);
        fe.send(SET_VRING_KICK, u64(index), guest.kick);
    }

    @Test
    void getFeaturesOffersTheDeviceBitsAndTheEngineTransportBits() throws Exception {
        long features = fe.getU64(GET_FEATURES);
        assertEquals(FeatureOffer.ENGINE_VIRTIO_FEATURES | FeatureOffer.PACKED_RING | 1, features);
        long protocol = fe.getU64(GET_PROTOCOL_FEATURES);
        assertEquals(FeatureOffer.ENGINE_PROTOCOL_FEATURES | ProtocolFeature.CONFIG.mask(), protocol,
                "CONFIG offered because the device has config space; nothing above bit 17");
    }

    @Test
    void repliesRepeatTheRequestCodeWithVersionAndReplyFlag() throws Exception {
        MiniFrontend.Reply reply = fe.call(GET_FEATURES, new byte[0]);
        assertEquals(GET_FEATURES.code(), reply.request());
        assertEquals(MessageHeader.VERSION | MessageHeader.REPLY, reply.flags());
        assertEquals(8, reply.body().length);
    }

    @Test
    void withoutProtocolFeaturesRingsAreEnabledAtSetFeatures() throws Exception {
        negotiate(false);
        setUpRing(0);
        int head = guest.ring.add("hello".getBytes(), 16);
        guest.kick();
        guest.awaitUsed(1);
        assertEquals(1, guest.ring.usedIdx());
        assertEquals(head, guest.ring.usedId(0));
        assertEquals(5, guest.ring.usedLen(0));
        assertArrayEquals("olleh".getBytes(), guest.ring.written(head, 5));
        assertTrue(guest.calls() > 0, "the driver asked for interrupts, so the call fd was signalled");
    }

    @Test
    void withProtocolFeaturesAKickBeforeEnableIsProcessedWhenTheRingIsEnabled() throws Exception {
        negotiate(true);
        setUpRing(0);
        guest.ring.add("early".getBytes(), 16);
        guest.kick();
        Thread.sleep(200);
        assertEquals(0, guest.ring.usedIdx(), "a started but disabled ring produces no used entries");
        assertEquals(0, fe.ack(SET_VRING_ENABLE, vringState(0, 1)), "QEMU 10 sends ENABLE with NEED_REPLY");
        guest.awaitUsed(1);
        assertEquals(1, guest.ring.usedIdx(), "enabling re-scans the ring, so QEMU's early kick is not lost");
    }

    @Test
    void setMemTableIsAckedUnderReplyAck() throws Exception {
        negotiate(true);
        long ack = fe.ack(SET_MEM_TABLE, memTable(0, GuestFixture.RAM_SIZE, guest.uva(0), 0), guest.memfd);
        assertEquals(0, ack);
    }

    @Test
    void getVringBaseStopsTheRingAndAnswersTheNextAvailIndex() throws Exception {
        negotiate(false);
        setUpRing(0);
        for (int i = 0; i < 3; i++) {
            guest.ring.add(new byte[] {(byte) i}, 4);
        }
        guest.kick();
        guest.awaitUsed(3);
        MiniFrontend.Reply base = fe.call(GET_VRING_BASE, vringState(0, 0));
        assertEquals(0, base.u32(0));
        assertEquals(3, base.u32(4));
        guest.ring.add(new byte[] {9}, 4);
        guest.kick();
        Thread.sleep(100);
        assertEquals(3, guest.ring.usedIdx(), "a stopped ring writes no more used entries");
    }

    @Test
    void suspendAndResumeContinuesAtTheSavedIndex() throws Exception {
        negotiate(false);
        setUpRing(0);
        guest.ring.add(new byte[] {1}, 4);
        guest.ring.add(new byte[] {2}, 4);
        guest.kick();
        guest.awaitUsed(2);
        int base = fe.call(GET_VRING_BASE, vringState(0, 0)).u32(4);
        fe.send(SET_VRING_BASE, vringState(0, base));
        fe.send(SET_VRING_CALL, u64(0), guest.call);
        fe.send(SET_VRING_KICK, u64(0), guest.kick);
        guest.ring.add(new byte[] {3}, 4);
        guest.kick();
        guest.awaitUsed(3);
        assertEquals(3, guest.ring.usedIdx());
        assertEquals(2, devices.getFirst().handled.get() - 1, "chains before the stop were not handled twice");
    }

    @Test
    void ringAddressesBeforeTheMemoryTableAreRefusedWithAFailureAck() throws Exception {
        negotiate(true);
        long ack = fe.ack(SET_VRING_ADDR, vringAddr(0, 0x1000, 0x2000, 0x3000));
        assertNotEquals(0, ack);
        assertTrue(fe.getU64(GET_FEATURES) != 0, "the connection stays up");
    }

    @Test
    void ringAddressesOutsideTheTableAreRefused() throws Exception {
        negotiate(true);
        fe.ack(SET_MEM_TABLE, memTable(0, GuestFixture.RAM_SIZE, guest.uva(0), 0), guest.memfd);
        long ack = fe.ack(SET_VRING_ADDR, vringAddr(0, 0x1000, 0x2000, 0x3000)); // GPAs, not user addresses
        assertNotEquals(0, ack, "ring addresses are front-end user addresses");
    }

    @Test
    void needReplyWithoutReplyAckProducesNoUnsolicitedAck() throws Exception {
        fe.send(SET_OWNER, MessageHeader.NEED_REPLY, new byte[0]);
        MiniFrontend.Reply next = fe.call(GET_FEATURES, new byte[0]);
        assertEquals(GET_FEATURES.code(), next.request(), "the stream stays in step");
    }

    @Test
    void outOfRangeVringIndexAndBadSizesGetFailureAcks() throws Exception {
        negotiate(true);
        assertNotEquals(0, fe.ack(SET_VRING_NUM, vringState(7, 16)));
        assertNotEquals(0, fe.ack(SET_VRING_NUM, vringState(0, 0)));
        assertNotEquals(0, fe.ack(SET_VRING_NUM, vringState(0, 24)));
        assertNotEquals(0, fe.ack(SET_VRING_NUM, vringState(0, 512)));
        assertEquals(0, fe.ack(SET_VRING_NUM, vringState(0, 256)));
    }

    @Test
    void setVringEnableWithoutProtocolFeaturesIsRefused() throws Exception {
        fe.send(SET_PROTOCOL_FEATURES, u64(ProtocolFeature.REPLY_ACK.mask()));
        fe.send(SET_FEATURES, u64(VERSION_1));
        assertNotEquals(0, fe.ack(SET_VRING_ENABLE, vringState(0, 1)));
    }

    @Test
    void configReadsAndWritesGoToTheDeviceAndReadOnlyFieldsAreRefused() throws Exception {
        negotiate(true);
        byte[] request = MiniFrontend.le(12 + 4).putInt(2).putInt(4).putInt(0).putInt(0).array();
        MiniFrontend.Reply reply = fe.call(GET_CONFIG, request);
        assertEquals(16, reply.body().length);
        assertEquals(0x06050403, reply.u32(12));
        byte[] write = MiniFrontend.le(12 + 2).putInt(6).putInt(2).putInt(0).put((byte) 9).put((byte) 9).array();
        assertEquals(0, fe.ack(SET_CONFIG, write));
        byte[] readOnly = MiniFrontend.le(12 + 2).putInt(0).putInt(2).putInt(0).put((byte) 9).put((byte) 9).array();
        assertNotEquals(0, fe.ack(SET_CONFIG, readOnly));
        byte[] beyond = MiniFrontend.le(12 + 4).putInt(6).putInt(4).putInt(0).putInt(0).array();
        assertEquals(0, fe.call(GET_CONFIG, beyond).body().length, "the error reply has a zero-length payload");
    }

    @Test
    void aNewMemoryTableWhileTheRingRunsKeepsItRunning() throws Exception {
        negotiate(false);
        setUpRing(0);
        guest.ring.add(new byte[] {1}, 4);
        guest.kick();
        guest.awaitUsed(1);
        fe.send(SET_MEM_TABLE, memTable(0, GuestFixture.RAM_SIZE, guest.uva(0) + 0x10_0000_0000L, 0), guest.memfd);
        guest.ring.add(new byte[] {2}, 4);
        guest.kick();
        guest.awaitUsed(2);
        assertEquals(2, guest.ring.usedIdx());
    }

    @Test
    void aRegionLargerThanItsFileIsRefusedAndTheConnectionStays() throws Exception {
        negotiate(true);
        long ack = fe.ack(SET_MEM_TABLE, memTable(0, GuestFixture.RAM_SIZE * 2, guest.uva(0), 0), guest.memfd);
        assertNotEquals(0, ack);
        assertNotEquals(0, fe.getU64(GET_FEATURES));
    }

    @Test
    void aBrokenRingSetsDeviceNeedsResetInTheStatus() throws Exception {
        negotiate(true);
        fe.send(SET_FEATURES, u64(VERSION_1 | F30));
        setUpRing(0);
        fe.ack(SET_VRING_ENABLE, vringState(0, 1));
        guest.ram.set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, guest.ring.availGpa + 2, (short) 100);
        guest.kick();
        long deadline = System.nanoTime() + 5_000_000_000L;
        long status;
        do {
            status = fe.getU64(GET_STATUS);
        } while ((status & VirtioFeatures.STATUS_DEVICE_NEEDS_RESET) == 0 && System.nanoTime() < deadline);
        assertEquals(VirtioFeatures.STATUS_DEVICE_NEEDS_RESET, status & VirtioFeatures.STATUS_DEVICE_NEEDS_RESET);
    }

    @Test
    void resetDeviceKeepsProtocolFeaturesAndResetsTheDevice() throws Exception {
        negotiate(true);
        assertEquals(0, fe.ack(RESET_DEVICE, new byte[0]));
        assertEquals(1, devices.getFirst().resets.get());
        assertEquals(0, fe.ack(SET_OWNER, new byte[0]), "REPLY_ACK still active after RESET_DEVICE");
    }

    @Test
    void aReconnectingFrontendGetsAFreshDevice() throws Exception {
        negotiate(false);
        setUpRing(0);
        fe.close();
        fe = new MiniFrontend(server.socketPath());
        assertNotEquals(0, fe.getU64(GET_FEATURES));
        assertEquals(2, devices.size());
        assertEquals(2, server.connectionsServed());
    }
}
