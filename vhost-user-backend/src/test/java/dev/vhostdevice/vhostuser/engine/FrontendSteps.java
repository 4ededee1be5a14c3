package dev.vhostdevice.vhostuser.engine;

import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.*;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.memTable;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.u64;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.vringAddr;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.vringState;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.protocol.VirtioFeatures;
import dev.vhostdevice.vhostuser.server.VhostUserServer;
import dev.vhostdevice.vhostuser.testkit.DriverRing;
import dev.vhostdevice.vhostuser.testkit.GuestFixture;
import dev.vhostdevice.vhostuser.testkit.MiniFrontend;
import java.util.function.BooleanSupplier;

/** Message sequences the engine tests in this package share, in QEMU's order. */
final class FrontendSteps {
    static final long F30 = 1L << VirtioFeatures.VHOST_USER_F_PROTOCOL_FEATURES;
    static final long VERSION_1 = 1L << VirtioFeatures.VIRTIO_F_VERSION_1;
    static final long LOG_ALL = 1L << VirtioFeatures.VHOST_F_LOG_ALL;

    private FrontendSteps() {
    }

    /** Negotiates {@code protocolFeatures} (each must be offered) and {@code features}; returns the offer. */
    static long negotiate(MiniFrontend fe, long protocolFeatures, long features) throws Exception {
        fe.getU64(GET_FEATURES);
        long offered = fe.getU64(GET_PROTOCOL_FEATURES);
        assertEquals(protocolFeatures, offered & protocolFeatures, "protocol features offered");
        fe.send(SET_PROTOCOL_FEATURES, u64(protocolFeatures));
        fe.send(SET_OWNER, new byte[0]);
        fe.send(SET_FEATURES, u64(features));
        return offered;
    }

    /** The fixture's RAM as the whole memory table. */
    static void memoryTable(MiniFrontend fe, GuestFixture guest) throws Exception {
        fe.send(SET_MEM_TABLE, memTable(0, GuestFixture.RAM_SIZE, guest.uva(0), 0), guest.memfd);
    }

    /** NUM, BASE, ADDR, CALL, KICK for ring {@code index} laid out by {@code ring}. */
    static void startRing(MiniFrontend fe, GuestFixture guest, int index, DriverRing ring, int base, int kickFd,
                          int callFd) throws Exception {
        fe.send(SET_VRING_NUM, vringState(index, ring.size));
        fe.send(SET_VRING_BASE, vringState(index, base));
        fe.send(SET_VRING_ADDR, vringAddr(index, guest.uva(ring.descGpa), guest.uva(ring.usedGpa),
                guest.uva(ring.availGpa)));
        fe.send(SET_VRING_CALL, u64(index), callFd);
        fe.send(SET_VRING_KICK, u64(index), kickFd);
    }

    /** Waits up to 5 s for {@code condition}, then asserts it. */
    static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (!condition.getAsBoolean() && System.nanoTime() < deadline) {
            Thread.sleep(2);
        }
        assertTrue(condition.getAsBoolean(), what);
    }

    /** Waits until the server has served {@code connections} and none is connected (the session closed). */
    static void awaitIdle(VhostUserServer server, int connections) throws InterruptedException {
        await(() -> server.connectionsServed() >= connections && !server.isConnected(), "the server went idle");
    }
}
