package dev.vhostdevice.gpio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.cli.DaemonCommand;
import dev.vhostdevice.vhostuser.device.VirtioDevice;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The command line, a drop-in for rust-vmm's vhost-device-gpio: one chip per socket, validated as upstream does,
 * bad arguments give one line and status 2.
 */
class GpioCommandTest {
    @TempDir
    Path dir;

    private final ScriptedGpioHost host = new ScriptedGpioHost(new String[] {"a", "b"},
            new long[] {GpioHost.GPIO_V2_LINE_FLAG_INPUT, GpioHost.GPIO_V2_LINE_FLAG_INPUT});

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
        return dir.resolve("gpio.sock").toString();
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "1|s0|--device-list: simulated chip 's0' must have 1 to 256 lines",
        "1|s257|--device-list: simulated chip 's257' must have 1 to 256 lines",
        "1|x|--device-list: 'x' is neither a chip number N (/dev/gpiochipN) nor sN (a simulated chip of N lines)",
        "1|s|--device-list: 's' is neither a chip number N (/dev/gpiochipN) nor sN (a simulated chip of N lines)",
        "2|s8:|--device-list: '' is neither a chip number N (/dev/gpiochipN) nor sN (a simulated chip of N lines)",
        "2|s8|--device-list has 1 chip(s) but --socket-count is 2: give one chip per socket",
        "1|s8:s8|--device-list has 2 chip(s) but --socket-count is 1: give one chip per socket",
        "2|3:3|--device-list: /dev/gpiochip3 is listed twice (a host chip serves one guest)",
        "1|9999999999|--device-list: '9999999999' is neither a chip number N (/dev/gpiochipN) nor sN (a simulated chip of N lines)",
    })
    void aBadDeviceListIsRefusedWithOneLineAndStatus2(int sockets, String list, String message) {
        Outcome outcome = run(new GpioCommand(host), "-s", socket(), "-c", Integer.toString(sockets), "-l", list);
        assertEquals(DaemonCommand.EXIT_USAGE, outcome.status(), outcome.err());
        assertEquals("vhost-device-gpio: " + message, outcome.err().strip());
    }

    @Test
    void aHostChipThatCannotBeOpenedIsRefusedAtStartUp() {
        Outcome outcome = run(new GpioCommand(host), "-s", socket(), "-l", "7");
        assertEquals(DaemonCommand.EXIT_USAGE, outcome.status());
        assertEquals("vhost-device-gpio: cannot open /dev/gpiochip7: ENOENT", outcome.err().strip());
        assertEquals(0, host.openFds, "nothing left open");
    }

    @Test
    void theRealHostRefusesAChipThisMachineDoesNotHave() {
        Outcome outcome = run(new GpioCommand(), "-s", socket(), "-l", "4242");
        assertEquals(DaemonCommand.EXIT_USAGE, outcome.status());
        assertEquals("vhost-device-gpio: cannot open /dev/gpiochip4242: ENOENT", outcome.err().strip());
    }

    @Test
    void theDeviceListIsRequired() {
        Outcome outcome = run(new GpioCommand(), "-s", socket());
        assertEquals(DaemonCommand.EXIT_USAGE, outcome.status());
        assertTrue(outcome.err().contains("--device-list"), outcome.err());
    }

    @Test
    void entryIServesSocketIAndSimulatedChipsMayRepeat() throws Exception {
        GpioCommand command = new GpioCommand(host);
        command.parseArgs("-s", socket(), "-c", "4", "-l", "s8:3:s8:s2");
        List<Integer> lines = List.of(8, 2, 8, 2);
        for (int i = 0; i < 4; i++) {
            VirtioDevice device = command.deviceFactory(i).create();
            byte[] config = new byte[2];
            device.readConfig(0, config);
            assertEquals(lines.get(i), config[0] & 0xFF, "socket " + i);
            assertEquals(0, config[1]);
            if (i == 1) {
                device.close();
            }
        }
        assertEquals(0, host.openFds, "the start-up check closed the host chip, the device closed its own");
    }

    @Test
    void theHelpNamesTheChipForms() {
        String help = new GpioCommand().help();
        assertTrue(help.contains("/dev/gpiochipN"), help);
        assertTrue(help.contains("sN"), help);
    }

    @Test
    void aSimulatedChipRefusesSizesOutsideOneTo256() {
        assertThrows(IllegalArgumentException.class, () -> new SimulatedChip(0, null));
        assertThrows(IllegalArgumentException.class, () -> new SimulatedChip(257, null));
    }
}
