package dev.vhostdevice.i2c;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.cli.DaemonCommand;
import dev.vhostdevice.virtqueue.memory.Errno;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The command line, a drop-in for rust-vmm's vhost-device-i2c: bad arguments give one line and status 2. */
class I2cCommandTest {
    @TempDir
    Path dir;

    private record Outcome(int status, String err) {
    }

    private static synchronized Outcome run(DaemonCommand command, String... args) {
        PrintStream saved = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            int status = DaemonCommand.execute(command, args);
            return new Outcome(status, err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setErr(saved);
        }
    }

    private String socket() {
        return dir.resolve("i2c.sock").toString();
    }

    @Test
    void anAddressOutOfRangeIsRefusedWithOneLineAndStatus2() {
        Outcome outcome = run(new I2cCommand(), "-s", socket(), "-l", "sim:128");
        assertEquals(DaemonCommand.EXIT_USAGE, outcome.status());
        assertEquals("vhost-device-i2c: --device-list: adapter sim: address 128 is out of the 7-bit range 0 to 127",
                outcome.err().strip());
    }

    @Test
    void duplicatesAreRefusedWithStatus2() {
        assertEquals(DaemonCommand.EXIT_USAGE, run(new I2cCommand(), "-s", socket(), "-l", "sim:80,sim:81").status());
        assertEquals(DaemonCommand.EXIT_USAGE, run(new I2cCommand(), "-s", socket(), "-l", "sim:80:80").status());
    }

    @Test
    void anAdapterThatCannotBeOpenedIsRefusedWithOneLine() {
        ScriptedHost host = new ScriptedHost();
        host.openErrno = Errno.ENOENT;
        Outcome outcome = run(new I2cCommand(host, dir), "-s", socket(), "--device-list", "9:32");
        assertEquals(DaemonCommand.EXIT_USAGE, outcome.status());
        assertEquals("vhost-device-i2c: cannot open /dev/i2c-9: ENOENT", outcome.err().strip());
    }

    @Test
    void anUnknownAdapterNameIsRefused() {
        Outcome outcome = run(new I2cCommand(I2cHost.system(), dir), "-s", socket(), "-l", "nosuch:32");
        assertEquals(DaemonCommand.EXIT_USAGE, outcome.status());
        assertEquals("vhost-device-i2c: --device-list: no I2C adapter is named 'nosuch'", outcome.err().strip());
    }

    @Test
    void theDeviceListIsRequired() {
        Outcome outcome = run(new I2cCommand(), "-s", socket());
        assertEquals(DaemonCommand.EXIT_USAGE, outcome.status());
        assertTrue(outcome.err().contains("--device-list"), outcome.err());
    }

    @Test
    void allSocketsShareOneBusAndEachGetsItsOwnDevice() throws Exception {
        I2cCommand command = new I2cCommand();
        command.parseArgs("-s", socket(), "-c", "3", "-l", "sim:80");
        var first = command.deviceFactory(0).create();
        var second = command.deviceFactory(1).create();
        assertInstanceOf(I2cDevice.class, first);
        assertTrue(first != second);
        assertInstanceOf(SimulatedAdapter.class, command.bus().adapterFor(80));
        first.close();
        second.close();
    }

    @Test
    void helpAndVersionExitZero() {
        assertEquals(0, run(new I2cCommand(), "--help").status());
        assertEquals(0, run(new I2cCommand(), "--version").status());
    }
}
