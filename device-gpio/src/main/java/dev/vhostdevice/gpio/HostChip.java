package dev.vhostdevice.gpio;

import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_DIRECTION_IN;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_DIRECTION_NONE;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_DIRECTION_OUT;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_IRQ_TYPE_NONE;

import dev.vhostdevice.vhostuser.device.DeviceContext;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.memory.Errno;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A host chip, {@code /dev/gpiochipN}, through the GPIO character device v2 uAPI ({@link GpioHost}). Names and
 * directions are read when the chip is opened (once per guest connection). A line is requested from the kernel
 * (one line per request, consumer {@code vhost-device-gpio}) when the guest first sets its direction or reads
 * it as an input, reconfigured in place afterwards (direction, output value and edge detection in one
 * GPIO_V2_LINE_SET_CONFIG), and released on SET_DIRECTION NONE and when the connection ends.
 *
 * <p>Interrupts: each requested line's fd is watched by the device's worker, with EPOLLIN only while the device
 * listens for that line's edges (events 0 otherwise, through {@link DeviceContext#changeWatch}), and its
 * {@code gpio_v2_line_event}s are read when it is ready. The uAPI detects edges only: level irq types are
 * refused. A failing ioctl gives the guest an error status and is logged once per line and errno.
 */
public final class HostChip implements GpioChip {
    private static final Logger LOG = LoggerFactory.getLogger(HostChip.class);

    private final GpioHost host;
    private final String path;
    private final int chipFd;
    private final String[] names;
    private final int[] initialDirection;
    /** The line request's fd, or -1 while the line is not requested. */
    private final int[] lineFd;
    private final long[] requestedFlags;
    private final Set<Long> logged = new HashSet<>();
    private DeviceContext context;
    private EdgeSink sink;

    private HostChip(GpioHost host, String path, int chipFd, String[] names, int[] initialDirection) {
        this.host = host;
        this.path = path;
        this.chipFd = chipFd;
        this.names = names;
        this.initialDirection = initialDirection;
        this.lineFd = new int[names.length];
        this.requestedFlags = new long[names.length];
        Arrays.fill(lineFd, -1);
    }

    /** Opens {@code path} and reads its lines; IllegalArgumentException with one line when it cannot. */
    public static HostChip open(GpioHost host, String path) {
        int fd;
        try {
            fd = host.open(path);
        } catch (ErrnoException e) {
            throw new IllegalArgumentException("cannot open " + path + ": " + Errno.name(e.errno()));
        }
        try {
            GpioHost.ChipInfo info = host.chipInfo(fd);
            if (info.lines() < 1 || info.lines() > 0xFFFF) {
                throw new IllegalArgumentException(path + ": the chip reports " + info.lines() + " lines");
            }
            String[] names = new String[info.lines()];
            int[] directions = new int[info.lines()];
            for (int line = 0; line < names.length; line++) {
                GpioHost.LineInfo lineInfo = host.lineInfo(fd, line);
                names[line] = lineInfo.name();
                directions[line] = (lineInfo.flags() & GpioHost.GPIO_V2_LINE_FLAG_OUTPUT) != 0
                        ? VIRTIO_GPIO_DIRECTION_OUT : VIRTIO_GPIO_DIRECTION_IN;
            }
            return new HostChip(host, path, fd, names, directions);
        } catch (ErrnoException e) {
            host.close(fd);
            throw new IllegalArgumentException(path + ": " + e.call() + " failed: " + Errno.name(e.errno()));
        } catch (RuntimeException e) {
            host.close(fd);
            throw e;
        }
    }

    @Override
    public int lineCount() {
        return names.length;
    }

    @Override
    public String lineName(int line) {
        return names[line];
    }

    @Override
    public int initialDirection(int line) {
        return initialDirection[line];
    }

    private static long flags(int direction, int irqType) {
        if (direction == VIRTIO_GPIO_DIRECTION_OUT) {
            return GpioHost.GPIO_V2_LINE_FLAG_OUTPUT;
        }
        long flags = GpioHost.GPIO_V2_LINE_FLAG_INPUT;
        if ((irqType & VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING) != 0) {
            flags |= GpioHost.GPIO_V2_LINE_FLAG_EDGE_RISING;
        }
        if ((irqType & VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING) != 0) {
            flags |= GpioHost.GPIO_V2_LINE_FLAG_EDGE_FALLING;
        }
        return flags;
    }

