package dev.vhostdevice.vhostuser.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.vhostdevice.vhostuser.engine.WorkerTuning;
import java.util.List;
import org.junit.jupiter.api.Test;

/** --poll-us and --worker-cpus, which every daemon takes. */
class WorkerOptionsTest {
    private static WorkerTuning parse(String... args) {
        OptionParser parser = new OptionParser("vhost-device-test", "test", WorkerOptions.OPTIONS);
        WorkerOptions options = new WorkerOptions();
        options.read(parser.parse(args));
        return options.tuning();
    }

    @Test
    void byDefaultWorkersPollForTheMeasuredBudgetAndRunAnywhere() {
        assertEquals(WorkerTuning.DEFAULT, parse());
    }

    @Test
    void pollBudgetInMicrosecondsAndZeroTurnsPollingOff() {
        assertEquals(250_000, parse("--poll-us", "250").pollNanos());
        assertEquals(0, parse("--poll-us", "0").pollNanos());
        assertEquals("--poll-us must be 0 to 1000000, got 1000001",
                assertThrows(IllegalArgumentException.class, () -> parse("--poll-us", "1000001")).getMessage());
        assertThrows(IllegalArgumentException.class, () -> parse("--poll-us", "-1"));
    }

    @Test
    void cpuListsAreWrittenAsTasksetAndSysfsPrintThem() {
        assertArrayEquals(new int[] {1}, parse("--worker-cpus", "1").cpus());
        assertArrayEquals(new int[] {0, 2, 3, 4}, parse("--worker-cpus", "3-4,0,2").cpus());
        for (String bad : List.of("", "a", "2-1", "1-2-3", "-1", "1024", "0,,1")) {
            assertThrows(IllegalArgumentException.class, () -> parse("--worker-cpus", bad), bad);
        }
    }
}
