package dev.vhostdevice.i2c;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

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

/**
 * {@link I2cHost} over glibc's open/ioctl through java.lang.foreign. Ioctl numbers from linux/i2c-dev.h,
 * struct layouts (LP64) from linux/i2c-dev.h and linux/i2c.h:
 * <pre>
 * struct i2c_msg              { __u16 addr; __u16 flags; __u16 len; __u8 *buf; }            16 bytes, buf at 8
 * struct i2c_rdwr_ioctl_data  { struct i2c_msg *msgs; __u32 nmsgs; }                        16 bytes
 * struct i2c_smbus_ioctl_data { __u8 read_write; __u8 command; __u32 size; union *data; }   16 bytes, size at 4
 * </pre>
 * Each thread gets its own scratch (message array, argument struct, errno state): nothing is shared between
 * the workers of several guests, and the steady state allocates nothing.
 */
final class FfmI2cHost implements I2cHost {
    static final FfmI2cHost INSTANCE = new FfmI2cHost();

    static final long I2C_SLAVE = 0x0703;
    static final long I2C_FUNCS = 0x0705;
    static final long I2C_RDWR = 0x0707;
    static final long I2C_SMBUS = 0x0720;
    static final int I2C_M_RD = 0x0001;
    private static final int O_RDWR = 2;
    private static final int O_CLOEXEC = 0x80000;

    static final long I2C_MSG_SIZE = 16;
    private static final long MSG_ADDR = 0;
    private static final long MSG_FLAGS = 2;
    private static final long MSG_LEN = 4;
    private static final long MSG_BUF = 8;
    private static final long RDWR_NMSGS = 8;
    private static final long SMBUS_READ_WRITE = 0;
    private static final long SMBUS_COMMAND = 1;
    private static final long SMBUS_SIZE = 4;
    private static final long SMBUS_DATA = 8;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");
    private static final MethodHandle OPEN = LINKER.downcallHandle(find("open"),
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), CAPTURE_ERRNO,
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle IOCTL_POINTER = LINKER.downcallHandle(find("ioctl"),
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS), CAPTURE_ERRNO,
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle IOCTL_VALUE = LINKER.downcallHandle(find("ioctl"),
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG), CAPTURE_ERRNO,
            Linker.Option.firstVariadicArg(2));

    private static final class Scratch {
        final MemorySegment state = Arena.ofAuto().allocate(CALL_STATE);
        final MemorySegment messages = Arena.ofAuto().allocate(I2C_MSG_SIZE * I2cTransfer.MAX_MESSAGES, 8);
        final MemorySegment argument = Arena.ofAuto().allocate(16, 8);
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private FfmI2cHost() {
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
    public long functionality(int fd) throws ErrnoException {
        Scratch s = SCRATCH.get();
        int rc = ioctl(s, fd, I2C_FUNCS, s.argument);
        if (rc < 0) {
            throw new ErrnoException("ioctl I2C_FUNCS", -rc);
        }
        return s.argument.get(JAVA_LONG, 0);
    }

    @Override
    public int setAddress(int fd, int address) {
        Scratch s = SCRATCH.get();
        try {
            int rc = (int) IOCTL_VALUE.invokeExact(s.state, fd, I2C_SLAVE, (long) address);
            return rc < 0 ? -errno(s.state) : 0;
        } catch (Throwable t) {
            throw new AssertionError("ioctl downcall", t);
        }
    }

    @Override
    public int readWrite(int fd, I2cTransfer transfer) {
        Scratch s = SCRATCH.get();
        long base = transfer.data().address();
        for (int i = 0; i < transfer.count(); i++) {
            long at = i * I2C_MSG_SIZE;
            s.messages.set(JAVA_SHORT, at + MSG_ADDR, (short) transfer.address(i));
            s.messages.set(JAVA_SHORT, at + MSG_FLAGS, (short) (transfer.isRead(i) ? I2C_M_RD : 0));
            s.messages.set(JAVA_SHORT, at + MSG_LEN, (short) transfer.length(i));
            s.messages.set(JAVA_LONG, at + MSG_BUF, base + transfer.offset(i));
        }
        s.argument.set(ADDRESS, 0, s.messages);
        s.argument.set(JAVA_INT, RDWR_NMSGS, transfer.count());
        return ioctl(s, fd, I2C_RDWR, s.argument);
    }

    @Override
    public int smbus(int fd, int readWrite, int command, int size, MemorySegment data) {
        Scratch s = SCRATCH.get();
        s.argument.set(JAVA_BYTE, SMBUS_READ_WRITE, (byte) readWrite);
        s.argument.set(JAVA_BYTE, SMBUS_COMMAND, (byte) command);
        s.argument.set(JAVA_INT, SMBUS_SIZE, size);
        s.argument.set(ADDRESS, SMBUS_DATA, data);
        int rc = ioctl(s, fd, I2C_SMBUS, s.argument);
        return Math.min(rc, 0);
    }

    private static int ioctl(Scratch s, int fd, long request, MemorySegment argument) {
        try {
            int rc = (int) IOCTL_POINTER.invokeExact(s.state, fd, request, argument);
            return rc < 0 ? -errno(s.state) : rc;
        } catch (Throwable t) {
            throw new AssertionError("ioctl downcall", t);
        }
    }

    @Override
    public void close(int fd) {
        Linux.system().close(fd); // the back-end's own binding: one close downcall in the process
    }
}
