package dev.vhostdevice.vhostuser.xen;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.device.DeviceFactory;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import dev.vhostdevice.vhostuser.protocol.VirtioFeatures;
import dev.vhostdevice.vhostuser.server.ServerOptions;
import dev.vhostdevice.vhostuser.server.VhostUserServer;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.memory.MemoryMapper;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.LongStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The Xen bridge's contract, for any device: extend it in the device module's tests, say how the bridge sizes
 * the device and what one request and its answer are, and the device is run under {@link XenBridgeSimulator}
 * in every memory mode (plus a QEMU-style session on the same server), with each of the bridge's quirks.
 */
public abstract class XenBridgeContract {
    /** The guest's domain id. */
    public static final int DOMID = 5;
    /** Pages of guest RAM: rings for 3 queues of 1024 entries and request buffers. */
    public static final long RAM_PAGES = 1024;
    /** Guest frame of RAM page 0 in foreign mode: GPA 0x4000_0000. */
    public static final long BASE_GFN = XenBridgeSimulator.FOREIGN_RAM_GPA / FakeXen.PAGE;

    @org.junit.jupiter.api.io.TempDir
    protected Path dir;
    protected FakeXen xen;
    protected VhostUserServer server;

    /** The device behind the socket; one per connection. */
    protected abstract DeviceFactory factory();

    /** The bridge's name for the device: the socket is {@code <dir>/<name>.sock0}, as the bridge builds it. */
    protected abstract String name();

    /** The bridge's hard-coded queue count for this device. */
    protected abstract int queueCount();

    /** The bridge's hard-coded queue size (1024; gpio 256). */
    protected int queueSize() {
        return 1024;
    }

    /** The device's config space size (0: none; CONFIG must then not be offered). */
    protected abstract int configSize();

    /** The features a Linux driver acks, besides VERSION_1 (device bits, ring features). */
    protected abstract long driverFeatures();

    /** Requests through the simulated guest, each answer checked. Requests are served one at a time. */
    protected abstract void exchange(XenBridgeSimulator guest) throws Exception;

    @BeforeEach
    void startServer() throws Exception {
        xen = new FakeXen(DOMID, RAM_PAGES, BASE_GFN);
        server = VhostUserServer.start(dir.resolve(name() + ".sock0"), factory(), Linux.system(),
                MemoryMapper.system(), ServerOptions.DEFAULTS.withXen(xen));
    }

    @AfterEach
    void stopServer() {
        server.close();
        xen.close();
    }

    protected XenBridgeSimulator connect(XenBridgeSimulator.Mode mode) throws Exception {
        return XenBridgeSimulator.connect(server.socketPath(), mode, xen, queueCount(), queueSize());
    }

    protected long features() {
        return 1L << VirtioFeatures.VIRTIO_F_VERSION_1 | driverFeatures();
    }

    /** Probe, activate, serve, remove: one whole bridge session. */
    protected void session(XenBridgeSimulator sim) throws Exception {
        sim.probe();
        sim.activate(features());
        exchange(sim);
        sim.assertNothingPending();
        sim.remove();
    }

