package dev.vhostdevice.vhostuser.engine;

import static dev.vhostdevice.vhostuser.engine.FrontendSteps.VERSION_1;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.memoryTable;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.negotiate;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.startRing;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.*;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.le;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.u64;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.vringState;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import dev.vhostdevice.vhostuser.server.ServerOptions;
import dev.vhostdevice.vhostuser.server.VhostUserServer;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.vhostuser.testkit.EchoDevice;
import dev.vhostdevice.vhostuser.testkit.GuestFixture;
import dev.vhostdevice.vhostuser.testkit.MiniFrontend;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * SET_DEVICE_STATE_FD / CHECK_DEVICE_STATE (vhost-user-protocol.md §4.6) with a device that has state: save and
 * load through a real fd pair, direction, phase and ring-state validation, failures reported by CHECK, and
 * DEVICE_STATE (bit 19, above what the Xen bridge accepts) offered only by devices that support state.
 */
class DeviceStateTransferTest {
    private static final long PROTOCOL = ProtocolFeature.maskOf(ProtocolFeature.DEVICE_STATE, ProtocolFeature.REPLY_ACK);
    private static final int SAVE = 0;
    private static final int LOAD = 1;
    private static final int MAGIC = 0x56535431; // "VST1"

    /** An echo device whose state is a byte array, saved as MAGIC, length, bytes. */
    static final class StatefulDevice extends EchoDevice {
        volatile byte[] state;

        StatefulDevice(byte[] state) {
            this.state = state;
        }

        @Override
        public int queueCount() {
            return 1;
        }

        @Override
        public boolean supportsState() {
            return true;
        }

        volatile boolean saving;
        volatile boolean closed;
        volatile boolean closedWhileSaving;

        @Override
        public void saveState(OutputStream out) throws IOException {
            saving = true;
            try {
                DataOutputStream data = new DataOutputStream(out);
                data.writeInt(MAGIC);
                data.writeInt(state.length);
                data.write(state);
                data.flush();
            } finally {
                saving = false;
            }
        }

        @Override
        public void close() {
            closedWhileSaving = saving;
            closed = true;
        }

        @Override
        public void loadState(InputStream in) throws IOException {
            DataInputStream data = new DataInputStream(in);
            if (data.readInt() != MAGIC) {
                throw new IOException("not a saved state (bad magic)");
            }
            int length = data.readInt();
            if (length < 0 || length > 16 << 20) {
                throw new IOException("bad state length " + length);
            }
            byte[] loaded = data.readNBytes(length);
            if (loaded.length != length || in.read() != -1) {
                throw new IOException("state truncated or followed by garbage");
            }
            state = loaded;
        }
    }

    @TempDir
    Path dir;
    VhostUserServer server;
    final List<StatefulDevice> devices = new CopyOnWriteArrayList<>();
    final Linux linux = Linux.system();
    final Arena arena = Arena.ofShared();
    final MemorySegment io = arena.allocate(64 * 1024);
    byte[] initialState = "device state".getBytes();

    private MiniFrontend connect() throws Exception {
        if (server == null) {
            server = VhostUserServer.start(dir.resolve("vu.sock"), () -> {
                StatefulDevice d = new StatefulDevice(initialState);
                devices.add(d);
                return d;
            }, ServerOptions.DEFAULTS.withDeviceState(true));
        }
        return new MiniFrontend(server.socketPath());
    }

    @AfterEach
    void stop() {
        if (server != null) {
            server.close();
        }
        arena.close();
    }

    private static byte[] transfer(int direction, int phase) {
        return le(8).putInt(direction).putInt(phase).array();
    }

    /** Sends SET_DEVICE_STATE_FD with {@code backendEnd} and closes our copy of it; returns the reply value. */
    private long setStateFd(MiniFrontend fe, int direction, int phase, int backendEnd) throws Exception {
        try {
            MiniFrontend.Reply reply = fe.call(SET_DEVICE_STATE_FD, 0, transfer(direction, phase), backendEnd);
            assertEquals(-1, reply.fd(), "the back-end never returns a channel of its own");
            return reply.u64();
        } finally {
            linux.close(backendEnd);
        }
    }

