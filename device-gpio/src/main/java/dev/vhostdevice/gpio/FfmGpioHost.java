package dev.vhostdevice.gpio;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;

/**
 * {@link GpioHost} over glibc's open/ioctl/read through java.lang.foreign. Ioctl numbers and struct layouts
 * from linux/gpio.h (checked against the installed header by FfmGpioHostTest):
 * <pre>
 * struct gpiochip_info              { char name[32]; char label[32]; u32 lines; }                       68 bytes
 * struct gpio_v2_line_attribute     { u32 id; u32 padding; u64 flags | values | u32 debounce; }          16 bytes
 * struct gpio_v2_line_config_attribute { struct gpio_v2_line_attribute attr; u64 mask; }                 24 bytes
 * struct gpio_v2_line_config        { u64 flags; u32 num_attrs; u32 padding[5]; attrs[10]; }           272 bytes
 * struct gpio_v2_line_request       { u32 offsets[64]; char consumer[32]; config; u32 num_lines;
 *                                     u32 event_buffer_size; u32 padding[5]; s32 fd; }                 592 bytes
 * struct gpio_v2_line_values        { u64 bits; u64 mask; }                                              16 bytes
 * struct gpio_v2_line_info          { char name[32]; char consumer[32]; u32 offset; u32 num_attrs;
 *                                     u64 flags; attrs[10]; u32 padding[4]; }                          256 bytes
 * struct gpio_v2_line_event         { u64 timestamp_ns; u32 id; u32 offset; u32 seqno; u32 line_seqno;
 *                                     u32 padding[6]; }                                                 48 bytes
 * </pre>
 * Each thread gets its own scratch: nothing is shared between the workers of several guests, and the steady
 * state allocates nothing.
 */
final class FfmGpioHost implements GpioHost {
    static final FfmGpioHost INSTANCE = new FfmGpioHost();

    static final long GPIOCHIP_INFO_SIZE = 68;
    static final long GPIO_V2_LINE_ATTRIBUTE_SIZE = 16;
    static final long GPIO_V2_LINE_CONFIG_ATTRIBUTE_SIZE = 24;
    static final long GPIO_V2_LINE_CONFIG_SIZE = 272;
    static final long GPIO_V2_LINE_REQUEST_SIZE = 592;
    static final long GPIO_V2_LINE_VALUES_SIZE = 16;
    static final long GPIO_V2_LINE_INFO_SIZE = 256;
    static final long GPIO_V2_LINE_EVENT_SIZE = 48;

    /** _IOR(0xB4, 0x01, struct gpiochip_info). */
    static final long GPIO_GET_CHIPINFO_IOCTL = ior(0x01, GPIOCHIP_INFO_SIZE);
    /** _IOWR(0xB4, 0x05, struct gpio_v2_line_info). */
    static final long GPIO_V2_GET_LINEINFO_IOCTL = iowr(0x05, GPIO_V2_LINE_INFO_SIZE);
    /** _IOWR(0xB4, 0x07, struct gpio_v2_line_request). */
    static final long GPIO_V2_GET_LINE_IOCTL = iowr(0x07, GPIO_V2_LINE_REQUEST_SIZE);
    /** _IOWR(0xB4, 0x0D, struct gpio_v2_line_config). */
    static final long GPIO_V2_LINE_SET_CONFIG_IOCTL = iowr(0x0D, GPIO_V2_LINE_CONFIG_SIZE);
    /** _IOWR(0xB4, 0x0E, struct gpio_v2_line_values). */
    static final long GPIO_V2_LINE_GET_VALUES_IOCTL = iowr(0x0E, GPIO_V2_LINE_VALUES_SIZE);
    /** _IOWR(0xB4, 0x0F, struct gpio_v2_line_values). */
    static final long GPIO_V2_LINE_SET_VALUES_IOCTL = iowr(0x0F, GPIO_V2_LINE_VALUES_SIZE);

    static final int GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES = 2;
    static final String CONSUMER = "vhost-device-gpio";
    /** Events read per read(2) call; more are read by the next call in the same drain. */
    static final int EVENTS_PER_READ = 16;

