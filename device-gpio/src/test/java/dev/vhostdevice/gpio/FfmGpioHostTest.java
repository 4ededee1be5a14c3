package dev.vhostdevice.gpio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.virtqueue.memory.Errno;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The real downcalls without GPIO hardware (these machines have none): the struct sizes, offsets and ioctl
 * numbers against the installed linux/gpio.h, compiled with the system's C compiler (a missing compiler or
 * header fails the test: it never skips), and every ioctl on a regular file answered with ENOTTY, which proves
 * the calls are made and their errno comes back.
 */
class FfmGpioHostTest {
    private final GpioHost host = GpioHost.system();

    @TempDir
    Path dir;

    private static final String PROBE = """
            #include <stdio.h>
            #include <stddef.h>
            #include <linux/gpio.h>
            #define P(name, value) printf("%s %lu\\n", name, (unsigned long) (value))
            int main(void) {
              P("GPIOCHIP_INFO_SIZE", sizeof(struct gpiochip_info));
              P("GPIO_V2_LINE_ATTRIBUTE_SIZE", sizeof(struct gpio_v2_line_attribute));
              P("GPIO_V2_LINE_CONFIG_ATTRIBUTE_SIZE", sizeof(struct gpio_v2_line_config_attribute));
              P("GPIO_V2_LINE_CONFIG_SIZE", sizeof(struct gpio_v2_line_config));
              P("GPIO_V2_LINE_REQUEST_SIZE", sizeof(struct gpio_v2_line_request));
              P("GPIO_V2_LINE_VALUES_SIZE", sizeof(struct gpio_v2_line_values));
              P("GPIO_V2_LINE_INFO_SIZE", sizeof(struct gpio_v2_line_info));
              P("GPIO_V2_LINE_EVENT_SIZE", sizeof(struct gpio_v2_line_event));
              P("GPIO_GET_CHIPINFO_IOCTL", GPIO_GET_CHIPINFO_IOCTL);
              P("GPIO_V2_GET_LINEINFO_IOCTL", GPIO_V2_GET_LINEINFO_IOCTL);
              P("GPIO_V2_GET_LINE_IOCTL", GPIO_V2_GET_LINE_IOCTL);
              P("GPIO_V2_LINE_SET_CONFIG_IOCTL", GPIO_V2_LINE_SET_CONFIG_IOCTL);
              P("GPIO_V2_LINE_GET_VALUES_IOCTL", GPIO_V2_LINE_GET_VALUES_IOCTL);
              P("GPIO_V2_LINE_SET_VALUES_IOCTL", GPIO_V2_LINE_SET_VALUES_IOCTL);
              P("info.lines", offsetof(struct gpiochip_info, lines));
              P("lineinfo.consumer", offsetof(struct gpio_v2_line_info, consumer));
              P("lineinfo.offset", offsetof(struct gpio_v2_line_info, offset));
              P("lineinfo.flags", offsetof(struct gpio_v2_line_info, flags));
              P("request.consumer", offsetof(struct gpio_v2_line_request, consumer));
              P("request.config", offsetof(struct gpio_v2_line_request, config));
              P("request.num_lines", offsetof(struct gpio_v2_line_request, num_lines));
              P("request.fd", offsetof(struct gpio_v2_line_request, fd));
              P("config.num_attrs", offsetof(struct gpio_v2_line_config, num_attrs));
              P("config.attrs", offsetof(struct gpio_v2_line_config, attrs));
              P("attr.values", offsetof(struct gpio_v2_line_config_attribute, attr.values));
              P("attr.mask", offsetof(struct gpio_v2_line_config_attribute, mask));
              P("event.id", offsetof(struct gpio_v2_line_event, id));
              P("GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES", GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES);
              P("GPIO_V2_LINE_FLAG_USED", GPIO_V2_LINE_FLAG_USED);
              P("GPIO_V2_LINE_FLAG_ACTIVE_LOW", GPIO_V2_LINE_FLAG_ACTIVE_LOW);
              P("GPIO_V2_LINE_FLAG_INPUT", GPIO_V2_LINE_FLAG_INPUT);
              P("GPIO_V2_LINE_FLAG_OUTPUT", GPIO_V2_LINE_FLAG_OUTPUT);
              P("GPIO_V2_LINE_FLAG_EDGE_RISING", GPIO_V2_LINE_FLAG_EDGE_RISING);
              P("GPIO_V2_LINE_FLAG_EDGE_FALLING", GPIO_V2_LINE_FLAG_EDGE_FALLING);
              P("GPIO_V2_LINE_EVENT_RISING_EDGE", GPIO_V2_LINE_EVENT_RISING_EDGE);
              P("GPIO_V2_LINE_EVENT_FALLING_EDGE", GPIO_V2_LINE_EVENT_FALLING_EDGE);
              return 0;
            }
            """;

