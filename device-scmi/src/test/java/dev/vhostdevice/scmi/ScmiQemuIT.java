package dev.vhostdevice.scmi;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.guest.DeviceProcess;
import dev.vhostdevice.vhostuser.guest.GuestBench;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * QEMU 10's vhost-user-scmi-pci front-end (qemu-system-aarch64 from bookworm-backports, unpacked by
 * bench/setup.sh) against vhost-device-scmi.jar run as a user runs it. No Debian guest kernel has the SCMI
 * virtio transport and QEMU's virt machine generates no arm,scmi-virtio node, so no guest driver can talk to
 * the device: the front-end's handshake and realize are the limit of guest testing (the protocol itself is
 * pinned by ScmiProtocolTest). The machine runs with no kernel: the vCPU has nothing to execute, but QEMU
 * realizes every device first.
 */
class ScmiQemuIT {
    /**
     * What QEMU 10.0.2 sends to realize vhost-user-scmi-pci (qemu-guest-testing.md §8.2), with the two messages
     * our engine's protocol features add (CONFIGURE_MEM_SLOTS, BACKEND_REQ).
     */
    private static final List<String> REALIZE = List.of("GET_FEATURES", "GET_PROTOCOL_FEATURES",
            "SET_PROTOCOL_FEATURES", "GET_QUEUE_NUM", "GET_MAX_MEM_SLOTS", "SET_BACKEND_REQ_FD", "SET_OWNER", "GET_FEATURES", "SET_VRING_CALL", "SET_VRING_ERR",
            "SET_VRING_CALL", "SET_VRING_ERR");

    @TempDir
    Path dir;

    private static Map<String, String> benchEnv() throws IOException {
        GuestBench.requireReady();
        String cache = System.getenv("BENCH_CACHE");
        Path env = (cache != null ? Path.of(cache) : GuestBench.root().resolve("bench/.cache")).resolve("bench.env");
        Map<String, String> values = new HashMap<>();
        for (String line : Files.readAllLines(env, StandardCharsets.UTF_8)) {
            int eq = line.indexOf('=');
            if (!line.startsWith("#") && eq > 0) {
                values.put(line.substring(0, eq), line.substring(eq + 1));
            }
        }
        if (!values.containsKey("QEMU10_AARCH64")) {
            throw new AssertionError(env + " names no QEMU10_AARCH64: re-run bench/setup.sh");
        }
        return values;
    }

    private record Run(Process process, Path log) {
        String output() throws IOException {
            return Files.readString(log, StandardCharsets.UTF_8);
        }
    }

    /** {@code qemu-system-aarch64 -M virt} with vhost-user-scmi-pci on {@code socket}, no kernel, no display. */
    private Run qemu(Path socket) throws IOException {
        Map<String, String> env = benchEnv();
        List<String> cmd = new ArrayList<>(List.of(env.get("QEMU10_AARCH64"), "-M", "virt", "-cpu", "cortex-a57",
                "-m", "256M", "-object", "memory-backend-memfd,id=mem,size=256M,share=on",
                "-machine", "memory-backend=mem", "-nographic", "-nodefaults", "-no-user-config",
                "-display", "none", "-monitor", "none", "-serial", "none",
                "-chardev", "socket,id=scmi0,path=" + socket, "-device", "vhost-user-scmi-pci,chardev=scmi0"));
        Path log = Files.createTempFile(dir, "qemu", ".log");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("QEMU_MODULE_DIR", env.get("QEMU10_MODULE_DIR"));
        return new Run(pb.start(), log);
    }

    @Test
    void qemu10RealizesVhostUserScmiPciAgainstTheJar() throws Exception {
        Path socket = dir.resolve("scmi.sock");
        try (DeviceProcess backend = DeviceProcess.start(socket, "-s", socket.toString(), "-d", "fake,name=accel0",
                "-d", "clock,name=uart");
                RecordingRelay relay = new RecordingRelay(dir.resolve("relay.sock"), socket)) {
            Run qemu = qemu(relay.path());
            try {
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                while (relay.requests().size() < REALIZE.size() && qemu.process().isAlive()
                        && System.nanoTime() < deadline) {
                    Thread.sleep(20);
                }
                // Realize is over once QEMU has sent its last realize message; it must then keep running.
                Thread.sleep(1000);
                assertTrue(qemu.process().isAlive(), "QEMU exited: " + qemu.output());
                assertEquals(REALIZE, relay.requests().subList(0, Math.min(REALIZE.size(), relay.requests().size())),
                        "QEMU's realize sequence; QEMU said: " + qemu.output());
                // Answered: GET_FEATURES twice, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM, GET_MAX_MEM_SLOTS and the ack
                // QEMU asks for with SET_BACKEND_REQ_FD; QEMU would have given up on any of them unanswered.
                assertTrue(relay.replies() >= 6, "back-end replies: " + relay.replies());
                assertTrue(backend.isAlive(), backend.log());
                assertTrue(!qemu.output().contains("failed"), qemu.output());
            } finally {
                qemu.process().destroy();
                qemu.process().waitFor(20, TimeUnit.SECONDS);
            }
            assertTrue(backend.isAlive(), "the back-end outlives its front-end: " + backend.log());
        }
    }

    @Test
    void theSameCommandFailsCleanlyWithNoBackEnd() throws Exception {
        Path socket = dir.resolve("absent.sock");
        Run qemu = qemu(socket);
        assertTrue(qemu.process().waitFor(60, TimeUnit.SECONDS), "QEMU kept running with no back-end");
        assertNotEquals(0, qemu.process().exitValue());
        String output = qemu.output();
        assertTrue(output.contains("Failed to connect to '" + socket + "'"), output);
    }
}
