package dev.vhostdevice.vhostuser.frontend;

import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.testing.DriverQueue;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer;
import dev.vhostdevice.virtqueue.testing.PackedDriverQueue;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.LockSupport;

/**
 * The front-end's and guest driver's side of one virtqueue: the rings (a {@link DriverQueue}, or a
 * {@link PackedDriverQueue} for the packed layout, in {@link GuestRam}),
 * the kick, call and err eventfds the front-end hands over, and a second "masked" call eventfd that stands in
 * for the notifier QEMU installs before the guest unmasks its interrupt. Buffers posted with {@link #post} are
 * allocated in guest RAM; {@link #awaitUsed} returns what the device wrote into them.
 */
public final class FrontendQueue implements AutoCloseable {
    private static final Linux LINUX = Linux.system();

    /** A used entry with the bytes the device wrote into the chain's writable buffer. */
    public record Completion(int head, int length, byte[] written) {
        public String text() {
            return new String(written, java.nio.charset.StandardCharsets.ISO_8859_1);
        }
    }

    public final int index;
    private final GuestRam ram;
    private final int regionIndex;
    private final RingLayout layout;
    private DriverQueue driver;
    private PackedDriverQueue packed;
    /** Packed: used descriptors consumed so far (16-bit), the counterpart of a split ring's used index. */
    private int packedConsumed;
    private final int kick;
    private final int call;
    private final int maskedCall;
    private final int err;
    /** Writable buffer (gpa, length) of each posted head. */
    private final Map<Integer, long[]> writableOf = new HashMap<>();
    /** Used entries consumed by {@link #awaitUsed}. */
    private int seen;

    FrontendQueue(int index, int size, GuestRam ram, int regionIndex) throws ErrnoException {
        this(index, size, ram, regionIndex, RingLayout.SPLIT);
    }

    FrontendQueue(int index, int size, GuestRam ram, int regionIndex, RingLayout layout) throws ErrnoException {
        this.index = index;
        this.layout = layout;
        this.ram = ram;
        this.regionIndex = regionIndex;
        this.kick = LINUX.eventfd();
        this.call = LINUX.eventfd();
        this.maskedCall = LINUX.eventfd();
        this.err = LINUX.eventfd();
        relayout(size);
    }

    /** New rings at new addresses (a guest reboot, or a per-ring reset): used idx starts from 0 again. */
    public void relayout(int size) {
        if (layout.packed()) {
            long base = ram.allocateIn(regionIndex, PackedDriverQueue.layoutBytes(size), 4096);
            packed = PackedDriverQueue.layout(ram.memory(), size, base);
            packedConsumed = 0;
        } else {
            long base = ram.allocateIn(regionIndex, DriverQueue.layoutBytes(size), 4096);
            driver = DriverQueue.layout(ram.memory(), size, base);
        }
        writableOf.clear();
        seen = 0;
    }

    public RingLayout layout() {
        return layout;
    }

    /**
     * A reconnect: this queue (of a new front-end connection, with its own eventfds) drives the rings
     * {@code previous} laid out in the same guest RAM, where the guest's driver left them.
     */
    public void continueFrom(FrontendQueue previous) {
        if (previous.ram != ram || previous.layout != layout) {
            throw new IllegalArgumentException("not the same guest RAM and layout");
        }
        driver = previous.driver;
        packed = previous.packed;
        packedConsumed = previous.packedConsumed;
        seen = previous.seen;
        writableOf.clear();
        writableOf.putAll(previous.writableOf);
    }

    /** The split driver (split layout only). */
    public DriverQueue driver() {
        if (driver == null) {
            throw new IllegalStateException("queue " + index + " is packed");
        }
        return driver;
    }

    /** The packed driver (packed layout only). */
    public PackedDriverQueue packedDriver() {
        if (packed == null) {
            throw new IllegalStateException("queue " + index + " is split");
        }
        return packed;
    }

    public int size() {
        return packed != null ? packed.size() : driver.size();
    }

    /** SET_VRING_BASE for this ring when fresh. */
    public int freshBase() {
        return layout.freshBase();
    }

    public long descGpa() {
        return packed != null ? packed.descAddress() : driver.descAddress();
    }

    public long availGpa() {
        return packed != null ? packed.driverAreaAddress() : driver.availAddress();
    }

    public long usedGpa() {
        return packed != null ? packed.deviceAreaAddress() : driver.usedAddress();
    }

