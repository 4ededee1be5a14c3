package dev.vhostdevice.i2c;

import static dev.vhostdevice.i2c.I2cDevice.VIRTIO_I2C_FLAGS_FAIL_NEXT;
import static dev.vhostdevice.i2c.I2cDevice.VIRTIO_I2C_FLAGS_M_RD;
import static dev.vhostdevice.i2c.I2cDevice.VIRTIO_I2C_MSG_ERR;
import static dev.vhostdevice.i2c.I2cDevice.VIRTIO_I2C_MSG_OK;
import static dev.vhostdevice.i2c.ScriptedHost.bytes;
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.readable;
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.writable;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.device.EmbeddedDeviceHost;
import dev.vhostdevice.vhostuser.engine.FeatureOffer;
import dev.vhostdevice.virtqueue.SplitQueue;
import dev.vhostdevice.virtqueue.VirtioRing;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.testing.DriverQueue;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Used;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The i2c device driven in-process through its queue (EmbeddedDeviceHost + DriverQueue), with the simulated
 * EEPROM adapter and a host adapter scripted behind the native seam.
 */
class I2cDeviceTest {
    private static final long INDIRECT = 1L << 28;
    private static final long EVENT_IDX = 1L << 29;
    /** Scripted host adapter i2c-3 serves 0x20 and 0x21; the simulated EEPROM is 0x50. */
    private static final int HOST_CLIENT = 0x20;
    private static final int EEPROM = 0x50;

    private final ScriptedHost script = new ScriptedHost();
    private final List<Integer> interrupts = new ArrayList<>();
    private GuestMemory memory;
    private DriverQueue driver;
    private SplitQueue queue;
    private EmbeddedDeviceHost host;
    private I2cDevice device;
    private SimulatedAdapter sim;
    private long nextBuffer = 0x20000;
    /** The simulated adapter's clients; a test may widen it before start(). */
    private int[] simAddresses = {EEPROM};

    /** A request as the driver built it: where its data and status live. */
    private record Request(int head, long data, int length, long status) {
    }

    private void start(int queueSize, boolean indirect) throws Exception {
        memory = GuestMemory.allocate(0, 4 << 20);
        driver = DriverQueue.layout(memory, queueSize, 0x1000);
        queue = new SplitQueue("i2c", I2cDevice.MAX_QUEUE_SIZE);
        driver.configure(queue);
        queue.setIndirectAllowed(indirect);
        queue.activate(memory);
        sim = new SimulatedAdapter(simAddresses);
        HostAdapter scripted = script.adapter(HOST_CLIENT, HOST_CLIENT + 1);
        I2cBus bus = I2cBus.of(List.of(scripted, sim), List.of(new int[] {HOST_CLIENT, HOST_CLIENT + 1},
                simAddresses));
        device = new I2cDevice(bus);
        host = new EmbeddedDeviceHost(device, new SplitQueue[] {queue}, interrupts::add, null, null);
        host.setFeatures((1L << VirtioRing.VIRTIO_F_VERSION_1) | EVENT_IDX | (indirect ? INDIRECT : 0));
    }

    private void start() throws Exception {
        start(64, true);
    }

    @AfterEach
    void tearDown() {
        if (host != null) {
            host.close();
        }
        if (memory != null) {
            memory.close();
        }
    }

    private long buffer(int length) {
        long at = nextBuffer;
        nextBuffer += (length + 15) & ~15L;
        return at;
    }

    private Buffer header(int address, int flags) {
        long at = buffer(8);
        driver.write(at, bytes(address << 1, 0, 0, 0, flags, 0, 0, 0));
        return readable(at, 8);
    }

    private Request write(int address, boolean failNext, int... data) {
        Buffer out = header(address, failNext ? VIRTIO_I2C_FLAGS_FAIL_NEXT : 0);
        long status = buffer(1);
        driver.write(status, bytes(0xee));
        if (data.length == 0) {
            return new Request(driver.add(out, writable(status, 1)), 0, 0, status);
        }
        long at = buffer(data.length);
        driver.write(at, bytes(data));
        return new Request(driver.add(out, readable(at, data.length), writable(status, 1)), at, data.length, status);
    }

