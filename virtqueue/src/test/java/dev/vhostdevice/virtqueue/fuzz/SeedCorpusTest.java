package dev.vhostdevice.virtqueue.fuzz;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * Builds every seed of {@link SeedCorpus}, checks that it survives encode/decode unchanged and produces the outcome
 * it is about while the harness's invariants hold, and that the checked-in file under
 * {@code SplitQueueFuzzTestInputs/walk/} is exactly its encoding. After changing a scenario or the format, rewrite
 * the files with {@code mvn -pl virtqueue test -Dtest=SeedCorpusTest -Dfuzz.writeSeeds=true} and check them in.
 */
class SeedCorpusTest {
    static final String INPUTS = "dev/vhostdevice/virtqueue/fuzz/SplitQueueFuzzTestInputs/walk/";

    @TestFactory
    Stream<DynamicTest> seeds() {
        return SeedCorpus.all().entrySet().stream()
                .map(e -> DynamicTest.dynamicTest(e.getKey(), () -> check(e.getKey(), e.getValue())));
    }

    private static void check(String name, Function<String, Scenario> builder) throws IOException {
        FuzzInput input;
        String expect;
        try (Scenario s = builder.apply(name)) {
            input = s.build();
            expect = s.expect;
        }
        byte[] bytes = input.encode();
        assertEquals(input, FuzzInput.decode(bytes), "decode(encode(seed)) differs");
        WalkerHarness.Result result = WalkerHarness.runTwice(input);
        assertTrue(result.contains(expect), name + ": expected '" + expect + "' in " + result.trace());

        String seedName = "seed_" + name;
        if (Boolean.getBoolean("fuzz.writeSeeds")) {
            Path dir = Path.of(System.getProperty("basedir", "."), "src/test/resources", INPUTS);
            Files.createDirectories(dir);
            Files.write(dir.resolve(seedName), bytes);
            return;
        }
        try (InputStream in = SeedCorpusTest.class.getClassLoader().getResourceAsStream(INPUTS + seedName)) {
            assertTrue(in != null, seedName + " is not checked in: run with -Dfuzz.writeSeeds=true");
            assertArrayEquals(bytes, in.readAllBytes(), seedName + " is stale: run with -Dfuzz.writeSeeds=true");
        }
    }
}
