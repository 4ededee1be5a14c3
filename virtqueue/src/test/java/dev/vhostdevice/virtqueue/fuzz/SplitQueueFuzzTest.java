package dev.vhostdevice.virtqueue.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Coverage-guided fuzz test of the split-queue walker (virtqueue.md §5.2 B).
 *
 * <p>In the normal test run (regression mode) this executes every input checked in under
 * {@code src/test/resources/dev/vhostdevice/virtqueue/fuzz/SplitQueueFuzzTestInputs/walk/}: the seed corpus written
 * by {@link SeedCorpusTest} and every input that ever failed ({@code crash-*}, kept after the fix). To fuzz, run
 * {@code scripts/fuzz SECONDS} (JAZZER_FUZZ=1); a finding is written to that same directory as {@code crash-<sha1>},
 * and is then a regression test.
 *
 * <p>Each input is decoded ({@link FuzzInput#decode}, total) and run twice through {@link WalkerHarness}, which
 * checks the invariants against a reference model; any exception escaping is a finding.
 */
class SplitQueueFuzzTest {
    @FuzzTest(maxDuration = "60s")
    void walk(byte[] data) {
        WalkerHarness.runTwice(FuzzInput.decode(data));
    }
}