    private Request read(int address, boolean failNext, int length) {
        Buffer out = header(address, VIRTIO_I2C_FLAGS_M_RD | (failNext ? VIRTIO_I2C_FLAGS_FAIL_NEXT : 0));
        long status = buffer(1);
        driver.write(status, bytes(0xee));
        long at = buffer(length);
        byte[] stale = new byte[length];
        java.util.Arrays.fill(stale, (byte) 0xee);
        driver.write(at, stale);
        return new Request(driver.add(out, writable(at, length), writable(status, 1)), at, length, status);
    }

    private int status(Request r) {
        return driver.read(r.status(), 1)[0] & 0xFF;
    }

    private byte[] data(Request r) {
        return driver.read(r.data(), r.length());
    }

    /** The request completed with {@code status} and the used length the spec asks for. */
    private void assertCompleted(Request r, int status) {
        Used used = driver.pollUsed();
        assertEquals(r.head(), used == null ? -1 : used.head(), "completion order");
        boolean isRead = r.length() > 0 && isReadRequest(r);
        assertEquals(isRead ? r.length() + 1 : 1, used.length(), "used length of head " + r.head());
        assertEquals(status, status(r), "status of head " + r.head());
    }

    private final List<Integer> readHeads = new ArrayList<>();

    private boolean isReadRequest(Request r) {
        return readHeads.contains(r.head());
    }

    private Request readRequest(int address, boolean failNext, int length) {
        Request r = read(address, failNext, length);
        readHeads.add(r.head());
        return r;
    }

    // ------------------------------------------------------------------------------------ identity

    @Test
    void itIsDevice34WithZeroLengthRequestsAndTheEngineAddsIndirectAndEventIdx() throws Exception {
        start();
        assertEquals(34, I2cDevice.VIRTIO_ID_I2C_ADAPTER);
        assertEquals(1, device.queueCount());
        assertEquals(1L, device.deviceFeatures(), "VIRTIO_I2C_F_ZERO_LENGTH_REQUEST");
        long offered = FeatureOffer.virtioFeatures(device);
        assertEquals(INDIRECT, offered & INDIRECT, "a two-message transfer must fit QEMU's 4-entry queue");
        assertEquals(EVENT_IDX, offered & EVENT_IDX);
        assertEquals(0, device.configSize());
    }

    // ----------------------------------------------------------------------- the simulated EEPROM

    @Test
    void aByteWrittenToTheSimulatedEepromIsReadBackAfterSettingThePointer() throws Exception {
        start();
        Request set = write(EEPROM, false, 0x10, 0xab); // i2cset 0x50 0x10 0xab
        host.kick(0);
        assertCompleted(set, VIRTIO_I2C_MSG_OK);
        assertEquals(0xab, sim.peek(EEPROM, 0x10));

        Request pointer = write(EEPROM, true, 0x10); // i2cget 0x50 0x10: write pointer, read byte
        Request get = readRequest(EEPROM, false, 1);
        host.kick(0);
        assertCompleted(pointer, VIRTIO_I2C_MSG_OK);
        assertCompleted(get, VIRTIO_I2C_MSG_OK);
        assertArrayEquals(bytes(0xab), data(get));

        Request more = readRequest(EEPROM, false, 2); // reads continue from the pointer
        host.kick(0);
        assertCompleted(more, VIRTIO_I2C_MSG_OK);
        assertArrayEquals(bytes(0x11, 0x12), data(more));
    }

    @Test
    void zeroLengthRequestsAreAcknowledgedByAClientAndRefusedElsewhere() throws Exception {
        start();
        Request quickWrite = write(EEPROM, false);
        long quickStatus = buffer(1);
        driver.write(quickStatus, bytes(0xee));
        Request quickRead = new Request(driver.add(header(EEPROM, VIRTIO_I2C_FLAGS_M_RD), writable(quickStatus, 1)),
                0, 0, quickStatus);
        Request absent = write(0x51, false);
        host.kick(0);
        assertCompleted(quickWrite, VIRTIO_I2C_MSG_OK);
        assertCompleted(quickRead, VIRTIO_I2C_MSG_OK);
        assertCompleted(absent, VIRTIO_I2C_MSG_ERR);
    }

    // ---------------------------------------------------------------------------------- grouping