    private byte[] readToEnd(int fd) throws Exception {
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        long n;
        while ((n = linux.read(fd, io, io.byteSize())) > 0) {
            all.write(io.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE));
        }
        assertEquals(0, n, "end of file (the pair is blocking)");
        return all.toByteArray();
    }

    private void writeAll(int fd, byte[] bytes) throws Exception {
        for (int at = 0; at < bytes.length; ) {
            int step = (int) Math.min(io.byteSize(), bytes.length - at);
            MemorySegment.copy(bytes, at, io, ValueLayout.JAVA_BYTE, 0, step);
            long n = linux.write(fd, io, step);
            assertTrue(n > 0);
            at += (int) n;
        }
    }

    private static byte[] saved(byte[] state) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        new StatefulDevice(state).saveState(bytes);
        return bytes.toByteArray();
    }

    @Test
    void withoutTheUsersRequestEvenAStatefulDeviceOffersNothingAboveBit17() throws Exception {
        try (VhostUserServer plain = VhostUserServer.start(dir.resolve("plain.sock"),
                () -> new StatefulDevice(initialState));
             MiniFrontend fe = new MiniFrontend(plain.socketPath())) {
            long offered = fe.getU64(GET_PROTOCOL_FEATURES);
            assertEquals(0, offered >>> 18, "the Xen bridge refuses bits above 17: DEVICE_STATE is opt-in");
            assertTrue(ProtocolFeature.XEN_MMAP.isIn(offered));
        }
    }

    @Test
    void aStatefulDeviceOffersDeviceStateAndAStatelessOneOffersNothingAboveBit17() throws Exception {
        try (MiniFrontend fe = connect()) {
            assertTrue(ProtocolFeature.DEVICE_STATE.isIn(fe.getU64(GET_PROTOCOL_FEATURES)));
        }
        try (VhostUserServer echo = VhostUserServer.start(dir.resolve("echo.sock"), EchoDevice::new);
             MiniFrontend fe = new MiniFrontend(echo.socketPath())) {
            long offered = fe.getU64(GET_PROTOCOL_FEATURES);
            assertEquals(0, offered >>> 18, "the Xen bridge refuses bits above 17");
            fe.send(SET_PROTOCOL_FEATURES, u64(ProtocolFeature.REPLY_ACK.mask()));
            int[] pair = linux.socketPair();
            try {
                long reply = setStateFd(fe, SAVE, 0, pair[1]);
                assertNotEquals(0, reply & 0xFF, "not negotiated: an error code");
                assertEquals(0, linux.read(pair[0], io, 1), "and the fd was closed, not kept");
                assertNotEquals(0, fe.call(CHECK_DEVICE_STATE, new byte[0]).u64());
            } finally {
                linux.close(pair[0]);
            }
        }
    }

    @Test
    void saveWritesTheStateAndClosesTheFdThenCheckReportsSuccess() throws Exception {
        initialState = new byte[1 << 20]; // larger than the socket buffer: the transfer must not block control
        Arrays.fill(initialState, (byte) 0x5A);
        try (MiniFrontend fe = connect()) {
            negotiate(fe, PROTOCOL, VERSION_1);
            int[] pair = linux.socketPair();
            try {
                assertEquals(0x100, setStateFd(fe, SAVE, 0, pair[1]), "ok, no back-end fd (bit 8)");
                assertNotEquals(0, fe.getU64(GET_FEATURES), "control answered while the save is blocked on us");
                assertArrayEquals(saved(initialState), readToEnd(pair[0]));
            } finally {
                linux.close(pair[0]);
            }
            assertEquals(0, fe.call(CHECK_DEVICE_STATE, new byte[0]).u64());
        }
    }

    @Test
    void loadReadsToEndOfFileAndCheckReportsSuccess() throws Exception {
        try (MiniFrontend fe = connect()) {
            negotiate(fe, PROTOCOL, VERSION_1);
            int[] pair = linux.socketPair();
            try {
                assertEquals(0x100, setStateFd(fe, LOAD, 0, pair[0]));
                writeAll(pair[1], saved("migrated state".getBytes()));
            } finally {
                linux.close(pair[1]);
            }
            assertEquals(0, fe.call(CHECK_DEVICE_STATE, new byte[0]).u64());
            assertArrayEquals("migrated state".getBytes(), devices.getFirst().state);
        }
    }

    @Test
    void corruptOrTruncatedLoadIsReportedByCheckDeviceState() throws Exception {
        try (MiniFrontend fe = connect()) {
            negotiate(fe, PROTOCOL, VERSION_1);
            for (byte[] bad : List.of("garbage!".getBytes(), Arrays.copyOf(saved(new byte[100]), 50), new byte[0])) {
                int[] pair = linux.socketPair();
                try {
                    assertEquals(0x100, setStateFd(fe, LOAD, 0, pair[0]));
                    writeAll(pair[1], bad);
                } finally {
                    linux.close(pair[1]);
                }
                assertNotEquals(0, fe.call(CHECK_DEVICE_STATE, new byte[0]).u64());
                assertArrayEquals(initialState, devices.getFirst().state, "the state is unchanged");
            }
        }
    }

    @Test
    void unknownDirectionOrPhaseAndRunningRingsAreRefusedWithoutKeepingTheFd() throws Exception {
        try (MiniFrontend fe = connect(); GuestFixture guest = new GuestFixture()) {
            negotiate(fe, PROTOCOL, VERSION_1);
            int[][] cases = {{2, 0}, {SAVE, 1}, {LOAD, 7}};
            for (int[] c : cases) {
                int[] pair = linux.socketPair();
                try {
                    long reply = setStateFd(fe, c[0], c[1], pair[1]);
                    assertNotEquals(0, reply & 0xFF, "direction " + c[0] + " phase " + c[1] + ": error code");
                    assertEquals(0x100, reply & 0x100, "and no fd");
                    assertEquals(0, linux.read(pair[0], io, 1), "the fd was closed");
                } finally {
                    linux.close(pair[0]);
                }
            }
            memoryTable(fe, guest);
            startRing(fe, guest, 0, guest.ring, 0, guest.kick, guest.call);
            int[] pair = linux.socketPair();
            try {
                assertNotEquals(0, setStateFd(fe, SAVE, 0, pair[1]) & 0xFF, "rings must be stopped first");
                assertEquals(0, linux.read(pair[0], io, 1));
            } finally {
                linux.close(pair[0]);
            }
            fe.call(GET_VRING_BASE, vringState(0, 0));
            pair = linux.socketPair();
            try {
                assertEquals(0x100, setStateFd(fe, SAVE, 0, pair[1]), "after GET_VRING_BASE the ring is stopped");
                assertArrayEquals(saved(initialState), readToEnd(pair[0]));
            } finally {
                linux.close(pair[0]);
            }
            assertEquals(0, fe.call(CHECK_DEVICE_STATE, new byte[0]).u64());
        }
    }

    private static boolean stateThreadAlive() {
        return Thread.getAllStackTraces().keySet().stream().anyMatch(t -> t.getName().contains("-state-") && t.isAlive());
    }

    @Test
    void aSaveTheFrontendStopsReadingFailsAfterTheStallTimeoutAndClosesTheFd() throws Exception {
        assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
            byte[] big = new byte[1 << 20]; // far more than the socket buffer holds
            int[] pair = linux.socketPair();
            try {
                DeviceStateTransfer save = new DeviceStateTransfer(linux, new StatefulDevice(big), pair[1], true, "stall", 300);
                save.start();
                assertFalse(save.await(5_000), "the stalled save failed");
                assertFalse(save.isRunning(), "within the stall timeout, not forever");
                byte[] partial = readToEnd(pair[0]); // ends in EOF: the back-end closed its end
                assertTrue(partial.length < saved(big).length);
            } finally {
                linux.close(pair[0]);
            }
        });
    }

    @Test
    void aLoadTheFrontendStopsFeedingFailsAfterTheStallTimeoutAndClosesTheFd() throws Exception {
        assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
            StatefulDevice device = new StatefulDevice("before".getBytes());
            int[] pair = linux.socketPair();
            try {
                DeviceStateTransfer load = new DeviceStateTransfer(linux, device, pair[0], false, "stall", 300);
                load.start();
                writeAll(pair[1], Arrays.copyOf(saved(new byte[100]), 50)); // half a state, and the fd stays open
                assertFalse(load.await(5_000), "the stalled load failed");
                assertFalse(load.isRunning());
                assertEquals(0, linux.read(pair[1], io, 1), "the back-end closed its end");
                assertArrayEquals("before".getBytes(), device.state, "the state is unchanged");
            } finally {
                linux.close(pair[1]);
            }
        });
    }

    @Test
    void disconnectDuringAStalledSaveCancelsTheTransferBeforeClosingTheDevice() throws Exception {
        initialState = new byte[1 << 20];
        assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
            int[] pair = linux.socketPair();
            try {
                try (MiniFrontend fe = connect()) {
                    negotiate(fe, PROTOCOL, VERSION_1);
                    assertEquals(0x100, setStateFd(fe, SAVE, 0, pair[1]));
                    while (!devices.getFirst().saving) {
                        Thread.sleep(2);
                    }
                } // disconnect while the save waits for us to read
                StatefulDevice device = devices.getFirst();
                while (!device.closed) {
                    Thread.sleep(2);
                }
                assertFalse(device.closedWhileSaving, "the transfer ended before the device closed");
                assertFalse(stateThreadAlive(), "no transfer thread is left behind");
                assertTrue(readToEnd(pair[0]).length < initialState.length, "the fd was closed mid-save");
            } finally {
                linux.close(pair[0]);
            }
        });
    }

    @Test
    void checkWithoutATransferReportsFailure() throws Exception {
        try (MiniFrontend fe = connect()) {
            negotiate(fe, PROTOCOL, VERSION_1);
            assertNotEquals(0, fe.call(CHECK_DEVICE_STATE, new byte[0]).u64());
        }
    }
}
