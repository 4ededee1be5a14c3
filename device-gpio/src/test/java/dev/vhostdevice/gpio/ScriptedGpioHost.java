package dev.vhostdevice.gpio;

import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.memory.Errno;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A host GPIO chip scripted behind the native seam, as the kernel's GPIO character device would behave for it:
 * {@code /dev/gpiochip3} with named lines, one line per request, and line request fds that are real eventfds, so
 * the device's worker watches them through epoll exactly as it would a kernel line request. {@link #edge}
 * queues a {@code gpio_v2_line_event} the way the kernel does: only for an edge the request detects.
 */
final class ScriptedGpioHost implements GpioHost {
    static final String PATH = "/dev/gpiochip3";

    private final Linux linux = Linux.system();
    private final String[] names;
    private final long[] initialFlags;
    /** What each input line reads (test-set). */
    final int[] inputLevel;
    private final Map<Integer, Integer> lineOfFd = new HashMap<>();
    private final int[] fdOfLine;
    private final long[] flags;
    private final int[] output;
    private final int[] queuedEvents;
    /** Every call, for assertions: "request 2 0x14 0", "config 2 0x4 0", "get 2", "set 2 1", "close 2" … */
    final List<String> calls = new ArrayList<>();
    /** errno the next call of that kind fails with: "request", "config", "get", "set", "events". */
    final Map<String, Integer> failNext = new HashMap<>();
    private int chipFd = -1;
    int openFds;

    ScriptedGpioHost(String[] names, long[] initialFlags) {
        this.names = names;
        this.initialFlags = initialFlags;
        this.inputLevel = new int[names.length];
        this.fdOfLine = new int[names.length];
        this.flags = new long[names.length];
        this.output = new int[names.length];
        this.queuedEvents = new int[names.length];
        java.util.Arrays.fill(fdOfLine, -1);
    }

    private int failing(String call) {
        Integer errno = failNext.remove(call);
        return errno == null ? 0 : -errno;
    }

    @Override
    public int open(String path) throws ErrnoException {
        if (!path.equals(PATH)) {
            throw new ErrnoException("open " + path, Errno.ENOENT);
        }
        chipFd = linux.eventfd();
        openFds++;
        return chipFd;
    }

    @Override
    public ChipInfo chipInfo(int fd) {
        return new ChipInfo("gpiochip3", "scripted", names.length);
    }

    @Override
    public LineInfo lineInfo(int fd, int offset) {
        return new LineInfo(names[offset], "", initialFlags[offset]);
    }

    @Override
    public int requestLine(int fd, int offset, long lineFlags, int outputValue) {
        calls.add("request " + offset + " 0x" + Long.toHexString(lineFlags) + " " + outputValue);
        int rc = failing("request");
        if (rc < 0) {
            return rc;
        }
        if (fd != chipFd || fdOfLine[offset] >= 0) {
            return -Errno.EBUSY;
        }
        int lineFd;
        try {
            lineFd = linux.eventfd();
        } catch (ErrnoException e) {
            return -e.errno();
        }
        openFds++;
        fdOfLine[offset] = lineFd;
        lineOfFd.put(lineFd, offset);
        flags[offset] = lineFlags;
        output[offset] = outputValue;
        return lineFd;
    }

    private int line(int lineFd) {
        Integer line = lineOfFd.get(lineFd);
        return line == null ? -1 : line;
    }

    @Override
    public int setConfig(int lineFd, long lineFlags, int outputValue) {
        int line = line(lineFd);
        calls.add("config " + line + " 0x" + Long.toHexString(lineFlags) + " " + outputValue);
        int rc = failing("config");
        if (rc < 0 || line < 0) {
            return line < 0 ? -Errno.EBADF : rc;
        }
        flags[line] = lineFlags;
        output[line] = outputValue;
        return 0;
    }

    @Override
    public int getValue(int lineFd) {
        int line = line(lineFd);
        calls.add("get " + line);
        int rc = failing("get");
        if (rc < 0 || line < 0) {
            return line < 0 ? -Errno.EBADF : rc;
        }
        return (flags[line] & GPIO_V2_LINE_FLAG_OUTPUT) != 0 ? output[line] : inputLevel[line];
    }

    @Override
    public int setValue(int lineFd, int value) {
        int line = line(lineFd);
        calls.add("set " + line + " " + value);
        int rc = failing("set");
        if (rc < 0 || line < 0) {
            return line < 0 ? -Errno.EBADF : rc;
        }
        output[line] = value;
        return 0;
    }

    @Override
    public int readEvents(int lineFd) {
        int line = line(lineFd);
        int rc = failing("events");
        if (rc < 0 || line < 0) {
            return line < 0 ? -Errno.EBADF : rc;
        }
        try {
            linux.readEventfd(lineFd);
        } catch (ErrnoException e) {
            return -e.errno();
        }
        int seen = queuedEvents[line];
        queuedEvents[line] = 0;
        return seen;
    }

    @Override
    public void close(int fd) {
        int line = line(fd);
        if (line >= 0) {
            calls.add("close " + line);
            lineOfFd.remove(fd);
            fdOfLine[line] = -1;
        }
        linux.close(fd);
        openFds--;
    }

    /** The input changes to {@code level}: an event on the line request if it detects that edge. */
    void edge(int line, int level) throws ErrnoException {
        inputLevel[line] = level;
        long wanted = level == 1 ? GPIO_V2_LINE_FLAG_EDGE_RISING : GPIO_V2_LINE_FLAG_EDGE_FALLING;
        if (fdOfLine[line] >= 0 && (flags[line] & wanted) != 0) {
            queuedEvents[line] |= level == 1 ? GPIO_V2_LINE_EVENT_RISING_EDGE : GPIO_V2_LINE_EVENT_FALLING_EDGE;
            linux.writeEventfd(fdOfLine[line], 1);
        }
    }

    /** The line's request flags, or 0 when not requested. */
    long flags(int line) {
        return fdOfLine[line] >= 0 ? flags[line] : 0;
    }

    int lineFd(int line) {
        return fdOfLine[line];
    }
}