    private void write(long gpa, byte[] bytes) {
        if (packed != null) {
            packed.write(gpa, bytes);
        } else {
            driver.write(gpa, bytes);
        }
    }

    private byte[] read(long gpa, int length) {
        return packed != null ? packed.read(gpa, length) : driver.read(gpa, length);
    }

    private int add(Buffer... buffers) {
        return packed != null ? packed.add(buffers) : driver.add(buffers);
    }

    public int kickFd() {
        return kick;
    }

    public int callFd() {
        return call;
    }

    public int maskedCallFd() {
        return maskedCall;
    }

    public int errFd() {
        return err;
    }

    public long descUva() {
        return ram.uva(descGpa());
    }

    public long availUva() {
        return ram.uva(availGpa());
    }

    public long usedUva() {
        return ram.uva(usedGpa());
    }

    /** Publishes one chain: {@code readable} bytes device-readable, then {@code writable} bytes device-writable. */
    public int post(byte[] readable, int writable) {
        List<Buffer> buffers = new ArrayList<>(2);
        if (readable.length > 0) {
            long at = ram.allocateIn(regionIndex, readable.length, 8);
            write(at, readable);
            buffers.add(Buffer.readable(at, readable.length));
        }
        long out = 0;
        if (writable > 0) {
            out = ram.allocateIn(regionIndex, writable, 8);
            buffers.add(Buffer.writable(out, writable));
        }
        int head = add(buffers.toArray(Buffer[]::new));
        writableOf.put(head, new long[] {out, writable});
        return head;
    }

    public int post(String readable, int writable) {
        return post(readable.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1), writable);
    }

    /** Publishes a chain of explicit buffers (any GPAs, e.g. spanning two regions). */
    public int post(Buffer... buffers) {
        int head = add(buffers);
        for (Buffer b : buffers) {
            if (b.writable()) {
                writableOf.put(head, new long[] {b.address(), b.length()});
            }
        }
        return head;
    }

    /** Signals the kick eventfd, as the guest's notify does. */
    public void kick() throws ErrnoException {
        LINUX.writeEventfd(kick, 1);
    }

    /** The used index the device published (packed: used descriptors consumed plus those visible ahead). */
    public int usedIdx() {
        return packed != null ? (packedConsumed + packed.usedAhead()) & 0xFFFF : driver.usedIdx();
    }

    /**
     * Waits for the next used entry, then (like Linux's driver) moves used_event past it, so that with EVENT_IDX
     * the next completion interrupts again. Throws AssertionError if none arrives within {@code timeout}. */
    public Completion awaitUsed(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        DriverQueue.Used used;
        while ((used = packed != null ? packed.pollUsed() : driver.pollUsed()) == null) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("queue " + index + ": no used entry within " + timeout + " ("
                        + (packed != null ? packed : "used idx " + driver.usedIdx() + ", avail idx " + driver.availIdx())
                        + ")");
            }
            LockSupport.parkNanos(100_000);
        }
        seen = (seen + 1) & 0xFFFF;
        if (packed != null) {
            packedConsumed = seen;
        } else {
            // As Linux's virtqueue_get_buf with callbacks enabled: interrupt me at the next completion (EVENT_IDX).
            driver.setUsedEvent(seen);
        }
        long[] w = writableOf.remove(used.head());
        byte[] written = new byte[0];
        if (w != null && w[1] > 0) {
            written = read(w[0], (int) Math.min(used.length(), w[1]));
        }
        return new Completion(used.head(), used.length(), written);
    }

    /** Waits until the used index reaches {@code expected} (without consuming entries). */
    public void awaitUsedIdx(int expected, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (usedIdx() != expected) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("queue " + index + ": used idx " + usedIdx() + ", expected " + expected
                        + " within " + timeout);
            }
            LockSupport.parkNanos(100_000);
        }
    }

    /** Waits for the call eventfd (the guest interrupt); returns the count read, 0 on timeout. */
    public long awaitCall(Duration timeout) throws ErrnoException {
        return Fds.awaitEventfd(call, timeout);
    }

    /** Reads and clears the call eventfd without waiting. */
    public long takeCalls() throws ErrnoException {
        return LINUX.readEventfd(call);
    }

    @Override
    public void close() {
        LINUX.close(kick);
        LINUX.close(call);
        LINUX.close(maskedCall);
        LINUX.close(err);
    }
}