    @Test
    void aGroupIsOneTransactionWithAStatusPerRequest() throws Exception {
        start();
        Request command = write(HOST_CLIENT, true, 0x10);
        Request get = readRequest(HOST_CLIENT, false, 3);
        script.reads.add(bytes(1, 2, 3));
        host.kick(0);
        assertEquals(List.of("rdwr w1@0x20[10] r3@0x20"), script.calls);
        assertCompleted(command, VIRTIO_I2C_MSG_OK);
        assertCompleted(get, VIRTIO_I2C_MSG_OK);
        assertArrayEquals(bytes(1, 2, 3), data(get));
        assertEquals(List.of(0), interrupts, "one notification for the batch");
    }

    @Test
    void twoGroupsInOneKickAreTwoTransactions() throws Exception {
        start();
        Request a = write(HOST_CLIENT, true, 0x10);
        Request b = readRequest(HOST_CLIENT, false, 1);
        Request c = write(HOST_CLIENT + 1, false, 0x20, 0x30);
        Request d = readRequest(HOST_CLIENT, false, 1);
        host.kick(0);
        assertEquals(List.of("rdwr w1@0x20[10] r1@0x20", "rdwr w2@0x21[2030]", "rdwr r1@0x20"), script.calls);
        for (Request r : List.of(a, b, c, d)) {
            assertCompleted(r, VIRTIO_I2C_MSG_OK);
        }
    }

    @Test
    void aGroupSplitAcrossKicksIsHeldUntilItsLastRequestArrives() throws Exception {
        start();
        Request first = write(HOST_CLIENT, true, 0x10);
        host.kick(0);
        assertNull(driver.pollUsed(), "the first request waits for the rest of its group");
        assertEquals(List.of(), script.calls);
        Request second = write(HOST_CLIENT, true, 0x11);
        host.kick(0);
        assertNull(driver.pollUsed());
        Request last = readRequest(HOST_CLIENT, false, 2);
        script.reads.add(bytes(9, 8));
        host.kick(0);
        assertEquals(List.of("rdwr w1@0x20[10] w1@0x20[11] r2@0x20"), script.calls);
        assertCompleted(first, VIRTIO_I2C_MSG_OK);
        assertCompleted(second, VIRTIO_I2C_MSG_OK);
        assertCompleted(last, VIRTIO_I2C_MSG_OK);
        assertArrayEquals(bytes(9, 8), data(last));
    }

    @Test
    void aFailingFirstMessageFailsTheWholeGroupAndTheNextGroupStillRuns() throws Exception {
        start();
        script.results.add(ScriptedHost.enxio());
        Request command = write(HOST_CLIENT, true, 0x10);
        Request get = readRequest(HOST_CLIENT, false, 4);
        Request next = write(HOST_CLIENT, false, 0x33);
        host.kick(0);
        assertEquals(List.of("rdwr w1@0x20[10] r4@0x20", "rdwr w1@0x20[33]"), script.calls);
        assertCompleted(command, VIRTIO_I2C_MSG_ERR);
        assertCompleted(get, VIRTIO_I2C_MSG_ERR);
        assertArrayEquals(new byte[4], data(get), "a failed read returns zeros, not stale bytes");
        assertCompleted(next, VIRTIO_I2C_MSG_OK);
    }

    @Test
    void anUnknownFirstAddressFailsItsGroupWithoutTouchingTheBus() throws Exception {
        start();
        Request unknown = write(0x33, true, 0x10);
        Request get = readRequest(HOST_CLIENT, false, 1);
        Request next = readRequest(HOST_CLIENT, false, 1);
        host.kick(0);
        assertEquals(List.of("rdwr r1@0x20"), script.calls, "only the next group reached the bus");
        assertCompleted(unknown, VIRTIO_I2C_MSG_ERR);
        assertCompleted(get, VIRTIO_I2C_MSG_ERR);
        assertCompleted(next, VIRTIO_I2C_MSG_OK);
    }

    @Test
    void aRefusedRequestInsideAGroupFailsTheWholeGroupAndTheRestIsNotExecuted() throws Exception {
        start();
        Request first = write(HOST_CLIENT, true, 0x10);
        Request bad = write(0x7f, true, 0x11); // nobody there
        Request last = readRequest(HOST_CLIENT, false, 1);
        Request next = write(HOST_CLIENT, false, 0x12);
        host.kick(0);
        assertEquals(List.of("rdwr w1@0x20[12]"), script.calls);
        assertCompleted(first, VIRTIO_I2C_MSG_ERR);
        assertCompleted(bad, VIRTIO_I2C_MSG_ERR);
        assertCompleted(last, VIRTIO_I2C_MSG_ERR);
        assertCompleted(next, VIRTIO_I2C_MSG_OK);
    }

