package dev.vhostdevice.rng;

import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.readable;
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.writable;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.device.EmbeddedDeviceHost;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.PackedQueue;
import dev.vhostdevice.virtqueue.SplitQueue;
import dev.vhostdevice.virtqueue.VirtQueue;
import dev.vhostdevice.virtqueue.VirtioRing;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.testing.DriverQueue;
import dev.vhostdevice.virtqueue.testing.PackedDriverQueue;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The rng device driven in-process through its queue, as an embedding VMM would. */
class RngDeviceTest {
    private static final long MS = 1_000_000L;

    /** Bytes 0, 1, 2, … so tests can tell exactly what was served; optionally ends or fails. */
    static final class CountingSource implements EntropySource {
        long produced;
        long endAfter = Long.MAX_VALUE;
        IOException failure;

        @Override
        public long fill(MemorySegment segment, long offset, long length) throws IOException {
            if (failure != null) {
                throw failure;
            }
            if (produced >= endAfter) {
                return -1;
            }
            long n = Math.min(length, endAfter - produced);
            for (long i = 0; i < n; i++) {
                segment.set(ValueLayout.JAVA_BYTE, offset + i, (byte) produced++);
            }
            return n;
        }

        @Override
        public String name() {
            return "counting";
        }

        @Override
        public void close() {
        }
    }

    private final CountingSource source = new CountingSource();
    private final AtomicLong now = new AtomicLong(1_000 * MS);
    private final List<Integer> interrupts = new ArrayList<>();
    private final List<Integer> watchedTokens = new ArrayList<>();
    private GuestMemory memory;
    private DriverQueue driver;
    private SplitQueue queue;
    private EmbeddedDeviceHost host;

    @BeforeEach
    void setUp() throws Exception {
        memory = GuestMemory.allocate(0, 4 << 20);
        driver = DriverQueue.layout(memory, 16, 0x1000);
        queue = new SplitQueue("rng", RngDevice.MAX_QUEUE_SIZE);
        driver.configure(queue);
        queue.setIndirectAllowed(true);
        queue.activate(memory);
    }

    private void start(long maxBytes, long periodMillis) {
        start(maxBytes, periodMillis, Linux.system());
    }

    private void start(long maxBytes, long periodMillis, Linux linux) {
        RateLimiter limiter = new RateLimiter(maxBytes, periodMillis * MS, now::get);
        RngDevice device = new RngDevice(source, limiter, linux);
        host = new EmbeddedDeviceHost(device, new SplitQueue[] {queue}, interrupts::add, null,
                new EmbeddedDeviceHost.FdWatcher() {
                    @Override
                    public void watch(int fd, int events, int token) {
                        watchedTokens.add(token);
                    }

                    @Override
                    public void unwatch(int fd) {
                    }
                });
    }

    @AfterEach
    void tearDown() {
        if (host != null) {
            host.close();
        }
        memory.close();
    }

    @Test
    void everyWritableBufferOfAChainIsFilledAndTheUsedLengthIsTheBytesWritten() {
        start(RateLimiter.UNLIMITED, 1000);
        int head = driver.add(writable(0x10000, 3), writable(0x10100, 5));
        host.kick(0);
        assertEquals(new DriverQueue.Used(head, 8), driver.pollUsed());
        assertArrayEquals(new byte[] {0, 1, 2}, driver.read(0x10000, 3));
        assertArrayEquals(new byte[] {3, 4, 5, 6, 7}, driver.read(0x10100, 5));
        assertEquals(List.of(0), interrupts);
    }

