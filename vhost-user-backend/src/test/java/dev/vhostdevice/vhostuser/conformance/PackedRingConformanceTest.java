package dev.vhostdevice.vhostuser.conformance;

import static dev.vhostdevice.vhostuser.frontend.RingLayout.F_RING_PACKED;
import static dev.vhostdevice.vhostuser.frontend.TestFrontend.F_LOG_ALL;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.SET_FEATURES;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.SET_VRING_ADDR;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.SET_VRING_BASE;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.SET_VRING_NUM;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.frontend.FrontendQueue;
import dev.vhostdevice.vhostuser.frontend.GuestRam;
import dev.vhostdevice.vhostuser.frontend.Msg;
import dev.vhostdevice.vhostuser.frontend.QemuDevice;
import dev.vhostdevice.vhostuser.frontend.RingLayout;
import dev.vhostdevice.vhostuser.frontend.TestFrontend;
import dev.vhostdevice.vhostuser.server.ServerOptions;
import dev.vhostdevice.vhostuser.server.VhostUserServer;
import dev.vhostdevice.virtqueue.PackedRing;
import org.junit.jupiter.api.Test;

/**
 * What is particular to packed rings on the wire (packed-ring.md §5): the offer and its switch, the packed
 * SET/GET_VRING_BASE encoding and its validation, ring sizes that are not powers of two, the three areas of
 * SET_VRING_ADDR, dirty logging of used descriptors in the descriptor ring, and the QEMU sequences with
 * {@code packed=on}. The lifecycle cases common to both layouts are in {@link RingLifecycleConformanceTest}.
 */
class PackedRingConformanceTest extends ConformanceBase {
    @Override
    RingLayout layout() {
        return RingLayout.PACKED;
    }

    @Test
    void everyDeviceIsOfferedThePackedLayout() throws Exception {
        assertTrue((fe.getFeatures() & F_RING_PACKED) != 0);
    }

    // packed-ring.md §6.2 (QEMU 7.2 acks bit 34 although it was not offered): refused, as any unoffered bit.
    @Test
    void withThePackedLayoutTurnedOffTheBitIsNotOfferedAndAnAckIsRefused() throws Exception {
        try (VhostUserServer off = VhostUserServer.start(dir.resolve("off.sock"), () -> new ProbeDevice(false),
                ServerOptions.DEFAULTS.withPackedRing(false));
             TestFrontend other = TestFrontend.connect(off.socketPath()).timeout(WAIT)) {
            long offered = other.getFeatures();
            assertEquals(0, offered & F_RING_PACKED);
            other.setProtocolFeatures(REPLY_ACK);
            long features = offered & (TestFrontend.F_VERSION_1 | TestFrontend.F_PROTOCOL_FEATURES);
            assertNotEquals(0, other.ack(SET_FEATURES, Msg.u64(features | F_RING_PACKED)), "bit 34 refused");
            assertEquals(0, other.ack(SET_FEATURES, Msg.u64(features)), "the same without it is fine");
        }
    }

    @Test
    void aPackedBaseWithASlotBeyondTheRingIsRefused() throws Exception {
        negotiateWithReplyAck(0);
        assertEquals(0, fe.ack(SET_VRING_NUM, Msg.vringState(0, 16)));
        int fresh = PackedRing.FRESH_POSITION;
        assertNotEquals(0, fe.ack(SET_VRING_BASE, Msg.vringState(0, 16 | fresh | fresh << 16)), "avail slot 16");
        assertNotEquals(0, fe.ack(SET_VRING_BASE, Msg.vringState(0, fresh | (fresh | 0x7FFF) << 16)), "used slot");
        assertEquals(0, fe.ack(SET_VRING_BASE, Msg.vringState(0, 15 | (15 << 16))), "slot 15, wraps 0: fine");
        assertEquals(0, fe.ack(SET_VRING_BASE, Msg.vringState(0, RingLayout.PACKED.freshBase())));
    }