    @Override
    public int configure(int line, int direction, int value, int irqType) {
        if (direction == VIRTIO_GPIO_DIRECTION_NONE) {
            release(line);
            return 0;
        }
        if (direction == VIRTIO_GPIO_DIRECTION_OUT && irqType != VIRTIO_GPIO_IRQ_TYPE_NONE) {
            return failed(line, "an output with edge detection", -Errno.EINVAL);
        }
        long flags = flags(direction, irqType);
        if (lineFd[line] >= 0) {
            int rc = host.setConfig(lineFd[line], flags, value);
            if (rc < 0) {
                return failed(line, "GPIO_V2_LINE_SET_CONFIG_IOCTL", rc);
            }
            requestedFlags[line] = flags;
            return 0;
        }
        return request(line, flags, value);
    }

    private int request(int line, long flags, int value) {
        int fd = host.requestLine(chipFd, line, flags, value);
        if (fd < 0) {
            return failed(line, "GPIO_V2_GET_LINE_IOCTL", fd);
        }
        try {
            context.watchFd(fd, 0, line); // nothing until the device listens for edges
        } catch (RuntimeException e) {
            host.close(fd);
            LOG.error("gpio: {} line {}: cannot watch its fd: {}", path, line, e.getMessage());
            return -Errno.EINVAL;
        }
        lineFd[line] = fd;
        requestedFlags[line] = flags;
        return 0;
    }

    private void release(int line) {
        int fd = lineFd[line];
        if (fd >= 0) {
            lineFd[line] = -1;
            context.unwatchFd(fd);
            host.close(fd);
        }
    }

    @Override
    public int value(int line) {
        if (lineFd[line] < 0) {
            // Reading an input needs a request; an output the guest has not configured is left alone.
            if (initialDirection[line] != VIRTIO_GPIO_DIRECTION_IN) {
                return failed(line, "reading an output line the guest has not configured", -Errno.EPERM);
            }
            int rc = request(line, GpioHost.GPIO_V2_LINE_FLAG_INPUT, 0);
            if (rc < 0) {
                return rc;
            }
        }
        int value = host.getValue(lineFd[line]);
        return value < 0 ? failed(line, "GPIO_V2_LINE_GET_VALUES_IOCTL", value) : value;
    }

    @Override
    public int setValue(int line, int value) {
        if (lineFd[line] < 0) {
            // An output at start-up the guest sets before configuring it: it takes the line at that value.
            return request(line, GpioHost.GPIO_V2_LINE_FLAG_OUTPUT, value);
        }
        int rc = host.setValue(lineFd[line], value);
        return rc < 0 ? failed(line, "GPIO_V2_LINE_SET_VALUES_IOCTL", rc) : 0;
    }

    @Override
    public boolean detectsLevels() {
        return false;
    }

    @Override
    public boolean levelActive(int line, int irqType) {
        return false;
    }

    @Override
    public void start(DeviceContext deviceContext, EdgeSink edgeSink) {
        this.context = deviceContext;
        this.sink = edgeSink;
    }

    @Override
    public void listen(int line, boolean on) {
        int fd = lineFd[line];
        if (fd < 0) {
            return;
        }
        if (on) {
            drain(line, fd); // edges from before were coalesced into an interrupt already delivered
        }
        context.changeWatch(fd, on ? Linux.EPOLLIN : 0, line);
    }

    private int drain(int line, int fd) {
        int seen = host.readEvents(fd);
        if (seen < 0) {
            failed(line, "reading line events", seen);
        }
        return seen;
    }

    @Override
    public void ready(int token, int readyEvents) {
        if (token < 0 || token >= lineFd.length || lineFd[token] < 0) {
            return; // a line released within the same batch
        }
        int seen = drain(token, lineFd[token]);
        if (seen > 0) {
            sink.edge(token);
        } else if (seen < 0 || (readyEvents & (Linux.EPOLLERR | Linux.EPOLLHUP)) != 0) {
            context.changeWatch(lineFd[token], 0, token); // a broken fd must not spin the worker
        }
    }

    /** Logs {@code what} failing with {@code negativeErrno} once per line and errno; returns it. */
    private int failed(int line, String what, int negativeErrno) {
        if (logged.add(((long) line << 32) | -negativeErrno)) {
            LOG.warn("gpio: {} line {}: {} failed: {} (logged once per line and errno; the guest gets an error"
                    + " status)", path, line, what, Errno.name(-negativeErrno));
        }
        return negativeErrno;
    }

    /** The flags the line was last requested or configured with (tests). */
    long requestedFlags(int line) {
        return lineFd[line] >= 0 ? requestedFlags[line] : 0;
    }

    @Override
    public void reset() {
        for (int line = 0; line < lineFd.length; line++) {
            release(line);
        }
    }

    @Override
    public void close() {
        for (int line = 0; line < lineFd.length; line++) {
            if (context != null) {
                release(line);
            } else if (lineFd[line] >= 0) {
                host.close(lineFd[line]);
                lineFd[line] = -1;
            }
        }
        host.close(chipFd);
    }
}
