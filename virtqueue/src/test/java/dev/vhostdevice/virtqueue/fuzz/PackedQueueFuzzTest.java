package dev.vhostdevice.virtqueue.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Coverage-guided fuzz test of the packed-ring walker (packed-ring.md §8.2), beside {@link SplitQueueFuzzTest}.
 *
 * <p>In the normal test run (regression mode) this executes every input checked in under
 * {@code src/test/resources/dev/vhostdevice/virtqueue/fuzz/PackedQueueFuzzTestInputs/walk/}: the seeds written by
 * {@link PackedSeedCorpusTest} and every input that ever failed. To fuzz, run {@code scripts/fuzz SECONDS}
 * (JAZZER_FUZZ=1). Each input runs twice through {@link PackedWalkerHarness} against {@link PackedReferenceModel}.
 */
class PackedQueueFuzzTest {
    @FuzzTest(maxDuration = "60s")
    void walk(byte[] data) {
        PackedWalkerHarness.runTwice(data);
    }
}
