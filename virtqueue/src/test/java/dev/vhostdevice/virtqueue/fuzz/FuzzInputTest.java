package dev.vhostdevice.virtqueue.fuzz;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** The input format: decoding is total, and re-encoding what was decoded is a fixed point. */
class FuzzInputTest {
    @Test
    void anyBytesDecodeAndReencodeToTheSameInput() {
        Random random = new Random(42);
        for (int i = 0; i < 2000; i++) {
            byte[] data = new byte[random.nextInt(600)];
            random.nextBytes(data);
            FuzzInput input = FuzzInput.decode(data);
            assertEquals(input, FuzzInput.decode(input.encode()));
        }
        assertEquals(FuzzInput.decode(new byte[0]), FuzzInput.decode(FuzzInput.decode(new byte[0]).encode()));
    }

    /** A short coverage-less sweep in the normal run: random inputs keep every invariant. */
    @Test
    void randomInputsKeepTheInvariants() {
        Random random = new Random(7);
        for (int i = 0; i < 300; i++) {
            byte[] data = new byte[random.nextInt(400)];
            random.nextBytes(data);
            WalkerHarness.runTwice(FuzzInput.decode(data));
        }
    }
}