    @Test
    void aGroupSpanningTwoAdaptersFails() throws Exception {
        start();
        Request host0 = write(HOST_CLIENT, true, 0x10);
        Request eeprom = readRequest(EEPROM, false, 1);
        host.kick(0);
        assertEquals(List.of(), script.calls);
        assertCompleted(host0, VIRTIO_I2C_MSG_ERR);
        assertCompleted(eeprom, VIRTIO_I2C_MSG_ERR);
    }

    @Test
    void aGroupOfMoreThan42RequestsFailsAsAWholeAndTheDeviceCarriesOn() throws Exception {
        start(256, true);
        List<Request> group = new ArrayList<>();
        for (int i = 0; i < 44; i++) {
            group.add(write(HOST_CLIENT, i < 43, i));
        }
        Request next = write(HOST_CLIENT, false, 0x99);
        host.kick(0);
        assertEquals(List.of("rdwr w1@0x20[99]"), script.calls);
        for (Request r : group) {
            assertCompleted(r, VIRTIO_I2C_MSG_ERR);
        }
        assertCompleted(next, VIRTIO_I2C_MSG_OK);
    }

    @Test
    void aGroupOverTheDataLimitFails() throws Exception {
        start();
        List<Request> group = new ArrayList<>();
        for (int i = 0; i < 9; i++) { // 9 × 8192 > 64 KiB
            group.add(write(HOST_CLIENT, i < 8, new int[I2cTransfer.MAX_MESSAGE_LENGTH]));
        }
        Request next = write(HOST_CLIENT, false, 1);
        host.kick(0);
        assertEquals(List.of("rdwr w1@0x20[01]"), script.calls);
        for (Request r : group) {
            assertCompleted(r, VIRTIO_I2C_MSG_ERR);
        }
        assertCompleted(next, VIRTIO_I2C_MSG_OK);
    }

    @Test
    void aMessageOf8192BytesIsServed() throws Exception {
        start();
        Request big = readRequest(HOST_CLIENT, false, I2cTransfer.MAX_MESSAGE_LENGTH);
        host.kick(0);
        assertCompleted(big, VIRTIO_I2C_MSG_OK);
    }

    // ---------------------------------------------------------------- held groups that cannot finish

    @Test
    void withoutIndirectAGroupThatCannotFitTheRingIsFailedInsteadOfHeldForever() throws Exception {
        start(4, false);
        Request first = write(HOST_CLIENT, true, 0x10); // 3 of 4 descriptors: the next request cannot be added
        host.kick(0);
        assertCompleted(first, VIRTIO_I2C_MSG_ERR);
        assertEquals(List.of(), script.calls);
        Request alone = readRequest(HOST_CLIENT, false, 1);
        host.kick(0);
        assertCompleted(alone, VIRTIO_I2C_MSG_OK);
    }

    @Test
    void withIndirectTwoMessagesFitAFourEntryRing() throws Exception {
        start(4, true);
        Buffer out1 = header(HOST_CLIENT, VIRTIO_I2C_FLAGS_FAIL_NEXT);
        long cmd = buffer(1);
        driver.write(cmd, bytes(0x10));
        long status1 = buffer(1);
        int h1 = driver.addIndirect(buffer(48), out1, readable(cmd, 1), writable(status1, 1));
        host.kick(0);
        assertNull(driver.pollUsed(), "held: the ring has room for the rest");
        Buffer out2 = header(HOST_CLIENT, VIRTIO_I2C_FLAGS_M_RD);
        long in = buffer(2);
        long status2 = buffer(1);
        int h2 = driver.addIndirect(buffer(48), out2, writable(in, 2), writable(status2, 1));
        script.reads.add(bytes(5, 6));
        host.kick(0);
        assertEquals(List.of("rdwr w1@0x20[10] r2@0x20"), script.calls);
        assertEquals(new Used(h1, 1), driver.pollUsed());
        assertEquals(new Used(h2, 3), driver.pollUsed());
        assertArrayEquals(bytes(5, 6), driver.read(in, 2));
        assertEquals(VIRTIO_I2C_MSG_OK, driver.read(status2, 1)[0]);
    }

