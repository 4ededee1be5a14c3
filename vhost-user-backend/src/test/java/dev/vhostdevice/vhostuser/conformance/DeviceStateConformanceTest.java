package dev.vhostdevice.vhostuser.conformance;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import dev.vhostdevice.vhostuser.frontend.Fds;
import dev.vhostdevice.vhostuser.frontend.Reply;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/** Device state transfer (spec §4.6; checklist 68-70), with a device that offers DEVICE_STATE. */
class DeviceStateConformanceTest extends ConformanceBase {
    static final long DEVICE_STATE = ProtocolFeature.DEVICE_STATE.mask();
    static final int SAVE = 0;
    static final int LOAD = 1;
    private final Linux linux = Linux.system();

    @Override
    boolean withState() {
        return true;
    }

    private byte[] readToEof(int fd) throws Exception {
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment b = arena.allocate(256);
            while (true) {
                if (!Fds.awaitReadable(fd, WAIT)) {
                    throw new AssertionError("no EOF from the back-end's state transfer");
                }
                long n = linux.read(fd, b, 256);
                if (n == 0) {
                    return all.toByteArray();
                }
                if (n > 0) {
                    all.write(b.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE));
                }
            }
        }
    }

    private void writeAndClose(int fd, byte[] data) throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment b = arena.allocate(Math.max(1, data.length));
            MemorySegment.copy(data, 0, b, ValueLayout.JAVA_BYTE, 0, data.length);
            linux.write(fd, b, data.length);
        }
        linux.close(fd);
    }

    // §7 #68 / §4.6: SAVE writes the whole state to the front-end's fd and closes it (EOF ends it); the reply says
    // ok with no fd of the back-end's own; CHECK_DEVICE_STATE then reports success.
    @Test
    void saveWritesTheStateToTheFdClosesItAndCheckReportsSuccess() throws Exception {
        negotiateWithReplyAck(DEVICE_STATE);
        int[] pair = linux.socketPair();
        try {
            Reply r = fe.setDeviceStateFd(SAVE, 0, pair[1]);
            linux.close(pair[1]);
            pair[1] = -1;
            assertEquals(0, r.u64() & 0xFF, "ok");
            assertEquals(-1, r.fd(), "no fd of its own");
            assertEquals(0x100, r.u64() & 0x100, "bit 8: no fd returned");
            assertArrayEquals(new byte[] {1, 2, 3, 4, 5, 6, 7, 8}, readToEof(pair[0]));
            assertEquals(0, fe.checkDeviceState());
        } finally {
            linux.close(pair[0]);
            linux.close(pair[1]);
        }
    }

    // §7 #69 / §4.6 step 3: a bad direction or phase gives an error code, and never an fd with it.
    @Test
    void aBadDirectionOrPhaseGetsAnErrorCodeAndNoFd() throws Exception {
        negotiateWithReplyAck(DEVICE_STATE);
        int[] pair = linux.socketPair();
        try {
            Reply badDirection = fe.setDeviceStateFd(7, 0, pair[1]);
            assertNotEquals(0, badDirection.u64() & 0xFF);
            assertEquals(-1, badDirection.fd());
            Reply badPhase = fe.setDeviceStateFd(SAVE, 3, pair[1]);
            assertNotEquals(0, badPhase.u64() & 0xFF);
            assertEquals(-1, badPhase.fd());
        } finally {
            linux.close(pair[0]);
            linux.close(pair[1]);
        }
    }

    // §7 #70 / §4.6 step 5: LOAD of corrupt data makes CHECK_DEVICE_STATE non-zero; a good LOAD is applied.
    @Test
    void loadOfCorruptDataFailsTheCheckAndAGoodLoadIsApplied() throws Exception {
        negotiateWithReplyAck(DEVICE_STATE | ProtocolFeature.CONFIG.mask());
        int[] bad = linux.socketPair();
        assertEquals(0, fe.setDeviceStateFd(LOAD, 0, bad[1]).u64() & 0xFF);
        linux.close(bad[1]);
        writeAndClose(bad[0], new byte[] {1, 2, 3});
        assertNotEquals(0, fe.checkDeviceState());
        int[] good = linux.socketPair();
        assertEquals(0, fe.setDeviceStateFd(LOAD, 0, good[1]).u64() & 0xFF);
        linux.close(good[1]);
        writeAndClose(good[0], new byte[] {8, 7, 6, 5, 4, 3, 2, 1});
        assertEquals(0, fe.checkDeviceState());
        assertArrayEquals(new byte[] {8, 7, 6, 5, 4, 3, 2, 1}, fe.getConfig(0, 8));
    }

    // Disconnect during a LOAD: the engine cancels the running transfer and waits for it to end before it closes
    // the device, so the transfer never works on a closed device.
    @Test
    void aDisconnectDuringALoadClosesTheDeviceOnlyAfterTheTransfer() throws Exception {
        negotiateWithReplyAck(DEVICE_STATE);
        ProbeDevice d = device();
        int[] pair = linux.socketPair();
        assertEquals(0, fe.setDeviceStateFd(LOAD, 0, pair[1]).u64() & 0xFF);
        linux.close(pair[1]);
        fe.close();
        fe = null;
        Thread.sleep(200); // the session is closing meanwhile
        try {
            writeAndClose(pair[0], new byte[] {8, 7, 6, 5, 4, 3, 2, 1});
        } catch (ErrnoException e) {
            linux.close(pair[0]); // EPIPE: the cancelled transfer already closed its end
        }
        awaitTrue(() -> d.closed, "the device closed at disconnect");
        org.junit.jupiter.api.Assertions.assertFalse(d.stateUsedAfterClose, "the transfer ran on a closed device");
    }
}
