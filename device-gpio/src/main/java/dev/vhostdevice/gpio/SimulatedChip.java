package dev.vhostdevice.gpio;

import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_DIRECTION_IN;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_DIRECTION_OUT;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW;

import dev.vhostdevice.vhostuser.device.DeviceContext;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.util.Arrays;

/**
 * The {@code sN} chip: N lines named {@code sim-0} … {@code sim-(N-1)}, all inputs reading 0 at first, wired in
 * pairs (0↔1, 2↔3, …). A line reads its own value while it is an output, and its partner's while the partner is
 * an output; otherwise 0 (pulled down). Every change of what a line reads is an edge on it, reported where the
 * guest enabled that edge (rising, falling) or level (becoming high, becoming low; a level type also fires while
 * the level holds, see {@link #levelActive}). With an odd N the last line has no partner.
 *
 * <p>Edges happen on the worker (a guest SET_VALUE or SET_DIRECTION), but are delivered the way a host chip's
 * are: the chip marks the line pending and signals its one eventfd, which the worker watches; the readiness
 * comes back through {@link #ready}. So the simulated chip exercises the same epoll path, with no thread and no
 * timer.
 */
public final class SimulatedChip implements GpioChip {
    public static final int MAX_LINES = 256;
    /** The epoll token of the chip's eventfd. */
    static final int TOKEN = 0;

    private final Linux linux;
    private final int lineCount;
    private final int[] direction;
    private final int[] driven;
    private final int[] irqType;
    private final boolean[] listening;
    private final long[] pending;
    private boolean anyPending;
    private DeviceContext context;
    private EdgeSink sink;
    private int eventFd = -1;

    public SimulatedChip(int lines, Linux linux) {
        if (lines < 1 || lines > MAX_LINES) {
            throw new IllegalArgumentException("a simulated chip has 1 to " + MAX_LINES + " lines, not " + lines);
        }
        this.linux = linux;
        this.lineCount = lines;
        this.direction = new int[lines];
        this.driven = new int[lines];
        this.irqType = new int[lines];
        this.listening = new boolean[lines];
        this.pending = new long[(lines + 63) / 64];
        Arrays.fill(direction, VIRTIO_GPIO_DIRECTION_IN);
    }

    @Override
    public int lineCount() {
        return lineCount;
    }

    @Override
    public String lineName(int line) {
        return "sim-" + line;
    }

    @Override
    public int initialDirection(int line) {
        return VIRTIO_GPIO_DIRECTION_IN;
    }

    /** What {@code line} reads now. */
    private int level(int line) {
        if (direction[line] == VIRTIO_GPIO_DIRECTION_OUT) {
            return driven[line];
        }
        int partner = line ^ 1;
        return partner < lineCount && direction[partner] == VIRTIO_GPIO_DIRECTION_OUT ? driven[partner] : 0;
    }

    @Override
    public int configure(int line, int newDirection, int value, int newIrqType) {
        int partner = line ^ 1;
        int before = level(line);
        int partnerBefore = partner < lineCount ? level(partner) : 0;
        direction[line] = newDirection;
        if (newDirection == VIRTIO_GPIO_DIRECTION_OUT) {
            driven[line] = value;
        }
        irqType[line] = newIrqType;
        changed(line, before, partner, partnerBefore);
        return 0;
    }

    @Override
    public int value(int line) {
        return level(line);
    }

    @Override
    public int setValue(int line, int value) {
        int partner = line ^ 1;
        int before = level(line);
        int partnerBefore = partner < lineCount ? level(partner) : 0;
        driven[line] = value;
        changed(line, before, partner, partnerBefore);
        return 0;
    }

    private void changed(int line, int before, int partner, int partnerBefore) {
        edgeIfChanged(line, before);
        if (partner < lineCount) {
            edgeIfChanged(partner, partnerBefore);
        }
    }

    private void edgeIfChanged(int line, int before) {
        int now = level(line);
        if (now == before || !listening[line]) {
            return;
        }
        int wanted = now == 1 ? VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING | VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH
                : VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING | VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW;
        if ((irqType[line] & wanted) == 0) {
            return;
        }
        pending[line >>> 6] |= 1L << line;
        if (!anyPending && eventFd >= 0) {
            anyPending = true;
            try {
                linux.writeEventfd(eventFd, 1);
            } catch (ErrnoException e) {
                throw new IllegalStateException("simulated chip: cannot signal its eventfd: " + e.getMessage(), e);
            }
        }
    }

    @Override
    public boolean detectsLevels() {
        return true;
    }

    @Override
    public boolean levelActive(int line, int type) {
        int level = level(line);
        return type == VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH ? level == 1 : type == VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW && level == 0;
    }

    @Override
    public void start(DeviceContext deviceContext, EdgeSink edgeSink) {
        this.context = deviceContext;
        this.sink = edgeSink;
        try {
            eventFd = linux.eventfd();
        } catch (ErrnoException e) {
            throw new IllegalStateException("simulated chip: no eventfd: " + e.getMessage(), e);
        }
        try {
            deviceContext.watchFd(eventFd, Linux.EPOLLIN, TOKEN);
        } catch (RuntimeException e) {
            linux.close(eventFd);
            eventFd = -1;
            throw e;
        }
    }

    @Override
    public void listen(int line, boolean on) {
        listening[line] = on;
        if (on) {
            pending[line >>> 6] &= ~(1L << line);
        }
    }

    @Override
    public void ready(int token, int readyEvents) {
        if (token != TOKEN || eventFd < 0) {
            return;
        }
        try {
            linux.readEventfd(eventFd);
        } catch (ErrnoException e) {
            throw new IllegalStateException("simulated chip: cannot read its eventfd: " + e.getMessage(), e);
        }
        anyPending = false;
        for (int word = 0; word < pending.length; word++) {
            while (pending[word] != 0) {
                int bit = Long.numberOfTrailingZeros(pending[word]);
                pending[word] &= ~(1L << bit);
                int line = word * 64 + bit;
                if (listening[line]) {
                    sink.edge(line);
                }
            }
        }
    }

    @Override
    public void reset() {
        Arrays.fill(direction, VIRTIO_GPIO_DIRECTION_IN);
        Arrays.fill(driven, 0);
        Arrays.fill(irqType, 0);
        Arrays.fill(listening, false);
        Arrays.fill(pending, 0);
    }

    @Override
    public void close() {
        if (eventFd >= 0) {
            context.unwatchFd(eventFd);
            linux.close(eventFd);
            eventFd = -1;
        }
    }
}
