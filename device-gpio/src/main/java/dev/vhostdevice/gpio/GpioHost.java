package dev.vhostdevice.gpio;

import dev.vhostdevice.virtqueue.memory.ErrnoException;

/**
 * The native seam of this device: the GPIO character device, uAPI v2 (linux/gpio.h), one line per line request.
 * {@link #system()} is the real one (java.lang.foreign, no libgpiod); tests script a chip behind it. Data-path
 * calls return a negative errno instead of throwing, so a failing line costs no allocation per request.
 */
public interface GpioHost {
    /** {@code enum gpio_v2_line_flag}. */
    long GPIO_V2_LINE_FLAG_USED = 1L << 0;
    long GPIO_V2_LINE_FLAG_ACTIVE_LOW = 1L << 1;
    long GPIO_V2_LINE_FLAG_INPUT = 1L << 2;
    long GPIO_V2_LINE_FLAG_OUTPUT = 1L << 3;
    long GPIO_V2_LINE_FLAG_EDGE_RISING = 1L << 4;
    long GPIO_V2_LINE_FLAG_EDGE_FALLING = 1L << 5;
    /** {@code enum gpio_v2_line_event_id}, as bits of {@link #readEvents}'s answer. */
    int GPIO_V2_LINE_EVENT_RISING_EDGE = 1;
    int GPIO_V2_LINE_EVENT_FALLING_EDGE = 2;

    /** {@code struct gpiochip_info}. */
    record ChipInfo(String name, String label, int lines) {
    }

    /** {@code struct gpio_v2_line_info}: what the seam needs of it. */
    record LineInfo(String name, String consumer, long flags) {
    }

    /** {@code open(path, O_RDWR | O_CLOEXEC)}. */
    int open(String path) throws ErrnoException;

    /** GPIO_GET_CHIPINFO_IOCTL. */
    ChipInfo chipInfo(int chipFd) throws ErrnoException;

    /** GPIO_V2_GET_LINEINFO_IOCTL for {@code offset}. */
    LineInfo lineInfo(int chipFd, int offset) throws ErrnoException;

    /**
     * GPIO_V2_GET_LINE_IOCTL for the one line {@code offset} with {@code flags} (GPIO_V2_LINE_FLAG_*), consumer
     * {@code vhost-device-gpio}, and {@code outputValue} for an output: the line request's fd, made non-blocking,
     * or -errno.
     */
    int requestLine(int chipFd, int offset, long flags, int outputValue);

    /** GPIO_V2_LINE_SET_CONFIG_IOCTL on a line request of one line: 0 or -errno. */
    int setConfig(int lineFd, long flags, int outputValue);

    /** GPIO_V2_LINE_GET_VALUES_IOCTL: 0, 1 or -errno. */
    int getValue(int lineFd);

    /** GPIO_V2_LINE_SET_VALUES_IOCTL: 0 or -errno. */
    int setValue(int lineFd, int value);

    /**
     * Reads every {@code struct gpio_v2_line_event} queued on a line request fd: the GPIO_V2_LINE_EVENT_* ids
     * seen, or'ed (0 for none), or -errno.
     */
    int readEvents(int lineFd);

    void close(int fd);

    static GpioHost system() {
        return FfmGpioHost.INSTANCE;
    }
}