    @Test
    void aRingOfThreeEntriesServesLapAfterLap() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = fe.startQueue(0, 3);
        fe.setVringEnable(0, true);
        for (int i = 0; i < 7; i++) {
            roundTrip(q, "lap" + i); // two slots each: chains cross the end of the ring every other time
        }
        assertEquals(RingLayout.PACKED.baseAfter(7, 2, 3), fe.getVringBase(0));
    }

    @Test
    void theEventAreasNeedFourByteAlignmentAndTheWholeDescriptorRingMapped() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = fe.queue(0, 16);
        fe.setVringNum(0, 16);
        long d = q.descUva();
        long a = q.availUva();
        long u = q.usedUva();
        assertNotEquals(0, fe.ack(SET_VRING_ADDR, Msg.vringAddr(0, 0, d, u, a + 2, 0)), "driver area");
        assertNotEquals(0, fe.ack(SET_VRING_ADDR, Msg.vringAddr(0, 0, d, u + 2, a, 0)), "device area");
        var region = fe.ram().memory().region(0);
        long last128 = fe.ram().uva(region.guestAddress() + region.size() - 128);
        assertNotEquals(0, fe.ack(SET_VRING_ADDR, Msg.vringAddr(0, 0, last128, u, a, 0)),
                "a 256-byte descriptor ring across the end of the region");
        assertEquals(0, fe.ack(SET_VRING_ADDR, Msg.vringAddr(0, 0, d, u, a, 0)));
    }

    // packed-ring.md §5.3: used descriptors are written into the descriptor ring, logged by its GPA; the Device
    // Event Suppression area (SET_VRING_ADDR's used) is logged at log_guest_addr.
    @Test
    void usedDescriptorsAreLoggedInTheDescriptorRingAndTheDeviceAreaAtLogGuestAddr() throws Exception {
        long features = negotiateWithReplyAck(LogInflightConformanceTest.LOG);
        try (LogInflightConformanceTest.Log log = LogInflightConformanceTest.newLog()) {
            FrontendQueue q = runningQueue(0);
            long logGuestAddr = 0x40_0000;
            fe.request(SET_VRING_ADDR, Msg.vringAddr(0, 1, q.descUva(), q.usedUva(), q.availUva(), logGuestAddr));
            fe.setLogBase(log.fd(), LogInflightConformanceTest.LOG_BYTES, 0);
            fe.setFeatures(features | F_LOG_ALL);
            roundTrip(q, "logged");
            assertTrue(log.page(q.descGpa()), "the used descriptor's page of the descriptor ring");
            assertTrue(log.page(logGuestAddr), "the device area, at log_guest_addr");
        }
    }

    // packed-ring.md §5.1: a new connection (a restarted back-end or front-end) continues a packed ring from the
    // positions GET_VRING_BASE returned, both cursors and both wrap counters: nothing lost, nothing repeated.
    @Test
    void aNewConnectionContinuesThePackedRingFromGetVringBase() throws Exception {
        try (GuestRam ram = GuestRam.single(1 << 20)) {
            fe.useRam(ram);
            negotiateWithReplyAck(0);
            FrontendQueue before = runningQueue(0);
            for (int i = 0; i < 11; i++) {
                roundTrip(before, "before" + i); // 22 slots: past the end of the 16-entry ring, wraps flipped
            }
            int base = fe.getVringBase(0);
            assertEquals(RingLayout.PACKED.baseAfter(11, 2, 16), base);
            fe.close();
            fe = TestFrontend.connect(server.socketPath()).timeout(WAIT).layout(RingLayout.PACKED).useRam(ram);
            negotiateWithReplyAck(0);
            FrontendQueue after = fe.queue(0, 16);
            after.continueFrom(before);
            fe.startQueue(0, 16, base);
            fe.setVringEnable(0, true);
            for (int i = 0; i < 11; i++) {
                roundTrip(after, "after" + i);
            }
            assertEquals(RingLayout.PACKED.baseAfter(22, 2, 16), fe.getVringBase(0));
            assertEquals(11, devices.getLast().handled.get(), "the new device handled only the new requests");
            fe.close();
            fe = null;
        }
    }

    @Test
    void qemu72AndQemu10SequencesWithPackedOnServeTheRing() throws Exception {
        for (boolean qemu10 : new boolean[] {false, true}) {
            if (qemu10) {
                fe.close();
                fe = TestFrontend.connect(server.socketPath()).timeout(WAIT).layout(RingLayout.PACKED);
            }
            QemuDevice device = QemuDevice.rng();
            TestFrontend.Negotiation n = qemu10 ? fe.negotiateLikeQemu10(device) : fe.negotiateLikeQemu72(device);
            assertTrue((n.features() & F_RING_PACKED) != 0);
            FrontendQueue q = fe.queue(0);
            roundTrip(q, "packed");
            int[] bases = qemu10 ? fe.stopLikeQemu10(n) : fe.stopLikeQemu72(n);
            assertEquals(RingLayout.PACKED.baseAfter(1, 2, device.queueSize()), bases[0]);
        }
    }
}