    @Test
    void aQueueStoppingMidGroupCompletesTheHeldRequestsWithAnError() throws Exception {
        start();
        Request held = write(HOST_CLIENT, true, 0x10);
        host.kick(0);
        assertNull(driver.pollUsed());
        device.queueStopping(host.queue(0));
        assertCompleted(held, VIRTIO_I2C_MSG_ERR);
        assertEquals(0, queue.inFlightCount(), "the stop does not wait for anything");
        Request next = write(HOST_CLIENT, false, 0x11); // a fresh group, not the rest of the old one
        host.kick(0);
        assertCompleted(next, VIRTIO_I2C_MSG_OK);
        assertEquals(List.of("rdwr w1@0x20[11]"), script.calls);
    }

    @Test
    void newGuestMemoryFailsAHeldGroupBeforeTheOldMappingGoes() throws Exception {
        start();
        Request held = write(HOST_CLIENT, true, 0x10);
        host.kick(0);
        host.memoryChanged(memory);
        assertCompleted(held, VIRTIO_I2C_MSG_ERR);
    }

    // ------------------------------------------------------------------------------ malformed chains

    @Test
    void aChainTheWalkerRefusesCompletesWithLengthZeroAndTheDeviceCarriesOn() throws Exception {
        start(16, true);
        driver.writeDescriptor(15, 0x10000, 8, VirtioRing.VIRTQ_DESC_F_NEXT, 15); // loops on itself
        driver.publish(15);
        Request next = write(HOST_CLIENT, false, 1);
        host.kick(0);
        assertEquals(new Used(15, 0), driver.pollUsed());
        assertCompleted(next, VIRTIO_I2C_MSG_OK);
    }

    @Test
    void aReadableDescriptorAfterTheStatusIsRefusedByTheWalker() throws Exception {
        start();
        Buffer out = header(HOST_CLIENT, 0);
        long status = buffer(1);
        int bad = driver.add(out, writable(status, 1), readable(buffer(4), 4));
        Request next = write(HOST_CLIENT, false, 1);
        host.kick(0);
        assertEquals(new Used(bad, 0), driver.pollUsed());
        assertCompleted(next, VIRTIO_I2C_MSG_OK);
    }

    @Test
    void aWalkerFaultInsideAGroupFailsTheHeldPart() throws Exception {
        start(16, true);
        Request first = write(HOST_CLIENT, true, 0x10);
        driver.writeDescriptor(15, 0x10000, 8, VirtioRing.VIRTQ_DESC_F_NEXT, 15);
        driver.publish(15);
        Request next = write(HOST_CLIENT, false, 1);
        host.kick(0);
        assertCompleted(first, VIRTIO_I2C_MSG_ERR);
        assertEquals(new Used(15, 0), driver.pollUsed());
        assertCompleted(next, VIRTIO_I2C_MSG_OK);
        assertEquals(List.of("rdwr w1@0x20[01]"), script.calls);
    }

    @Test
    void aMissingOrShortOutHeaderGetsAnErrorStatus() throws Exception {
        start();
        long s1 = buffer(1);
        int missing = driver.add(writable(s1, 1));
        long s2 = buffer(1);
        long shortHeader = buffer(4);
        driver.write(shortHeader, bytes(HOST_CLIENT << 1, 0, 0, 0));
        int tooShort = driver.add(readable(shortHeader, 4), writable(s2, 1));
        Request next = write(HOST_CLIENT, false, 1);
        host.kick(0);
        assertEquals(new Used(missing, 1), driver.pollUsed());
        assertEquals(VIRTIO_I2C_MSG_ERR, driver.read(s1, 1)[0]);
        assertEquals(new Used(tooShort, 1), driver.pollUsed());
        assertEquals(VIRTIO_I2C_MSG_ERR, driver.read(s2, 1)[0]);
        assertCompleted(next, VIRTIO_I2C_MSG_OK);
        assertEquals(List.of("rdwr w1@0x20[01]"), script.calls);
    }