    @Test
    void structSizesOffsetsAndIoctlNumbersMatchTheInstalledLinuxGpioHeader() throws Exception {
        Path source = Files.writeString(dir.resolve("probe.c"), PROBE);
        Path binary = dir.resolve("probe");
        Process cc = new ProcessBuilder("cc", "-o", binary.toString(), source.toString()).redirectErrorStream(true)
                .start();
        String ccOutput = new String(cc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(cc.waitFor(60, TimeUnit.SECONDS) && cc.exitValue() == 0,
                "cannot compile against linux/gpio.h (install gcc and linux-libc-dev): " + ccOutput);
        Process probe = new ProcessBuilder(binary.toString()).start();
        Map<String, Long> header = new HashMap<>();
        for (String line : new String(probe.getInputStream().readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
            String[] parts = line.split(" ");
            header.put(parts[0], Long.parseUnsignedLong(parts[1]));
        }
        assertEquals(0, probe.waitFor());
        Map<String, Long> ours = new HashMap<>(Map.ofEntries(
                Map.entry("GPIOCHIP_INFO_SIZE", FfmGpioHost.GPIOCHIP_INFO_SIZE),
                Map.entry("GPIO_V2_LINE_ATTRIBUTE_SIZE", FfmGpioHost.GPIO_V2_LINE_ATTRIBUTE_SIZE),
                Map.entry("GPIO_V2_LINE_CONFIG_ATTRIBUTE_SIZE", FfmGpioHost.GPIO_V2_LINE_CONFIG_ATTRIBUTE_SIZE),
                Map.entry("GPIO_V2_LINE_CONFIG_SIZE", FfmGpioHost.GPIO_V2_LINE_CONFIG_SIZE),
                Map.entry("GPIO_V2_LINE_REQUEST_SIZE", FfmGpioHost.GPIO_V2_LINE_REQUEST_SIZE),
                Map.entry("GPIO_V2_LINE_VALUES_SIZE", FfmGpioHost.GPIO_V2_LINE_VALUES_SIZE),
                Map.entry("GPIO_V2_LINE_INFO_SIZE", FfmGpioHost.GPIO_V2_LINE_INFO_SIZE),
                Map.entry("GPIO_V2_LINE_EVENT_SIZE", FfmGpioHost.GPIO_V2_LINE_EVENT_SIZE),
                Map.entry("GPIO_GET_CHIPINFO_IOCTL", FfmGpioHost.GPIO_GET_CHIPINFO_IOCTL),
                Map.entry("GPIO_V2_GET_LINEINFO_IOCTL", FfmGpioHost.GPIO_V2_GET_LINEINFO_IOCTL),
                Map.entry("GPIO_V2_GET_LINE_IOCTL", FfmGpioHost.GPIO_V2_GET_LINE_IOCTL),
                Map.entry("GPIO_V2_LINE_SET_CONFIG_IOCTL", FfmGpioHost.GPIO_V2_LINE_SET_CONFIG_IOCTL),
                Map.entry("GPIO_V2_LINE_GET_VALUES_IOCTL", FfmGpioHost.GPIO_V2_LINE_GET_VALUES_IOCTL),
                Map.entry("GPIO_V2_LINE_SET_VALUES_IOCTL", FfmGpioHost.GPIO_V2_LINE_SET_VALUES_IOCTL),
                Map.entry("info.lines", FfmGpioHost.INFO_LINES),
                Map.entry("lineinfo.consumer", FfmGpioHost.LINEINFO_CONSUMER),
                Map.entry("lineinfo.offset", FfmGpioHost.LINEINFO_OFFSET),
                Map.entry("lineinfo.flags", FfmGpioHost.LINEINFO_FLAGS),
                Map.entry("request.consumer", FfmGpioHost.REQUEST_CONSUMER),
                Map.entry("request.config", FfmGpioHost.REQUEST_CONFIG),
                Map.entry("request.num_lines", FfmGpioHost.REQUEST_NUM_LINES),
                Map.entry("request.fd", FfmGpioHost.REQUEST_FD),
                Map.entry("config.num_attrs", FfmGpioHost.CONFIG_NUM_ATTRS),
                Map.entry("config.attrs", FfmGpioHost.CONFIG_ATTRS),
                Map.entry("attr.values", FfmGpioHost.ATTR_VALUES),
                Map.entry("attr.mask", FfmGpioHost.ATTR_MASK),
                Map.entry("event.id", FfmGpioHost.EVENT_ID),
                Map.entry("GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES", (long) FfmGpioHost.GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES),
                Map.entry("GPIO_V2_LINE_FLAG_USED", GpioHost.GPIO_V2_LINE_FLAG_USED),
                Map.entry("GPIO_V2_LINE_FLAG_ACTIVE_LOW", GpioHost.GPIO_V2_LINE_FLAG_ACTIVE_LOW),
                Map.entry("GPIO_V2_LINE_FLAG_INPUT", GpioHost.GPIO_V2_LINE_FLAG_INPUT),
                Map.entry("GPIO_V2_LINE_FLAG_OUTPUT", GpioHost.GPIO_V2_LINE_FLAG_OUTPUT),
                Map.entry("GPIO_V2_LINE_FLAG_EDGE_RISING", GpioHost.GPIO_V2_LINE_FLAG_EDGE_RISING),
                Map.entry("GPIO_V2_LINE_FLAG_EDGE_FALLING", GpioHost.GPIO_V2_LINE_FLAG_EDGE_FALLING),
                Map.entry("GPIO_V2_LINE_EVENT_RISING_EDGE", (long) GpioHost.GPIO_V2_LINE_EVENT_RISING_EDGE),
                Map.entry("GPIO_V2_LINE_EVENT_FALLING_EDGE", (long) GpioHost.GPIO_V2_LINE_EVENT_FALLING_EDGE)));
        assertEquals(ours.keySet(), header.keySet());
        for (String name : List.copyOf(ours.keySet())) {
            assertEquals(header.get(name), ours.get(name), name);
        }
    }

    @Test
    void openingAMissingChipReportsEnoent() {
        ErrnoException e = assertThrows(ErrnoException.class, () -> host.open(dir.resolve("gpiochip99").toString()));
        assertEquals(Errno.ENOENT, e.errno());
    }

    @Test
    void everyIoctlOnANonChipFailsWithEnotty() throws Exception {
        Path file = Files.createFile(dir.resolve("not-a-chip"));
        int fd = host.open(file.toString());
        try {
            assertEquals(Errno.ENOTTY, assertThrows(ErrnoException.class, () -> host.chipInfo(fd)).errno());
            assertEquals(Errno.ENOTTY, assertThrows(ErrnoException.class, () -> host.lineInfo(fd, 0)).errno());
            assertEquals(-Errno.ENOTTY, host.requestLine(fd, 0, GpioHost.GPIO_V2_LINE_FLAG_INPUT, 0));
            assertEquals(-Errno.ENOTTY, host.setConfig(fd, GpioHost.GPIO_V2_LINE_FLAG_OUTPUT, 1));
            assertEquals(-Errno.ENOTTY, host.getValue(fd));
            assertEquals(-Errno.ENOTTY, host.setValue(fd, 1));
            assertEquals(0, host.readEvents(fd), "a regular file at its end reads nothing: no events");
        } finally {
            host.close(fd);
        }
    }

    @Test
    void aHostChipOverARegularFileIsRefusedWithTheErrno() throws Exception {
        Path file = Files.createFile(dir.resolve("fake"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> HostChip.open(new RedirectedHost(file), "/dev/gpiochip4"));
        assertEquals("/dev/gpiochip4: GPIO_GET_CHIPINFO_IOCTL failed: ENOTTY", e.getMessage());
    }

    /** The real host with the chip's path redirected to a file. */
    private record RedirectedHost(Path file) implements GpioHost {
        @Override
        public int open(String path) throws ErrnoException {
            return GpioHost.system().open(file.toString());
        }

        @Override
        public ChipInfo chipInfo(int chipFd) throws ErrnoException {
            return GpioHost.system().chipInfo(chipFd);
        }

        @Override
        public LineInfo lineInfo(int chipFd, int offset) throws ErrnoException {
            return GpioHost.system().lineInfo(chipFd, offset);
        }

        @Override
        public int requestLine(int chipFd, int offset, long flags, int outputValue) {
            return GpioHost.system().requestLine(chipFd, offset, flags, outputValue);
        }

        @Override
        public int setConfig(int lineFd, long flags, int outputValue) {
            return GpioHost.system().setConfig(lineFd, flags, outputValue);
        }

        @Override
        public int getValue(int lineFd) {
            return GpioHost.system().getValue(lineFd);
        }

        @Override
        public int setValue(int lineFd, int value) {
            return GpioHost.system().setValue(lineFd, value);
        }

        @Override
        public int readEvents(int lineFd) {
            return GpioHost.system().readEvents(lineFd);
        }

        @Override
        public void close(int fd) {
            GpioHost.system().close(fd);
        }
    }
}
