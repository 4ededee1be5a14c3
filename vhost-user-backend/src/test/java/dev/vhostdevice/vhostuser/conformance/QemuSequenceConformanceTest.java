package dev.vhostdevice.vhostuser.conformance;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.frontend.FrontendQueue;
import dev.vhostdevice.vhostuser.frontend.GuestRam;
import dev.vhostdevice.vhostuser.frontend.QemuDevice;
import dev.vhostdevice.vhostuser.frontend.TestFrontend;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The message sequences QEMU 7.2.22 and 10.0.2 really send (qemu-guest-testing.md §8), replayed end to end:
 * the back-end must serve guest requests after them and report the right base at shutdown (spec §4.1 typical
 * order; §8 #2 (rust-vmm #227) for 7.2).
 */
class QemuSequenceConformanceTest extends ConformanceBase {

    /** Posts {@code n} requests two at a time (rng's ring of 4 holds two 2-descriptor chains). */
    private static void serve(FrontendQueue q, int n) throws Exception {
        for (int i = 0; i < n; i += 2) {
            q.post("req" + i, 64);
            q.post("req" + (i + 1), 64);
            q.kick();
            assertEquals(new StringBuilder("req" + i).reverse().toString(), q.awaitUsed(WAIT).text());
            assertEquals(new StringBuilder("req" + (i + 1)).reverse().toString(), q.awaitUsed(WAIT).text());
        }
    }

    // qemu-guest-testing.md §8.2 (QEMU 7.2 rng, verbatim): REPLY_ACK negotiated but only SET_MEM_TABLE asks for
    // an ack; ENABLE with flags 0x1; the kick is signalled before ENABLE; GET_VRING_BASE answers the requests served.
    @Test
    void qemu72RngSequenceServesRequestsAndReportsTheBaseAtShutdown() throws Exception {
        TestFrontend.Negotiation n = fe.negotiateLikeQemu72(QemuDevice.rng());
        assertEquals(List.of("GET_FEATURES", "GET_PROTOCOL_FEATURES", "SET_PROTOCOL_FEATURES", "GET_QUEUE_NUM",
                "GET_MAX_MEM_SLOTS", "SET_BACKEND_REQ_FD", "SET_OWNER", "GET_FEATURES", "SET_VRING_CALL",
                "SET_VRING_ERR", "SET_VRING_CALL", "SET_FEATURES", "GET_STATUS", "SET_STATUS", "ADD_MEM_REG",
                "SET_VRING_NUM", "SET_VRING_BASE", "SET_VRING_ADDR", "SET_VRING_KICK", "SET_VRING_ENABLE",
                "SET_VRING_CALL"), fe.requestNames(), "the QEMU 7.2 order with this engine's protocol features");
        assertTrue(!ProtocolFeature.CONFIG.isIn(n.protocolFeatures()), "QEMU masks CONFIG for rng");
        serve(fe.queue(0), 16);
        assertArrayEquals(new int[] {16}, fe.stopLikeQemu72(n));
    }

    // §8.2 (QEMU 10 rng/i2c): CALL right after KICK, ENABLE with NEED_REPLY (acked), ENABLE 0 then GET_VRING_BASE.
    @Test
    void qemu10RngSequenceServesRequestsAndReportsTheBaseAtShutdown() throws Exception {
        TestFrontend.Negotiation n = fe.negotiateLikeQemu10(QemuDevice.rng());
        assertTrue(fe.transcript().contains("SET_VRING_ENABLE flags=0x9 size=8 fds=0"), fe.transcript().toString());
        serve(fe.queue(0), 10);
        assertArrayEquals(new int[] {10}, fe.stopLikeQemu10(n));
    }

    // §8.2 QEMU 7.2 gpio + gotcha 5: only queue 0 is set up but both queues get SET_VRING_ENABLE 1; the config
    // is read at realize (CONFIG acked because gpio has config space).
    @Test
    void qemu72GpioEnablesAQueueThatWasNeverSetUp() throws Exception {
        TestFrontend.Negotiation n = fe.negotiateLikeQemu72(QemuDevice.gpio().withQueueSize(256).withStarted(0)
                .withDriverFeatures(0));
        assertArrayEquals(new byte[] {1, 2, 3, 4, 5, 6, 7, 8}, n.config());
        assertEquals(2, fe.requestNames().stream().filter("SET_VRING_ENABLE"::equals).count());
        assertEquals(0, device().ackedFeatures & 1, "F_IRQ stripped by 7.2");
        serve(fe.queue(0), 6);
        assertArrayEquals(new int[] {6}, fe.stopLikeQemu72(n));
    }

    // §8.2 QEMU 10 gpio on q35 -m 4G (§8.1): both queues started, F_IRQ kept, two regions through ADD_MEM_REG.
    @Test
    void qemu10GpioWithTwoMemoryRegionsServesBothQueues() throws Exception {
        try (GuestRam ram = GuestRam.splitLikeQ35(1 << 20)) {
            fe.useRam(ram);
            TestFrontend.Negotiation n = fe.negotiateLikeQemu10(QemuDevice.gpio());
            assertEquals(2, fe.requestNames().stream().filter("ADD_MEM_REG"::equals).count());
            assertEquals(1, device().ackedFeatures & 1, "F_IRQ kept by 10");
            serve(fe.queue(0), 4);
            serve(fe.queue(1), 2);
            assertArrayEquals(new int[] {4, 2}, fe.stopLikeQemu10(n));
            fe.close();
            fe = null;
        }
    }

    // §8.2 vsock (7.2): call fds re-sent in reverse order before SET_FEATURES, config read at realize, then
    // both queues served; with protocol features restricted to QEMU's captured 0x209 (MQ|REPLY_ACK|CONFIG) the
    // memory table comes as SET_MEM_TABLE.
    @Test
    void qemu72VsockSequenceWithTheCapturedProtocolFeaturesServesBothQueues() throws Exception {
        server.close();
        server = dev.vhostdevice.vhostuser.server.VhostUserServer.start(dir.resolve("vsock.sock"), () -> {
            ProbeDevice d = new ProbeDevice(false, 0x209);
            devices.add(d);
            return d;
        });
        fe.close();
        fe = TestFrontend.connect(server.socketPath()).timeout(WAIT);
        TestFrontend.Negotiation n = fe.negotiateLikeQemu72(QemuDevice.vsock());
        assertEquals(0x209, n.protocolFeatures());
        assertEquals(List.of("GET_FEATURES", "GET_PROTOCOL_FEATURES", "SET_PROTOCOL_FEATURES", "GET_QUEUE_NUM",
                "SET_OWNER", "GET_FEATURES", "SET_VRING_CALL", "SET_VRING_ERR", "SET_VRING_CALL", "SET_VRING_ERR",
                "GET_CONFIG", "SET_VRING_CALL", "SET_VRING_CALL", "SET_FEATURES", "SET_MEM_TABLE",
                "SET_VRING_NUM", "SET_VRING_BASE", "SET_VRING_ADDR", "SET_VRING_KICK",
                "SET_VRING_NUM", "SET_VRING_BASE", "SET_VRING_ADDR", "SET_VRING_KICK",
                "SET_VRING_ENABLE", "SET_VRING_ENABLE", "SET_VRING_CALL", "SET_VRING_CALL"), fe.requestNames(),
                "the captured vsock sequence (qemu-guest-testing.md §8.2)");
        assertArrayEquals(new byte[] {1, 2, 3, 4, 5, 6, 7, 8}, n.config());
        serve(fe.queue(1), 2);
        serve(fe.queue(0), 2);
        assertArrayEquals(new int[] {2, 2}, fe.stopLikeQemu72(n));
    }

    // §8 #2 (rust-vmm #227/#210): a front-end that does not negotiate PROTOCOL_FEATURES (QEMU < 7.2 style) gets
    // every ring enabled at SET_FEATURES, and SET_VRING_KICK does not disable it again.
    @Test
    void aFrontendWithoutProtocolFeaturesIsServedAfterKick() throws Exception {
        fe.negotiate(false, 0, 0);
        FrontendQueue q = fe.startQueue(0, 4, 0);
        serve(q, 4);
        assertEquals(4, fe.getVringBase(0));
    }
}