    @Test
    void aRequestWithoutAWritableStatusByteCompletesWithLengthZero() throws Exception {
        start();
        int headerOnly = driver.add(header(HOST_CLIENT, 0));
        long data = buffer(2);
        int noStatus = driver.add(header(HOST_CLIENT, 0), readable(data, 2));
        Request next = write(HOST_CLIENT, false, 1);
        host.kick(0);
        assertEquals(new Used(headerOnly, 0), driver.pollUsed());
        assertEquals(new Used(noStatus, 0), driver.pollUsed());
        assertCompleted(next, VIRTIO_I2C_MSG_OK);
        assertEquals(List.of("rdwr w1@0x20[01]"), script.calls);
    }

    @Test
    void buffersInTheWrongDirectionGetAnErrorStatus() throws Exception {
        start();
        // both directions
        long w = buffer(2);
        long r = buffer(2);
        long s1 = buffer(1);
        int both = driver.add(header(HOST_CLIENT, 0), readable(w, 2), writable(r, 2), writable(s1, 1));
        // a read with a device-readable buffer
        long s2 = buffer(1);
        int readWithWriteBuffer = driver.add(header(HOST_CLIENT, VIRTIO_I2C_FLAGS_M_RD), readable(w, 2),
                writable(s2, 1));
        // a write with a device-writable buffer
        long s3 = buffer(1);
        int writeWithReadBuffer = driver.add(header(HOST_CLIENT, 0), writable(r, 2), writable(s3, 1));
        Request next = write(HOST_CLIENT, false, 1);
        host.kick(0);
        assertEquals(new Used(both, 3), driver.pollUsed());
        assertEquals(VIRTIO_I2C_MSG_ERR, driver.read(s1, 1)[0]);
        assertEquals(new Used(readWithWriteBuffer, 1), driver.pollUsed());
        assertEquals(VIRTIO_I2C_MSG_ERR, driver.read(s2, 1)[0]);
        assertEquals(new Used(writeWithReadBuffer, 3), driver.pollUsed());
        assertEquals(VIRTIO_I2C_MSG_ERR, driver.read(s3, 1)[0]);
        assertCompleted(next, VIRTIO_I2C_MSG_OK);
        assertEquals(List.of("rdwr w1@0x20[01]"), script.calls);
    }

    @Test
    void aMessageOverTheKernelLimitAndAnOddAddressFieldGetAnErrorStatus() throws Exception {
        start();
        Request tooLong = readRequest(HOST_CLIENT, false, I2cTransfer.MAX_MESSAGE_LENGTH + 1);
        long odd = buffer(8);
        driver.write(odd, bytes((HOST_CLIENT << 1) | 1, 0, 0, 0, 0, 0, 0, 0));
        long s = buffer(1);
        int oddAddress = driver.add(readable(odd, 8), writable(s, 1));
        long wide = buffer(8);
        driver.write(wide, bytes(0x00, 0x01, 0, 0, 0, 0, 0, 0)); // 0x100: not a 7-bit address
        long s2 = buffer(1);
        int tenBit = driver.add(readable(wide, 8), writable(s2, 1));
        Request next = write(HOST_CLIENT, false, 1);
        host.kick(0);
        Used used = driver.pollUsed();
        assertEquals(new Used(tooLong.head(), I2cTransfer.MAX_MESSAGE_LENGTH + 2), used);
        assertEquals(VIRTIO_I2C_MSG_ERR, status(tooLong));
        assertEquals(new Used(oddAddress, 1), driver.pollUsed());
        assertEquals(VIRTIO_I2C_MSG_ERR, driver.read(s, 1)[0]);
        assertEquals(new Used(tenBit, 1), driver.pollUsed());
        assertEquals(VIRTIO_I2C_MSG_ERR, driver.read(s2, 1)[0]);
        assertCompleted(next, VIRTIO_I2C_MSG_OK);
    }

    @Test
    void theHeaderMayBeSplitOverDescriptorsAndDataShareOne() throws Exception {
        start();
        long h = buffer(16);
        driver.write(h, bytes(EEPROM << 1, 0, 0, 0, 0, 0, 0, 0, 0x20, 0x77)); // out_hdr + 2 data bytes
        long s = buffer(1);
        int head = driver.add(readable(h, 4), readable(h + 4, 6), writable(s, 1));
        host.kick(0);
        assertEquals(new Used(head, 1), driver.pollUsed());
        assertEquals(VIRTIO_I2C_MSG_OK, driver.read(s, 1)[0]);
        assertEquals(0x77, sim.peek(EEPROM, 0x20));
    }

