package dev.vhostdevice.vsock;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.cli.DaemonCommand;
import dev.vhostdevice.vhostuser.frontend.RingLayout;
import dev.vhostdevice.vhostuser.frontend.TestFrontend;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The command line, as a drop-in for rust-vmm's vhost-device-vsock: every form, every refusal in one line. */
class VsockCommandTest {
    @TempDir
    Path dir;

    private static List<VmConfig> parse(String... args) {
        VsockCommand command = new VsockCommand();
        command.parseArgs(args);
        return command.vms();
    }

    /** Runs the command's argument handling as main does; returns status and the error output. */
    private static String[] execute(String... args) {
        PrintStream saved = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            int status = DaemonCommand.execute(new VsockCommand(), args);
            return new String[] {Integer.toString(status), err.toString(StandardCharsets.UTF_8)};
        } finally {
            System.setErr(saved);
        }
    }

    @Test
    void aVmListGivesEveryKeyWithDashesOrUnderscoresAndDefaultsTheRest() {
        List<VmConfig> vms = parse("--vm", "guest-cid=4,socket=/tmp/a.sock,uds_path=/tmp/a.vsock",
                "--vm", "guest_cid=5,socket=/tmp/b.sock,uds-path=/tmp/b.vsock,tx-buffer-size=65536,queue_size=256,"
                        + "groups=x+y");
        assertEquals(2, vms.size());
        assertEquals(new VmConfig(4, Path.of("/tmp/a.sock"), Path.of("/tmp/a.vsock"), VmConfig.DEFAULT_TX_BUFFER_SIZE,
                1024, Set.of("default")), vms.get(0));
        assertEquals(new VmConfig(5, Path.of("/tmp/b.sock"), Path.of("/tmp/b.vsock"), 65536, 256, Set.of("x", "y")),
                vms.get(1));
    }

    @Test
    void theFlatFormDescribesOneGuest() {
        List<VmConfig> vms = parse("--socket", "/tmp/v.sock", "--uds-path", "/tmp/v.vsock", "--groups", "g");
        assertEquals(List.of(new VmConfig(3, Path.of("/tmp/v.sock"), Path.of("/tmp/v.vsock"),
                VmConfig.DEFAULT_TX_BUFFER_SIZE, 1024, Set.of("g"))), vms);
    }

    @Test
    void aYamlConfigGivesTheVmsList() throws Exception {
        Path file = dir.resolve("vsock.yaml");
        Files.writeString(file, """
                vms:
                  - guest_cid: 3
                    socket: /tmp/vhost3.socket
                    uds_path: /tmp/vm3.vsock
                    tx_buffer_size: 65536
                    groups: group1+groupA
                  - guest-cid: 4
                    socket: /tmp/vhost4.socket
                    uds-path: /tmp/vm4.vsock
                """);
        List<VmConfig> vms = parse("--config", file.toString());
        assertEquals(List.of(
                new VmConfig(3, Path.of("/tmp/vhost3.socket"), Path.of("/tmp/vm3.vsock"), 65536, 1024,
                        Set.of("group1", "groupA")),
                new VmConfig(4, Path.of("/tmp/vhost4.socket"), Path.of("/tmp/vm4.vsock"),
                        VmConfig.DEFAULT_TX_BUFFER_SIZE, 1024, Set.of("default"))), vms);
    }

    /** The common ring switch also applies to a daemon that names its sockets in --vm lists. */
    @Test
    void packedRingsAreOfferedUnlessNoPackedRingTurnsThemOff() throws Exception {
        assertTrue(new VsockCommand().help().contains("--no-packed-ring"));
        for (boolean off : new boolean[] {false, true}) {
            VsockCommand command = new VsockCommand();
            Path socket = dir.resolve(off ? "off.sock" : "on.sock");
            String vm = "socket=" + socket + ",uds-path=" + dir.resolve(off ? "off.vsock" : "on.vsock");
            String[] args = off ? new String[] {"--vm", vm, "--no-packed-ring"} : new String[] {"--vm", vm};
            Thread runner = Thread.ofPlatform().start(() -> DaemonCommand.execute(command, args));
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (!Files.exists(socket) && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            try (TestFrontend fe = TestFrontend.connect(socket)) {
                assertEquals(off ? 0 : RingLayout.F_RING_PACKED, fe.getFeatures() & RingLayout.F_RING_PACKED,
                        off ? "turned off" : "offered");
            } finally {
                command.stop();
                runner.join(5000);
            }
        }
    }

    @Test
    void badValuesAreOneLineAndExitStatusTwo() throws Exception {
        Path yaml = dir.resolve("bad.yaml");
        Files.writeString(yaml, "vms:\n  - guest_cid: 3\n    socket: /tmp/x\n    uds_path: /tmp/y\n    colour: red\n");
        Path notYaml = dir.resolve("broken.yaml");
        Files.writeString(notYaml, "vms: [ {");
        Path noVms = dir.resolve("novms.yaml");
        Files.writeString(noVms, "machines: []\n");
        String[][] cases = {
                {"no guest given"},
                {"guest-cid must be 3", "--vm", "guest-cid=2,socket=/tmp/s,uds-path=/tmp/u"},
                {"guest-cid 'x' is not a non-negative number", "--vm", "guest-cid=x,socket=/tmp/s,uds-path=/tmp/u"},
                {"socket is required", "--vm", "guest-cid=3,uds-path=/tmp/u"},
                {"uds-path is required", "--vm", "guest-cid=3,socket=/tmp/s"},
                {"unknown key 'sockett'", "--vm", "guest-cid=3,sockett=/tmp/s,uds-path=/tmp/u"},
                {"'oops' is not key=value", "--vm", "guest-cid=3,socket=/tmp/s,uds-path=/tmp/u,oops"},
                {"queue-size must be a power of two", "--vm", "socket=/tmp/s,uds-path=/tmp/u,queue-size=100"},
                {"tx-buffer-size must be", "--vm", "socket=/tmp/s,uds-path=/tmp/u,tx-buffer-size=10"},
                {"empty group name", "--vm", "socket=/tmp/s,uds-path=/tmp/u,groups=a++b"},
                {"guest CID 3 is used by two guests", "--vm", "socket=/tmp/s,uds-path=/tmp/u", "--vm",
                        "socket=/tmp/s2,uds-path=/tmp/u2"},
                {"socket /tmp/s is used by two guests", "--vm", "guest-cid=3,socket=/tmp/s,uds-path=/tmp/u", "--vm",
                        "guest-cid=4,socket=/tmp/s,uds-path=/tmp/u2"},
                {"exclude each other", "--vm", "socket=/tmp/s,uds-path=/tmp/u", "--socket", "/tmp/t"},
                {"not supported", "--forward-cid", "1"},
                {"forward-cid (the AF_VSOCK back-end) is not supported", "--vm",
                        "socket=/tmp/s,uds-path=/tmp/u,forward-cid=1"},
                {"unknown key 'colour'", "--config", yaml.toString()},
                {"not valid YAML", "--config", notYaml.toString()},
                {"expected a top-level 'vms:' list", "--config", noVms.toString()},
                {"cannot read", "--config", dir.resolve("missing.yaml").toString()},
                {"Unknown option", "--socket-path", "/tmp/x"},
        };
        for (String[] c : cases) {
            String[] args = java.util.Arrays.copyOfRange(c, 1, c.length);
            String[] result = execute(args);
            assertEquals("2", result[0], String.join(" ", args) + ": " + result[1]);
            String firstLine = result[1].lines().findFirst().orElse("");
            assertTrue(firstLine.startsWith("vhost-device-vsock: ") && firstLine.contains(c[0]),
                    String.join(" ", args) + " -> " + result[1]);
        }
    }

    /** Parses its arguments as the daemon does, then exits: what a start-up loads, without serving. */
    public static final class ParseOnly {
        public static void main(String[] args) {
            new VsockCommand().parseArgs(args);
        }
    }

    @Test
    void snakeYamlIsLoadedOnlyForAConfigFile() throws Exception {
        Path file = dir.resolve("one.yaml");
        Files.writeString(file, "vms:\n  - socket: /tmp/s\n    uds_path: /tmp/u\n");
        assertTrue(!loadedClasses("--vm", "socket=/tmp/s,uds-path=/tmp/u").contains("org.yaml.snakeyaml"));
        assertTrue(loadedClasses("--config", file.toString()).contains("org.yaml.snakeyaml.Yaml "));
    }

    private static String loadedClasses(String... args) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                .toString(), "-Xlog:class+load=info:stdout", "-cp", System.getProperty("java.class.path"),
                ParseOnly.class.getName()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out.lines().filter(l -> !l.contains("class,load")).toList().toString());
        return out;
    }
}
