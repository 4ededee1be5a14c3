package dev.vhostdevice.vhostuser.guest;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The real-QEMU guest bench ({@code bench/}): a Debian kernel and a busybox initramfs booted under QEMU 7.2 or
 * QEMU 10 (TCG), with our back-end plugged in as a vhost-user device. Set up once per JVM by
 * {@code bench/setup.sh}. When the bench cannot be set up, a guest test fails with the reason; it never skips.
 */
public final class GuestBench {
    /** The front-ends the bench has. */
    public enum Qemu {
        QEMU_7_2("7.2"),
        QEMU_10("10");

        final String flag;

        Qemu(String flag) {
            this.flag = flag;
        }

        @Override
        public String toString() {
            return "QEMU " + flag;
        }
    }

    private static Path root;
    private static String setupFailure;
    private static boolean setUp;

    private GuestBench() {
    }

    /** The repository root: the first directory up from the working directory that has the bench. */
    public static synchronized Path root() {
        if (root == null) {
            Path dir = Path.of("").toAbsolutePath();
            while (dir != null && !Files.isRegularFile(dir.resolve("bench/run-guest.sh"))) {
                dir = dir.getParent();
            }
            if (dir == null) {
                throw new IllegalStateException("no bench/run-guest.sh above " + Path.of("").toAbsolutePath());
            }
            root = dir;
        }
        return root;
    }

    /**
     * Makes sure the bench is set up, or fails the calling test with the reason. A guest test never skips: a
     * missing prerequisite is a failure, under CI and on a developer's machine alike.
     */
    public static synchronized void requireReady() {
        if (!setUp && setupFailure == null) {
            setupFailure = runSetup();
            setUp = setupFailure == null;
        }
        if (setupFailure != null) {
            throw new AssertionError("the QEMU guest bench is not available: " + setupFailure
                    + " (bench/setup.sh sets it up from Debian packages, as root)");
        }
    }

    private static String runSetup() {
        try {
            Path log = Files.createTempFile("bench-setup", ".log");
            Process setup = new ProcessBuilder("bash", root().resolve("bench/setup.sh").toString(), "-q")
                    .redirectErrorStream(true)
                    .redirectOutput(log.toFile())
                    .start();
            if (!setup.waitFor(30, TimeUnit.MINUTES)) {
                setup.destroyForcibly();
                return "bench/setup.sh took more than 30 minutes";
            }
            String output = Files.readString(log, StandardCharsets.UTF_8).strip();
            Files.deleteIfExists(log);
            return setup.exitValue() == 0 ? null : "bench/setup.sh failed: " + lastLine(output);
        } catch (IOException e) {
            return "cannot run bench/setup.sh: " + e;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted";
        }
    }

    static String lastLine(String text) {
        int nl = text.lastIndexOf('\n');
        return nl < 0 ? text : text.substring(nl + 1);
    }

    /** A guest to boot under {@code qemu}. */
    public static GuestSpec guest(Qemu qemu) {
        return new GuestSpec(qemu);
    }

    /** What to boot: the QEMU version, devices, the command the guest runs. */
    public static final class GuestSpec {
        private final Qemu qemu;
        private final List<String> devices = new ArrayList<>();
        private final List<String> extra = new ArrayList<>();
        private String command = "true";
        private int timeoutSeconds = 180;
        private Integer reconnectSeconds;
        private String memory;

        private GuestSpec(Qemu qemu) {
            this.qemu = qemu;
        }

        /** The shell command (busybox sh) the guest runs; its output is the result. */
        public GuestSpec command(String shell) {
            command = shell;
            return this;
        }

        /** Plugs in a vhost-user device ({@code rng}, {@code i2c}, …) served on {@code socket}. */
        public GuestSpec vhostUser(String device, Path socket) {
            devices.add(device + "=" + socket);
            return this;
        }

        /**
         * Same, with QEMU device properties, e.g. {@code packed=on} (the common virtio property that lets the
         * guest drive a packed virtqueue when the back-end offers VIRTIO_F_RING_PACKED).
         */
        public GuestSpec vhostUser(String device, Path socket, String... properties) {
            devices.add(device + "=" + socket + (properties.length > 0 ? "," + String.join(",", properties) : ""));
            return this;
        }

        /** Lets QEMU reconnect to a back-end that went away. */
        public GuestSpec reconnect(int seconds) {
            reconnectSeconds = seconds;
            return this;
        }

        public GuestSpec timeoutSeconds(int seconds) {
            timeoutSeconds = seconds;
            return this;
        }

        public GuestSpec memory(String size) {
            memory = size;
            return this;
        }

        /** QEMU arguments appended verbatim (e.g. a built-in device). */
        public GuestSpec qemuArgs(String... args) {
            extra.addAll(List.of(args));
            return this;
        }

        /** Boots the guest in the background. */
        public RunningGuest start() throws IOException {
            requireReady();
            Path log = Files.createTempFile("guest-" + qemu.flag + "-", ".log");
            List<String> cmd = new ArrayList<>(List.of("bash", root().resolve("bench/run-guest.sh").toString(),
                    "-q", qemu.flag, "-c", command, "-t", Integer.toString(timeoutSeconds), "-l", log.toString()));
            for (String device : devices) {
                cmd.add("-u");
                cmd.add(device);
            }
            if (reconnectSeconds != null) {
                cmd.add("-r");
                cmd.add(Integer.toString(reconnectSeconds));
            }
            if (memory != null) {
                cmd.add("-m");
                cmd.add(memory);
            }
            if (!extra.isEmpty()) {
                cmd.add("--");
                cmd.addAll(extra);
            }
            Path output = Files.createTempFile("guest-" + qemu.flag + "-", ".out");
            Process process = new ProcessBuilder(cmd)
                    .redirectOutput(output.toFile())
                    .redirectError(ProcessBuilder.Redirect.appendTo(output.resolveSibling(output.getFileName() + ".err").toFile()))
                    .start();
            return new RunningGuest(qemu, process, log, output, output.resolveSibling(output.getFileName() + ".err"));
        }

        /** Boots the guest and waits for its result. */
        public GuestResult run() throws IOException, InterruptedException {
            return start().awaitResult();
        }
    }
}