    @Test
    void reservedFlagBitsAndPaddingAreIgnored() throws Exception {
        start();
        // Only FAIL_NEXT and M_RD mean anything (virtio_i2c.h: flags are "for feature extensibility", padding
        // pads): other bits and the padding are ignored, as upstream does, not refused.
        long w = buffer(8);
        driver.write(w, bytes(HOST_CLIENT << 1, 0, 0, 0, 0xfc, 0xff, 0xff, 0xff)); // write, FAIL_NEXT clear
        long wData = buffer(1);
        driver.write(wData, bytes(0x42));
        long ws = buffer(1);
        int reservedWrite = driver.add(readable(w, 8), readable(wData, 1), writable(ws, 1));
        long r = buffer(8);
        driver.write(r, bytes(HOST_CLIENT << 1, 0, 0x5a, 0xa5, 0xfe, 0xff, 0xff, 0xff)); // read, padding 0xa55a
        long rData = buffer(1);
        long rs = buffer(1);
        int reservedRead = driver.add(readable(r, 8), writable(rData, 1), writable(rs, 1));
        script.reads.add(bytes(0x77));
        host.kick(0);
        assertEquals(List.of("rdwr w1@0x20[42]", "rdwr r1@0x20"), script.calls, "two one-request groups");
        assertEquals(new Used(reservedWrite, 1), driver.pollUsed());
        assertEquals(VIRTIO_I2C_MSG_OK, driver.read(ws, 1)[0]);
        assertEquals(new Used(reservedRead, 2), driver.pollUsed());
        assertArrayEquals(bytes(0x77, VIRTIO_I2C_MSG_OK), new byte[] {driver.read(rData, 1)[0],
                driver.read(rs, 1)[0]});
    }

    @Test
    void aWriteOver8192BytesGetsAnErrorStatusWithoutReachingTheBus() throws Exception {
        start();
        Request tooLong = write(HOST_CLIENT, false, new int[I2cTransfer.MAX_MESSAGE_LENGTH + 1]);
        Request next = write(HOST_CLIENT, false, 1);
        host.kick(0);
        assertCompleted(tooLong, VIRTIO_I2C_MSG_ERR);
        assertCompleted(next, VIRTIO_I2C_MSG_OK);
        assertEquals(List.of("rdwr w1@0x20[01]"), script.calls);
    }

    @Test
    void addressFields0x00And0xFeAreTheValidAddresses0And127() throws Exception {
        simAddresses = new int[] {EEPROM, 0, 127}; // the device list accepts 0..127
        start();
        Request lowest = write(0, false, 0x06, 0xbb); // address field 0x00
        Request highest = write(127, false, 0x05, 0xaa); // address field 0xfe
        host.kick(0);
        assertCompleted(lowest, VIRTIO_I2C_MSG_OK);
        assertCompleted(highest, VIRTIO_I2C_MSG_OK);
        assertEquals(0xbb, sim.peek(0, 6));
        assertEquals(0xaa, sim.peek(127, 5));
    }

    @Test
    void aChainWithoutFlagsEndsTheDiscardingOfARefusedGroup() throws Exception {
        start(16, true);
        // A short header: its flags are unknown, so it ends the refused group; the next request is a new group.
        Request refused = write(0x33, true, 0x10);
        long s = buffer(1);
        long shortHeader = buffer(4);
        driver.write(shortHeader, bytes(HOST_CLIENT << 1, 0, 0, 0));
        int tooShort = driver.add(readable(shortHeader, 4), writable(s, 1));
        Request fresh = write(HOST_CLIENT, false, 1);
        host.kick(0);
        assertCompleted(refused, VIRTIO_I2C_MSG_ERR);
        assertEquals(new Used(tooShort, 1), driver.pollUsed());
        assertEquals(VIRTIO_I2C_MSG_ERR, driver.read(s, 1)[0]);
        assertCompleted(fresh, VIRTIO_I2C_MSG_OK);
        // The same with a chain the walker refuses.
        Request refusedAgain = write(0x33, true, 0x11);
        driver.writeDescriptor(15, 0x10000, 8, VirtioRing.VIRTQ_DESC_F_NEXT, 15); // loops on itself
        driver.publish(15);
        Request freshAgain = write(HOST_CLIENT, false, 2);
        host.kick(0);
        assertCompleted(refusedAgain, VIRTIO_I2C_MSG_ERR);
        assertEquals(new Used(15, 0), driver.pollUsed());
        assertCompleted(freshAgain, VIRTIO_I2C_MSG_OK);
        assertEquals(List.of("rdwr w1@0x20[01]", "rdwr w1@0x20[02]"), script.calls);
    }