    private static final int GPIO_IOCTL_MAGIC = 0xB4;
    private static final int IOC_WRITE = 1;
    private static final int IOC_READ = 2;
    private static final int O_RDWR = 2;
    private static final int O_CLOEXEC = 0x80000;
    private static final int NAME_SIZE = 32;

    static final long INFO_LINES = 64;
    static final long LINEINFO_CONSUMER = 32;
    static final long LINEINFO_OFFSET = 64;
    static final long LINEINFO_FLAGS = 72;
    static final long REQUEST_CONSUMER = 256;
    static final long REQUEST_CONFIG = 288;
    static final long REQUEST_NUM_LINES = 560;
    static final long REQUEST_FD = 588;
    static final long CONFIG_NUM_ATTRS = 8;
    static final long CONFIG_ATTRS = 32;
    static final long ATTR_VALUES = 8;
    static final long ATTR_MASK = 16;
    static final long EVENT_ID = 8;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");
    private static final MethodHandle OPEN = LINKER.downcallHandle(find("open"),
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), CAPTURE_ERRNO,
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle IOCTL = LINKER.downcallHandle(find("ioctl"),
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS), CAPTURE_ERRNO,
            Linker.Option.firstVariadicArg(2));

    private static final class Scratch {
        final MemorySegment state = Arena.ofAuto().allocate(CALL_STATE);
        final MemorySegment argument = Arena.ofAuto().allocate(GPIO_V2_LINE_REQUEST_SIZE, 8);
        final MemorySegment events = Arena.ofAuto().allocate(GPIO_V2_LINE_EVENT_SIZE * EVENTS_PER_READ, 8);
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private FfmGpioHost() {
    }

    static long ior(int number, long size) {
        return ioc(IOC_READ, number, size);
    }

    static long iowr(int number, long size) {
        return ioc(IOC_READ | IOC_WRITE, number, size);
    }

    private static long ioc(int dir, int number, long size) {
        return ((long) dir << 30) | (size << 16) | (GPIO_IOCTL_MAGIC << 8) | number;
    }

    private static MemorySegment find(String name) {
        return LINKER.defaultLookup().find(name).orElseThrow(() -> new UnsatisfiedLinkError(name));
    }

    private static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    @Override
    public int open(String path) throws ErrnoException {
        Scratch s = SCRATCH.get();
        try (Arena arena = Arena.ofConfined()) {
            int fd = (int) OPEN.invokeExact(s.state, arena.allocateFrom(path), O_RDWR | O_CLOEXEC, 0);
            if (fd < 0) {
                throw new ErrnoException("open " + path, errno(s.state));
            }
            return fd;
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("open downcall", t);
        }
    }

    @Override
    public ChipInfo chipInfo(int chipFd) throws ErrnoException {
        Scratch s = SCRATCH.get();
        MemorySegment info = cleared(s, GPIOCHIP_INFO_SIZE);
        int rc = ioctl(s, chipFd, GPIO_GET_CHIPINFO_IOCTL, info);
        if (rc < 0) {
            throw new ErrnoException("GPIO_GET_CHIPINFO_IOCTL", -rc);
        }
        return new ChipInfo(string(info, 0), string(info, NAME_SIZE), info.get(JAVA_INT, INFO_LINES));
    }

    @Override
    public LineInfo lineInfo(int chipFd, int offset) throws ErrnoException {
        Scratch s = SCRATCH.get();
        MemorySegment info = cleared(s, GPIO_V2_LINE_INFO_SIZE);
        info.set(JAVA_INT, LINEINFO_OFFSET, offset);
        int rc = ioctl(s, chipFd, GPIO_V2_GET_LINEINFO_IOCTL, info);
        if (rc < 0) {
            throw new ErrnoException("GPIO_V2_GET_LINEINFO_IOCTL", -rc);
        }
        return new LineInfo(string(info, 0), string(info, LINEINFO_CONSUMER), info.get(JAVA_LONG, LINEINFO_FLAGS));
    }

    @Override
    public int requestLine(int chipFd, int offset, long flags, int outputValue) {
        Scratch s = SCRATCH.get();
        MemorySegment request = cleared(s, GPIO_V2_LINE_REQUEST_SIZE);
        request.set(JAVA_INT, 0, offset);
        byte[] consumer = CONSUMER.getBytes(StandardCharsets.US_ASCII);
        MemorySegment.copy(consumer, 0, request, JAVA_BYTE, REQUEST_CONSUMER, consumer.length);
        writeConfig(request.asSlice(REQUEST_CONFIG, GPIO_V2_LINE_CONFIG_SIZE), flags, outputValue);
        request.set(JAVA_INT, REQUEST_NUM_LINES, 1);
        int rc = ioctl(s, chipFd, GPIO_V2_GET_LINE_IOCTL, request);
        if (rc < 0) {
            return rc;
        }
        int fd = request.get(JAVA_INT, REQUEST_FD);
        try {
            Linux.system().setNonBlocking(fd);
        } catch (ErrnoException e) {
            close(fd);
            return -e.errno();
        }
        return fd;
    }

    /** The config of a one-line request: flags, and the output value as an attribute for an output. */
    private static void writeConfig(MemorySegment config, long flags, int outputValue) {
        config.set(JAVA_LONG, 0, flags);
        if ((flags & GPIO_V2_LINE_FLAG_OUTPUT) != 0) {
            config.set(JAVA_INT, CONFIG_NUM_ATTRS, 1);
            config.set(JAVA_INT, CONFIG_ATTRS, GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES);
            config.set(JAVA_LONG, CONFIG_ATTRS + ATTR_VALUES, outputValue & 1L);
            config.set(JAVA_LONG, CONFIG_ATTRS + ATTR_MASK, 1L);
        }
    }

    @Override
    public int setConfig(int lineFd, long flags, int outputValue) {
        Scratch s = SCRATCH.get();
        MemorySegment config = cleared(s, GPIO_V2_LINE_CONFIG_SIZE);
        writeConfig(config, flags, outputValue);
        return Math.min(ioctl(s, lineFd, GPIO_V2_LINE_SET_CONFIG_IOCTL, config), 0);
    }

    @Override
    public int getValue(int lineFd) {
        Scratch s = SCRATCH.get();
        MemorySegment values = s.argument;
        values.set(JAVA_LONG, 0, 0L);
        values.set(JAVA_LONG, 8, 1L);
        int rc = ioctl(s, lineFd, GPIO_V2_LINE_GET_VALUES_IOCTL, values);
        return rc < 0 ? rc : (int) (values.get(JAVA_LONG, 0) & 1);
    }

    @Override
    public int setValue(int lineFd, int value) {
        Scratch s = SCRATCH.get();
        MemorySegment values = s.argument;
        values.set(JAVA_LONG, 0, value & 1L);
        values.set(JAVA_LONG, 8, 1L);
        return Math.min(ioctl(s, lineFd, GPIO_V2_LINE_SET_VALUES_IOCTL, values), 0);
    }

    @Override
    public int readEvents(int lineFd) {
        Scratch s = SCRATCH.get();
        Linux linux = Linux.system();
        int seen = 0;
        try {
            while (true) {
                long n = linux.read(lineFd, s.events, s.events.byteSize());
                if (n <= 0) {
                    return seen; // -1: EAGAIN, drained
                }
                for (long at = 0; at + GPIO_V2_LINE_EVENT_SIZE <= n; at += GPIO_V2_LINE_EVENT_SIZE) {
                    seen |= s.events.get(JAVA_INT, at + EVENT_ID);
                }
                if (n < s.events.byteSize()) {
                    return seen;
                }
            }
        } catch (ErrnoException e) {
            return -e.errno();
        }
    }

    private static MemorySegment cleared(Scratch s, long size) {
        MemorySegment segment = s.argument.asSlice(0, size);
        segment.fill((byte) 0);
        return segment;
    }

    private static String string(MemorySegment segment, long offset) {
        return segment.asSlice(offset, NAME_SIZE).getString(0, StandardCharsets.UTF_8);
    }

    private static int ioctl(Scratch s, int fd, long request, MemorySegment argument) {
        try {
            int rc = (int) IOCTL.invokeExact(s.state, fd, request, argument);
            return rc < 0 ? -errno(s.state) : rc;
        } catch (Throwable t) {
            throw new AssertionError("ioctl downcall", t);
        }
    }

    @Override
    public void close(int fd) {
        Linux.system().close(fd);
    }
}