    /** Waits until the server dropped the last connection's mappings. */
    protected void awaitGrantsReleased() throws InterruptedException {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (xen.liveGrantMaps() != 0 && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertEquals(0, xen.liveGrantMaps(), "every MAP_GRANT_REF undone once the session ended");
        assertEquals(0, xen.liveGrantMmaps(), "every gntdev mmap undone");
    }

    @ParameterizedTest
    @EnumSource(XenBridgeSimulator.Mode.class)
    void servesRequestsTheWayTheBridgeDrivesIt(XenBridgeSimulator.Mode mode) throws Exception {
        try (XenBridgeSimulator sim = connect(mode)) {
            session(sim);
            assertTrue(ProtocolFeature.REPLY_ACK.isIn(sim.ackedProtocolFeatures()));
            assertEquals(mode != XenBridgeSimulator.Mode.QEMU_LIKE,
                    ProtocolFeature.XEN_MMAP.isIn(sim.ackedProtocolFeatures()), "XEN_MMAP offered and acked");
        }
        awaitGrantsReleased();
        assertEquals(List.of(), xen.violations());
        switch (mode) {
            case FOREIGN -> {
                assertEquals(List.of(DOMID), xen.batchDomains(), "one MMAPBATCH, for the guest's domain");
                assertEquals(LongStream.range(BASE_GFN, BASE_GFN + RAM_PAGES).boxed().toList(), xen.mappedFrames(),
                        "the region's frames, from GPA 0x4000_0000");
                assertEquals(List.of(), xen.grantMmaps());
            }
            case GRANT -> {
                List<FakeXen.GrantMmap> perAccess = xen.grantMmaps().stream()
                        .filter(m -> m.prot() != (FakeXen.PROT_READ | FakeXen.PROT_WRITE)).toList();
                assertFalse(perAccess.isEmpty(), "the request buffers were mapped per access");
                assertTrue(perAccess.stream().allMatch(m -> m.readOnly() || m.writeOnly()), perAccess.toString());
                assertEquals(3 * queueCount(), xen.grantMmaps().size() - perAccess.size(),
                        "the ring regions, mapped in advance");
            }
            case QEMU_LIKE, UNIX -> {
                assertEquals(List.of(), xen.grantMmaps());
                assertEquals(List.of(), xen.mappedFrames(), "plain shared memory: nothing through the Xen seam");
            }
        }
    }

    @Test
    void theSameServerServesAQemuStyleSessionAndThenABridgeSession() throws Exception {
        try (XenBridgeSimulator qemu = connect(XenBridgeSimulator.Mode.QEMU_LIKE)) {
            session(qemu);
        }
        try (XenBridgeSimulator bridge = connect(XenBridgeSimulator.Mode.GRANT)) {
            session(bridge);
        }
        awaitGrantsReleased();
    }

    @Test
    void offersWhatTheBridgeNeedsAndNoProtocolBitAbove17() throws Exception {
        try (XenBridgeSimulator sim = connect(XenBridgeSimulator.Mode.GRANT)) {
            sim.probe(); // fails on any bit above 17, or on a back-end without PROTOCOL_FEATURES
            long acked = sim.ackedProtocolFeatures();
            assertTrue(ProtocolFeature.XEN_MMAP.isIn(acked));
            assertTrue(ProtocolFeature.MQ.isIn(acked));
            assertEquals(configSize() > 0, ProtocolFeature.CONFIG.isIn(acked));
            assertFalse(VirtioFeatures.has(sim.backendFeatures(), VirtioFeatures.VIRTIO_F_ACCESS_PLATFORM),
                    "the bridge adds ACCESS_PLATFORM for the guest itself");
            assertEquals("GET_FEATURES 0x1", sim.transcript().getFirst(), "asked before SET_OWNER");
        }
    }

    @Test
    void everyConfigAccessOfOneToEightBytesMatchesAFullRead() throws Exception {
        try (XenBridgeSimulator sim = connect(XenBridgeSimulator.Mode.GRANT)) {
            sim.probe();
            if (configSize() == 0) {
                assertFalse(ProtocolFeature.CONFIG.isIn(sim.ackedProtocolFeatures()));
                return;
            }
            byte[] full = sim.readConfig(0, configSize());
            for (int size : new int[] {1, 2, 4, 8}) {
                for (int offset = 0; offset + size <= configSize(); offset++) {
                    byte[] part = sim.readConfig(offset, size);
                    assertArrayEquals(java.util.Arrays.copyOfRange(full, offset, offset + size), part,
                            size + " bytes at " + offset);
                }
            }
            sim.assertNothingPending();
        }
    }

    @Test
    void aReconnectReplaysWithoutGetProtocolFeaturesAndIsServed() throws Exception {
        try (XenBridgeSimulator sim = connect(XenBridgeSimulator.Mode.GRANT)) {
            sim.probe();
            sim.activate(features());
            exchange(sim);
            sim.reconnect();
            assertFalse(sim.transcript().subList(sim.transcript().lastIndexOf("SET_OWNER 0x1"),
                    sim.transcript().size()).contains("GET_PROTOCOL_FEATURES 0x1"));
            exchange(sim);
            sim.remove();
        }
        awaitGrantsReleased();
    }

    @Test
    void aReprobeWithASecondSetOwnerOnTheSameConnectionIsServed() throws Exception {
        try (XenBridgeSimulator sim = connect(XenBridgeSimulator.Mode.GRANT)) {
            sim.probe();
            sim.activate(features());
            exchange(sim);
            sim.probe(); // the guest driver probed again: SET_OWNER (now with NEED_REPLY) and negotiation
            assertEquals(2, sim.transcript().stream().filter(t -> t.startsWith("SET_OWNER")).count());
            // The whole activation again on the live connection, to rings that were running: features, a new
            // memory table, SET_VRING_NUM/ADDR/BASE/CALL/KICK and ENABLE per queue, every one acked.
            sim.activate(features());
            assertEquals(2, sim.transcript().stream().filter(t -> t.startsWith("SET_VRING_NUM")).count()
                    / queueCount(), "the ring setup was sent twice");
            exchange(sim);
            sim.remove();
        }
        awaitGrantsReleased();
    }

    // xen.md §2.5 "Page granularity": frames and grants are 4 KiB, and privcmd and gntdev map host pages.
    @ParameterizedTest
    @EnumSource(value = XenBridgeSimulator.Mode.class, names = {"FOREIGN", "GRANT"})
    void xenRegionsOnAHostWhosePagesAreNot4KiBAreRefusedAndTheDaemonGoesOn(XenBridgeSimulator.Mode mode)
            throws Exception {
        xen.setPageSize(64 * 1024);
        try (XenBridgeSimulator sim = connect(mode)) {
            sim.probe();
            AssertionError refused = assertThrows(AssertionError.class, () -> sim.activate(features()));
            assertTrue(refused.getMessage().contains("SET_MEM_TABLE"), refused.getMessage());
            assertEquals(List.of(), xen.mappedFrames(), "no foreign frame mapped");
            assertEquals(List.of(), xen.grantMmaps(), "no grant mapped");
            assertEquals(0, xen.liveGrantMaps());
        }
        try (XenBridgeSimulator qemu = connect(XenBridgeSimulator.Mode.QEMU_LIKE)) {
            session(qemu); // plain shared memory maps on any page size
        }
    }

    @Test
    void xenRegionsOnAHostWithoutXenDevicesAreRefusedAndTheDaemonGoesOn() throws Exception {
        xen.removeDevices();
        try (XenBridgeSimulator sim = connect(XenBridgeSimulator.Mode.GRANT)) {
            sim.probe();
            AssertionError refused = assertThrows(AssertionError.class, () -> sim.activate(features()));
            assertTrue(refused.getMessage().contains("SET_MEM_TABLE"), refused.getMessage());
            assertEquals(0, xen.liveGrantMaps(), "nothing mapped, as grant memory or as plain memory");
        }
        try (XenBridgeSimulator qemu = connect(XenBridgeSimulator.Mode.QEMU_LIKE)) {
            session(qemu);
        }
    }
}