    @Test
    void aReadMayShareOneWritableDescriptorBetweenDataAndStatus() throws Exception {
        start();
        Request pointer = write(EEPROM, true, 0x10);
        long at = buffer(3);
        driver.write(at, bytes(0xee, 0xee, 0xee));
        int shared = driver.add(header(EEPROM, VIRTIO_I2C_FLAGS_M_RD), writable(at, 3)); // 2 data + status
        host.kick(0);
        assertCompleted(pointer, VIRTIO_I2C_MSG_OK);
        assertEquals(new Used(shared, 3), driver.pollUsed());
        assertArrayEquals(bytes(0x10, 0x11, VIRTIO_I2C_MSG_OK), driver.read(at, 3));
    }

    // ------------------------------------------------------------------------------------ exceptions

    @Test
    void aThrowPartWayThroughCompletingAHeldGroupCompletesEachHeadOnceAndTheDeviceCarriesOn() throws Exception {
        start();
        Request first = write(HOST_CLIENT, true, 1);
        Request second = write(HOST_CLIENT, true, 2);
        host.kick(0);
        assertNull(driver.pollUsed(), "held from an earlier kick: the device's to finish");
        Request last = write(HOST_CLIENT, false, 3);
        // A faulty adapter: completes the second request behind the device's back and throws. The device fails
        // the group; completing the second again throws after the first is completed.
        script.onNextReadWrite = () -> {
            host.queue(0).complete(second.head(), 0);
            throw new IllegalStateException("adapter fault");
        };
        String log = capturingStandardError(() -> host.kick(0));
        assertEquals(new Used(second.head(), 0), driver.pollUsed());
        assertCompleted(first, VIRTIO_I2C_MSG_ERR);
        assertCompleted(last, VIRTIO_I2C_MSG_ERR);
        assertNull(driver.pollUsed(), "each head once");
        assertEquals(0, queue.inFlightCount());
        assertTrue(log.contains("adapter fault"), log);
        assertTrue(log.contains("device failed") && log.contains("is not in flight"), "the original is logged: " + log);
        assertTrue(log.contains("could not fail held head " + second.head()), "so is the second failure: " + log);

        Request next = write(HOST_CLIENT, false, 4);
        host.kick(0);
        assertCompleted(next, VIRTIO_I2C_MSG_OK);
        assertEquals(List.of("rdwr w1@0x20[01] w1@0x20[02] w1@0x20[03]", "rdwr w1@0x20[04]"), script.calls);
    }

    // ------------------------------------------------------------------------------------- logging

    @Test
    void probingUnknownAddressesLogsNothingAndAFailingAdapterIsLoggedOncePerErrno() throws Exception {
        start(256, true);
        String log = capturingStandardError(() -> {
            for (int address = 0; address < 128; address++) {
                if (address != HOST_CLIENT && address != HOST_CLIENT + 1 && address != EEPROM) {
                    write(address, false);
                }
            }
            host.kick(0);
            for (int i = 0; i < 125; i++) {
                assertTrue(driver.pollUsed() != null);
            }
            for (int i = 0; i < 3; i++) {
                script.results.add(ScriptedHost.enxio());
                Request failing = write(HOST_CLIENT, false, i);
                host.kick(0);
                assertCompleted(failing, VIRTIO_I2C_MSG_ERR);
            }
        });
        List<String> lines = log.lines().filter(l -> l.contains("i2c")).toList();
        assertEquals(1, lines.size(), log);
        assertTrue(lines.get(0).contains("/dev/i2c-3") && lines.get(0).contains("ENXIO"), lines.get(0));
    }

    private interface Action {
        void run() throws Exception;
    }

    private static synchronized String capturingStandardError(Action action) throws Exception {
        PrintStream saved = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            action.run();
        } finally {
            System.setErr(saved);
        }
        return err.toString(StandardCharsets.UTF_8);
    }
}
