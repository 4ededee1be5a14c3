package dev.vhostdevice.gpio;

import dev.vhostdevice.vhostuser.device.DeviceContext;

/**
 * The lines behind one guest's virtio-gpio device: a host chip ({@link HostChip}) or a simulated one
 * ({@link SimulatedChip}). The device checks every guest value before calling in (line in range, direction and
 * irq type valid, value 0 or 1) and keeps the virtio state (directions the guest set, cached values, irq
 * types); a chip only applies them. Data-path calls return a negative errno instead of throwing.
 *
 * <p>Interrupts go through the device's worker: {@link #start} gives the chip the worker's fd watching, the
 * chip watches the fds that signal its edges (one per host line request, one eventfd for a simulated chip), the
 * device forwards their readiness to {@link #ready}, and the chip reports each line that had an edge to the
 * {@link EdgeSink}. No thread, no polling. All calls come from the device's worker.
 */
public interface GpioChip extends AutoCloseable {

    /** Where a chip reports a line's interrupt condition (an edge it listens for, or its level becoming active). */
    @FunctionalInterface
    interface EdgeSink {
        void edge(int line);
    }

    /** Number of lines (1 to 65535). */
    int lineCount();

    /** The line's name, "" for none. */
    String lineName(int line);

    /** The line's direction when the chip was opened: VIRTIO_GPIO_DIRECTION_*. */
    int initialDirection(int line);

    /**
     * Applies {@code direction} (VIRTIO_GPIO_DIRECTION_*; NONE releases the line), the output {@code value} for
     * OUT, and edge detection for {@code irqType} (VIRTIO_GPIO_IRQ_TYPE_*). 0 or -errno (then nothing changed).
     */
    int configure(int line, int direction, int value, int irqType);

    /** The line's level: 0, 1, or -errno. */
    int value(int line);

    /** Drives an output line to {@code value}: 0 or -errno. */
    int setValue(int line, int value);

    /** Whether the chip detects level irq types (LEVEL_HIGH, LEVEL_LOW) besides edges. */
    boolean detectsLevels();

    /** For a level irq type: whether the line is at its active level now. */
    boolean levelActive(int line, int irqType);

    /** Starts interrupt delivery: fds are watched through {@code context}, edges reported to {@code sink}. */
    void start(DeviceContext context, EdgeSink sink);

    /**
     * Whether {@code line}'s edges are reported. Turning it on forgets edges from before (they were coalesced
     * into an interrupt already delivered); while off, nothing wakes the worker for that line.
     */
    void listen(int line, boolean on);

    /** A watched fd with {@code token} is ready: report the edges it carries. */
    void ready(int token, int readyEvents);

    /**
     * Every line back to how it was when the chip was opened (a device reset): a simulated chip's lines inputs
     * reading 0 with no edges pending, a host chip's lines released.
     */
    void reset();

    /** Releases every line and closes the chip's fds. */
    @Override
    void close();
}
