package dev.vhostdevice.scmi;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.cli.DaemonCommand;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The command line, a drop-in for rust-vmm's vhost-device-scmi: {@code -s}, repeatable {@code -d}, {@code
 * --help-devices}; every mistake is one line on standard error and exit status 2 (upstream exits 0 or 1).
 */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD) // an accepted command line would serve forever
class ScmiCommandTest {
    @TempDir
    Path dir;

    private record Outcome(int status, String out, String err) {
    }

    private static synchronized Outcome run(String... args) {
        PrintStream saved = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            int status = ScmiCommand.run(new PrintStream(out, true, StandardCharsets.UTF_8), args);
            return new Outcome(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setErr(saved);
        }
    }

    private String socket() {
        return dir.resolve("scmi.sock").toString();
    }

    private void assertRefused(String expectedLine, String... args) {
        Outcome outcome = run(args);
        assertEquals(DaemonCommand.EXIT_USAGE, outcome.status(), outcome.err());
        assertEquals("vhost-device-scmi: " + expectedLine, outcome.err().strip().lines().findFirst().orElse(""));
    }

    @Test
    void devicesAreRepeatableAndKeepTheirOrder() {
        ScmiCommand command = new ScmiCommand();
        command.parseArgs("-s", socket(), "-d", "fake,name=a", "--device", "clock,rate=10", "-d", "fake");
        assertEquals(List.of(DeviceSpec.Kind.FAKE, DeviceSpec.Kind.CLOCK, DeviceSpec.Kind.FAKE),
                command.specs().stream().map(DeviceSpec::kind).toList());
        assertEquals("a", command.specs().get(0).property("name"));
    }

    @Test
    void helpDevicesNeedsNoSocketAndListsEveryKind() {
        Outcome outcome = run("--help-devices");
        assertEquals(0, outcome.status());
        for (String kind : List.of("fake:", "iio:", "clock:", "voltage:", "power:", "path (required)")) {
            assertTrue(outcome.out().contains(kind), kind + " in:\n" + outcome.out());
        }
        assertRefused("--help-devices cannot be combined with other options", "--help-devices", "-s", socket());
    }

    @Test
    void anUnknownKindIsOneLineAndStatus2() {
        assertRefused("--device gyro: unknown device kind 'gyro' (known: fake, iio, clock, voltage, power; see"
                + " --help-devices)", "-s", socket(), "-d", "gyro");
    }

    @Test
    void unknownMissingMalformedAndRepeatedPropertiesAreOneLineAndStatus2() {
        assertRefused("--device fake,path=/x: fake has no property 'path' (it takes name)",
                "-s", socket(), "-d", "fake,path=/x");
        assertRefused("--device iio,path=/x: iio needs property 'channel'", "-s", socket(), "-d", "iio,path=/x");
        assertRefused("--device fake,name: 'name' is not KEY=VALUE", "-s", socket(), "-d", "fake,name");
        assertRefused("--device fake,name=a,name=b: property 'name' given twice",
                "-s", socket(), "-d", "fake,name=a,name=b");
        assertRefused("--device fake,name=a_name_of_16_chr: name 'a_name_of_16_chr' must be 1 to 15 printable ASCII"
                + " characters", "-s", socket(), "-d", "fake,name=a_name_of_16_chr");
        assertRefused("--device clock: rate 'fast' is not a whole number", "-s", socket(), "-d", "clock,rate=fast");
        assertRefused("--device power: state 'half' is not on or off", "-s", socket(), "-d", "power,state=half");
    }

    @Test
    void providerRangesThatCannotHoldTheirValueAreRefused() {
        assertRefused("clock clk0: need 0 <= min <= rate <= max, step >= 1 and rate - min a multiple of step"
                + " (min=10, rate=5, max=5, step=1)", "-s", socket(), "-d", "clock,rate=5,min=10");
        assertRefused("voltage vdd0: need min <= level <= max, step >= 1 and level - min a multiple of step"
                + " (min=1000, level=1500, max=2000, step=300)",
                "-s", socket(), "-d", "voltage,level=1500,min=1000,max=2000,step=300");
    }

    @Test
    void anIioDeviceThatIsNotThereIsRefusedAtStartUp() {
        assertRefused("iio: " + dir.resolve("none") + " is not a directory",
                "-s", socket(), "-d", "iio,path=" + dir.resolve("none") + ",channel=in_accel");
        assertRefused("iio: " + dir + " has no in_accel_raw nor in_accel_<axis>_raw",
                "-s", socket(), "-d", "iio,path=" + dir + ",channel=in_accel");
    }

    @Test
    void theSocketIsRequiredAsUpstreamRequiresIt() {
        Outcome outcome = run("-d", "fake");
        assertEquals(DaemonCommand.EXIT_USAGE, outcome.status());
        assertTrue(outcome.err().startsWith("vhost-device-scmi: Missing required option: '--socket-path=PATH'"));
    }
}