    /** The device does not know the layout: the same requests over a packed ring (VIRTIO_F_RING_PACKED). */
    @Test
    void theSameDeviceServesAPackedRing() throws Exception {
        PackedQueue packed = new PackedQueue("rng", RngDevice.MAX_QUEUE_SIZE);
        PackedDriverQueue packedDriver = PackedDriverQueue.layout(memory, 3, 0x8000);
        packedDriver.configure(packed);
        packed.setIndirectAllowed(true);
        packed.activate(memory);
        RngDevice device = new RngDevice(source, new RateLimiter(RateLimiter.UNLIMITED, 1000 * MS, now::get),
                Linux.system());
        host = new EmbeddedDeviceHost(device, new VirtQueue[] {packed}, interrupts::add, null, null);
        // A ring of 3: the second request's two descriptors cross the end of the ring.
        for (int round = 0; round < 4; round++) {
            int id = packedDriver.add(writable(0x10000, 3), writable(0x10100, 5));
            host.kick(0);
            assertEquals(new DriverQueue.Used(id, 8), packedDriver.pollUsed());
            assertArrayEquals(new byte[] {(byte) (8 * round), (byte) (8 * round + 1), (byte) (8 * round + 2)},
                    packedDriver.read(0x10000, 3));
        }
        assertEquals(List.of(0, 0, 0, 0), interrupts);
    }

    @Test
    void aRequestLargerThanAMebibyteGetsOneMebibyte() {
        start(RateLimiter.UNLIMITED, 1000);
        int head = driver.add(writable(0x100000, 0x100000), writable(0x200000, 0x100000));
        host.kick(0);
        assertEquals(new DriverQueue.Used(head, (int) RngDevice.MAX_BYTES_PER_REQUEST), driver.pollUsed());
    }

    @Test
    void aRequestOfExactlyTheCapIsFilledWhole() {
        start(RateLimiter.UNLIMITED, 1000);
        int head = driver.add(writable(0x100000, (int) RngDevice.MAX_BYTES_PER_REQUEST));
        host.kick(0);
        assertEquals(new DriverQueue.Used(head, (int) RngDevice.MAX_BYTES_PER_REQUEST), driver.pollUsed());
    }

    @Test
    void aRequestWithNoWritableBytesCompletesWithLengthZeroAndReadsNothing() {
        start(RateLimiter.UNLIMITED, 1000);
        int empty = driver.add(writable(0x10000, 0));
        int good = driver.add(writable(0x10100, 4));
        host.kick(0);
        assertEquals(new DriverQueue.Used(empty, 0), driver.pollUsed());
        assertEquals(new DriverQueue.Used(good, 4), driver.pollUsed());
        assertEquals(4, source.produced);
    }

    @Test
    void aChainOfOnlyAZeroLengthReadableDescriptorCompletesWithLengthZero() {
        start(RateLimiter.UNLIMITED, 1000);
        int head = driver.add(readable(0x10000, 0));
        host.kick(0);
        assertEquals(new DriverQueue.Used(head, 0), driver.pollUsed());
        assertEquals(0, source.produced);
    }

    @Test
    void indirectChainsAreFilledToo() {
        start(RateLimiter.UNLIMITED, 1000);
        int head = driver.addIndirect(0x9001, writable(0x10000, 16), writable(0x10100, 16));
        host.kick(0);
        assertEquals(new DriverQueue.Used(head, 32), driver.pollUsed());
    }

    @Test
    void aChainWithReadableBuffersIsAnsweredWithLengthZeroAndTheNextIsServed() {
        start(RateLimiter.UNLIMITED, 1000);
        int bad = driver.add(readable(0x10000, 4), writable(0x10100, 4));
        int good = driver.add(writable(0x10200, 4));
        host.kick(0);
        assertEquals(new DriverQueue.Used(bad, 0), driver.pollUsed());
        assertEquals(new DriverQueue.Used(good, 4), driver.pollUsed());
        assertEquals(4, source.produced, "nothing was read for the refused request");
    }

    @Test
    void aMalformedChainIsAnsweredWithLengthZeroAndTheNextIsServed() {
        start(RateLimiter.UNLIMITED, 1000);
        // Descriptor 15 (the last the driver kit hands out) loops on itself.
        driver.writeDescriptor(15, 0x10000, 8, VirtioRing.VIRTQ_DESC_F_NEXT | VirtioRing.VIRTQ_DESC_F_WRITE, 15);
        driver.publish(15);
        int good = driver.add(writable(0x10200, 4));
        host.kick(0);
        assertEquals(new DriverQueue.Used(15, 0), driver.pollUsed());
        assertEquals(new DriverQueue.Used(good, 4), driver.pollUsed());
    }

