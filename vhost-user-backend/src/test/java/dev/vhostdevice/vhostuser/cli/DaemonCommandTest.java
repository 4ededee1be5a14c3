package dev.vhostdevice.vhostuser.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.device.DeviceFactory;
import dev.vhostdevice.vhostuser.testkit.EchoDevice;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DaemonCommandTest {
    @TempDir
    Path dir;

    static final class EchoCommand extends DaemonCommand {
        EchoCommand() {
            super("vhost-device-echo", "Echo test device.");
        }

        @Override
        protected DeviceFactory deviceFactory(int socketIndex) {
            return EchoDevice::new;
        }
    }

    @Test
    void oneSocketServesExactlyThePathAndSeveralGetANumericSuffix() {
        SocketOptions one = new SocketOptions();
        one.socketPath = Path.of("/run/vu.sock");
        assertEquals(List.of(Path.of("/run/vu.sock")), one.socketPaths());
        one.socketCount = 3;
        assertEquals(List.of(Path.of("/run/vu.sock0"), Path.of("/run/vu.sock1"), Path.of("/run/vu.sock2")),
                one.socketPaths());
    }

    @Test
    void deviceStateMigrationIsOfferedOnlyWhenTheUserAsksForIt() {
        EchoCommand plain = new EchoCommand();
        plain.parseArgs("-s", "/tmp/a");
        assertFalse(plain.sockets.serverOptions().offerDeviceState());
        EchoCommand migrating = new EchoCommand();
        migrating.parseArgs("-s", "/tmp/a", "--device-state");
        assertTrue(migrating.sockets.serverOptions().offerDeviceState());
        assertTrue(plain.help().contains("--device-state"));
    }

    @Test
    void badArgumentsGiveOneLineAndExitStatusTwo() {
        int status = DaemonCommand.execute(new EchoCommand(), "--socket-count", "x", "-s", "/tmp/a");
        assertEquals(DaemonCommand.EXIT_USAGE, status);
        assertEquals(DaemonCommand.EXIT_USAGE, DaemonCommand.execute(new EchoCommand()));
        assertEquals(DaemonCommand.EXIT_USAGE, DaemonCommand.execute(new EchoCommand(), "-s", "/tmp/a", "-c", "0"));
        assertEquals(0, DaemonCommand.execute(new EchoCommand(), "--help"));
        assertEquals(0, DaemonCommand.execute(new EchoCommand(), "--version"));
    }

    @Test
    void serversListenOnEverySocketAndStopRemovesTheFiles() throws Exception {
        EchoCommand command = new EchoCommand();
        Path base = dir.resolve("e.sock");
        Thread runner = Thread.ofPlatform().start(() -> DaemonCommand.execute(command, "-s", base.toString(), "-c", "2"));
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (!(Files.exists(dir.resolve("e.sock0")) && Files.exists(dir.resolve("e.sock1"))) && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertTrue(Files.exists(dir.resolve("e.sock0")));
        assertTrue(Files.exists(dir.resolve("e.sock1")));
        command.stop();
        runner.join(5000);
        assertFalse(runner.isAlive());
        assertFalse(Files.exists(dir.resolve("e.sock0")));
        assertFalse(Files.exists(dir.resolve("e.sock1")));
    }
}