    @Test
    void pastThePeriodsBudgetRequestsWaitInTheRingUntilTheTimerFires() throws Exception {
        start(100, 1000);
        assertEquals(List.of(1), watchedTokens, "the rate-limit timer is watched");
        int a = driver.add(writable(0x10000, 64));
        int b = driver.add(writable(0x10100, 64));
        int c = driver.add(writable(0x10200, 64));
        host.kick(0);
        assertEquals(new DriverQueue.Used(a, 64), driver.pollUsed());
        assertEquals(new DriverQueue.Used(b, 36), driver.pollUsed(), "the rest of the budget, a short read");
        assertNull(driver.pollUsed(), "the third request waits in the ring");
        assertEquals(2, queue.nextAvail(), "only the two served requests were popped");

        host.kick(0);
        assertNull(driver.pollUsed(), "a kick during the throttled period serves nothing");

        now.addAndGet(1000 * MS);
        host.hostFdReady(1, Linux.EPOLLIN);
        assertEquals(new DriverQueue.Used(c, 64), driver.pollUsed(), "the timer resumed the queue");
        assertEquals(164, source.produced);
    }

    @Test
    void whenTheTimerCannotBeArmedTheLimitIsSuspendedAndTheRingDoesNotStall() {
        Linux real = Linux.system();
        Linux noTimer = (Linux) java.lang.reflect.Proxy.newProxyInstance(Linux.class.getClassLoader(),
                new Class<?>[] {Linux.class}, (proxy, method, args) -> {
                    if (method.getName().equals("armTimer")) {
                        throw new dev.vhostdevice.virtqueue.memory.ErrnoException("timerfd_settime", 12);
                    }
                    try {
                        return method.invoke(real, args);
                    } catch (java.lang.reflect.InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
        start(100, 1000, noTimer);
        int a = driver.add(writable(0x10000, 64));
        int b = driver.add(writable(0x10100, 64));
        int c = driver.add(writable(0x10200, 64));
        host.kick(0);
        assertEquals(new DriverQueue.Used(a, 64), driver.pollUsed());
        assertEquals(new DriverQueue.Used(b, 36), driver.pollUsed());
        // No timer would ever resume a throttled ring, and the driver has already kicked: serve on.
        assertEquals(new DriverQueue.Used(c, 64), driver.pollUsed(), "the third request is not stranded");
    }

    @Test
    void aSourceAtEndOfFileAnswersWithZeroBytes() {
        start(RateLimiter.UNLIMITED, 1000);
        source.endAfter = 6;
        int a = driver.add(writable(0x10000, 4));
        int b = driver.add(writable(0x10100, 4));
        int c = driver.add(writable(0x10200, 4));
        host.kick(0);
        assertEquals(new DriverQueue.Used(a, 4), driver.pollUsed());
        assertEquals(new DriverQueue.Used(b, 2), driver.pollUsed());
        assertEquals(new DriverQueue.Used(c, 0), driver.pollUsed());
    }

    @Test
    void aFailingSourceAnswersWithZeroBytesAndRecovers() {
        start(RateLimiter.UNLIMITED, 1000);
        source.failure = new IOException("EIO");
        int a = driver.add(writable(0x10000, 4));
        host.kick(0);
        assertEquals(new DriverQueue.Used(a, 0), driver.pollUsed());
        source.failure = null;
        int b = driver.add(writable(0x10100, 4));
        host.kick(0);
        assertEquals(new DriverQueue.Used(b, 4), driver.pollUsed());
    }

    @Test
    void theGuestsShareOfTheBudgetAddsUpToTheBudget() {
        assertEquals(RateLimiter.UNLIMITED, RngCommand.guestShare(RateLimiter.UNLIMITED, 3, 0));
        assertEquals(4, RngCommand.guestShare(10L, 3, 0));
        assertEquals(3, RngCommand.guestShare(10L, 3, 1));
        assertEquals(3, RngCommand.guestShare(10L, 3, 2));
        assertEquals(10, RngCommand.guestShare(10L, 1, 0));
    }

    /** A full ring of 8-byte requests served in one kick; the used index at each interrupt the driver got. */
    private List<Integer> usedIndexAtEachInterruptForAFullRing(boolean eventIdx) {
        queue.setEventIdx(eventIdx);
        driver.setEventIdx(eventIdx);
        driver.setUsedEvent(0); // with EVENT_IDX: interrupt me at the first completion
        List<Integer> usedAtInterrupt = new ArrayList<>();
        RngDevice device = new RngDevice(source, new RateLimiter(RateLimiter.UNLIMITED, 1000 * MS, now::get),
                Linux.system());
        host = new EmbeddedDeviceHost(device, new SplitQueue[] {queue}, q -> usedAtInterrupt.add(driver.usedIdx()),
                null, null);
        for (int i = 0; i < driver.size(); i++) {
            driver.add(writable(0x10000 + 64L * i, 8));
        }
        host.kick(0);
        assertEquals(driver.size(), driver.usedIdx());
        return usedAtInterrupt;
    }

    @Test
    void aDriverWaitingForTheFirstCompletionHearsOfItAfterHalfARingNotAfterTheWholeBatch() {
        // So a driver that re-posts buffers as they come back refills the ring while the device reads the rest.
        assertEquals(List.of(8), usedIndexAtEachInterruptForAFullRing(true));
    }

    @Test
    void withoutEventIdxTheDriverIsInterruptedEveryHalfRing() {
        assertEquals(List.of(8, 16), usedIndexAtEachInterruptForAFullRing(false));
    }

    @Test
    void aFileSourceThatDoesNotExistIsRefusedAtOpenWithItsPath() {
        java.nio.file.Path missing = java.nio.file.Path.of("/nonexistent/entropy");
        java.nio.file.NoSuchFileException e = org.junit.jupiter.api.Assertions.assertThrows(
                java.nio.file.NoSuchFileException.class, () -> FileEntropySource.open(missing));
        assertEquals(missing.toString(), e.getFile());
    }

    @Test
    void aFileSourceReadsStraightIntoTheGivenRangeOnly() throws Exception {
        try (FileEntropySource urandom = FileEntropySource.open(java.nio.file.Path.of("/dev/urandom"));
                java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            MemorySegment target = arena.allocate(4096);
            target.fill((byte) 0x5a);
            assertEquals(0, urandom.fill(target, 100, 0), "an empty piece reads nothing and is not end of file");
            assertEquals(1024, urandom.fill(target, 1024, 1024));
            for (long i = 0; i < 1024; i++) {
                assertEquals((byte) 0x5a, target.get(ValueLayout.JAVA_BYTE, i), "byte " + i + " before the range");
                assertEquals((byte) 0x5a, target.get(ValueLayout.JAVA_BYTE, 2048 + i), "byte after the range");
            }
            org.junit.jupiter.api.Assertions.assertThrows(IndexOutOfBoundsException.class,
                    () -> urandom.fill(target, 4000, 200), "a range past the segment is refused, not read");
        }
    }

    @Test
    void aFileSourceReadsTheFileOnceAcrossGuestsAndThenReportsItsEnd() throws Exception {
        java.nio.file.Path file = java.nio.file.Files.createTempFile("entropy", ".bin");
        try {
            java.nio.file.Files.write(file, new byte[] {9, 8, 7, 6, 5});
            try (FileEntropySource file5 = FileEntropySource.open(file);
                    java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
                MemorySegment target = arena.allocate(8);
                assertEquals(3, file5.fill(target, 0, 3));
                assertEquals(2, file5.fill(target, 3, 5));
                assertEquals(-1, file5.fill(target, 5, 3));
                assertEquals(9, target.get(ValueLayout.JAVA_BYTE, 0));
                assertEquals(5, target.get(ValueLayout.JAVA_BYTE, 4));
            }
        } finally {
            java.nio.file.Files.delete(file);
        }
    }

    @Test
    void theRealTimerFiresAfterThePeriod() throws Exception {
        Linux linux = Linux.system();
        int timer = linux.timerfd();
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            assertEquals(-1, linux.read(timer, arena.allocate(8), 8), "not yet expired");
            linux.armTimer(timer, 20 * MS);
            long deadline = System.nanoTime() + 2_000 * MS;
            long expirations = 0;
            while (expirations == 0 && System.nanoTime() < deadline) {
                Thread.sleep(5);
                expirations = linux.readEventfd(timer);
            }
            assertTrue(expirations >= 1);
        } finally {
            linux.close(timer);
        }
    }
}
