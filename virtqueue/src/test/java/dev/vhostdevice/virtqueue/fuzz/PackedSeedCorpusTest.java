package dev.vhostdevice.virtqueue.fuzz;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.virtqueue.fuzz.PackedWalkerHarness.Builder;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * The packed seed corpus: one input per hostile-driver rule of packed-ring.md §6.1 and per bug of §6.2, each
 * run through {@link PackedWalkerHarness} (twice, against the model) and required to show the outcome it is
 * about; the checked-in file under {@code PackedQueueFuzzTestInputs/walk/} must be exactly its bytes. After
 * changing a seed or the format, rewrite the files with
 * {@code mvn -pl virtqueue test -Dtest=PackedSeedCorpusTest -Dfuzz.writeSeeds=true} and check them in.
 */
class PackedSeedCorpusTest {
    static final String INPUTS = "dev/vhostdevice/virtqueue/fuzz/PackedQueueFuzzTestInputs/walk/";
    private static final int EVENT_IDX = 1;
    private static final int INDIRECT = 2;
    private static final int START_WRAP_0 = 4;
    private static final int ID_IN_LAST_ONLY = 8;
    private static final int READ = 0;
    private static final int WRITE = 1;
    private static final int AVAIL = 0x80;
    private static final int USED = 0x8000;
    private static final int NEXT = 1;

    private record Seed(byte[] bytes, String expect) {
    }

    private static Map<String, Seed> seeds() {
        Map<String, Seed> s = new LinkedHashMap<>();
        s.put("basic_single_chain_indirect", new Seed(new Builder(8, INDIRECT, 0, 0)
                .add(WRITE, 64).pop().complete(0, 8).notifyDecision()
                .add(READ, 16, READ, 16, WRITE, 32).pop().complete(0, 32)
                .addIndirect(0, 0, READ, 8, WRITE, 8).pop().complete(0, 4).notifyDecision().bytes(), "pop Outcome[kind=chain"));
        s.put("chain_across_the_end", new Seed(new Builder(4, ID_IN_LAST_ONLY, 3, 0)
                .add(READ, 8, READ, 8, WRITE, 8).pop().complete(0, 8).notifyDecision().bytes(), "slots=3"));
        s.put("size_3_three_laps", new Seed(laps(3, 9), "notify"));
        s.put("size_32768_at_the_last_slot", new Seed(new Builder(32768, START_WRAP_0, 32767, 0)
                .add(READ, 8, WRITE, 8).pop().complete(0, 8).notifyDecision().saveRestore().bytes(), "saved 8001/8001"));
        s.put("out_of_order_completion", new Seed(new Builder(8, 0, 0, 0)
                .add(WRITE, 8).add(READ, 4, WRITE, 8).add(WRITE, 8).pop().pop().pop()
                .complete(2, 1).complete(0, 2).complete(0, 3).notifyDecision().bytes(), "complete 2 1"));
        s.put("event_idx_and_events", new Seed(new Builder(4, EVENT_IDX, 1, 0)
                .events(false).add(WRITE, 8).events(true).pop().complete(0, 0).notifyDecision().events(true).bytes(),
                "enable true"));
        s.put("h2_stale_lap_head_is_empty", new Seed(new Builder(4, 0, 0, 0)
                .raw(0, USED, 0, WRITE, 8).pop().raw(0, AVAIL | USED, 0, WRITE, 8).pop().bytes(), "pop Outcome[kind=empty"));
        s.put("h3_chain_tail_not_available", new Seed(new Builder(8, 0, 0, 0)
                .raw(1, 0, 1, WRITE, 8).raw(0, AVAIL | NEXT, 0, READ, 8).pop().bytes(), "CHAIN_FLAGS_MISMATCH"));
        s.put("h4_next_on_every_slot", new Seed(allNext(4), "CHAIN_TOO_LONG"));
        s.put("h5_chain_into_buffers_in_flight", new Seed(new Builder(4, 0, 0, 0)
                .add(WRITE, 8).pop()
                .raw(1, AVAIL | NEXT, 1, WRITE, 8).raw(2, AVAIL | NEXT, 1, WRITE, 8).raw(3, AVAIL | NEXT, 1, WRITE, 8)
                .pop().bytes(), "RING_OVERRUN"));
        s.put("h6_indirect_len_0_qemu_3984", new Seed(new Builder(8, INDIRECT, 0, 0)
                .addIndirect(1, 0, WRITE, 8).pop().complete(0, 0).notifyDecision().bytes(), "INDIRECT_TABLE_EMPTY"));
        s.put("h6_indirect_len_not_multiple_of_16", new Seed(new Builder(8, INDIRECT, 0, 0)
                .addIndirect(2, 0, WRITE, 8).pop().bytes(), "INDIRECT_TABLE_BAD_LENGTH"));
        s.put("h6_indirect_over_the_cap", new Seed(new Builder(8, INDIRECT, 0, 2)
                .addIndirect(0, 0, READ, 8, WRITE, 8, WRITE, 8).pop().bytes(), "INDIRECT_TABLE_TOO_LONG"));
        s.put("h6_indirect_table_outside_memory", new Seed(new Builder(8, INDIRECT, 0, 0)
                .addIndirect(3, 0, WRITE, 8).pop().bytes(), "INDIRECT_TABLE_OUT_OF_RANGE"));
        s.put("h7_indirect_with_next", new Seed(new Builder(8, INDIRECT, 0, 0)
                .addIndirect(16, 0, WRITE, 8).add(WRITE, 8).pop().bytes(), "INDIRECT_WITH_NEXT"));
        s.put("h7_indirect_reached_through_next", new Seed(new Builder(8, INDIRECT, 0, 0)
                .raw(1, AVAIL | 4, 1, READ, 16).raw(0, AVAIL | NEXT, 0, READ, 8).pop().bytes(), "INDIRECT_IN_CHAIN"));
        s.put("h7_nested_indirect", new Seed(new Builder(8, INDIRECT, 0, 0)
                .addIndirect(8, 0, WRITE, 8).pop().bytes(), "NESTED_INDIRECT"));
        s.put("h8_next_on_the_last_table_entry", new Seed(new Builder(8, INDIRECT, 0, 0)
                .addIndirect(4, 0, READ, 8, WRITE, 8).pop().complete(0, 8).notifyDecision().bytes(),
                "pieces=[Piece"));
        s.put("h9_indirect_not_negotiated", new Seed(new Builder(8, 0, 0, 0)
                .addIndirect(0, 0, WRITE, 8).pop().bytes(), "INDIRECT_NOT_NEGOTIATED"));
        s.put("h10_id_0xffff", new Seed(new Builder(8, 0, 0, 0)
                .raw(0, AVAIL | 2, 0xFFFF, WRITE, 8).pop().complete(0, 4).bytes(), "id=65535"));
        s.put("h10_duplicate_id_in_flight", new Seed(new Builder(8, 0, 0, 0)
                .add(WRITE, 8).pop().raw(1, AVAIL | 2, 0, WRITE, 8).pop().bytes(), "BUFFER_ID_IN_FLIGHT"));
        s.put("h11_buffer_straddles_end_of_memory", new Seed(new Builder(8, 0, 0, 0)
                .add(READ, 8, 2 | WRITE, 64).pop().complete(0, 0).notifyDecision().bytes(), "BUFFER_OUT_OF_RANGE"));
        s.put("h11_buffer_wraps_2_to_64", new Seed(new Builder(8, 0, 0, 0)
                .add(6 | WRITE, 64).pop().bytes(), "BUFFER_OUT_OF_RANGE"));
        s.put("h11_total_over_4_gib", new Seed(new Builder(8, 0, 0, 0)
                .add(READ, 8, 0x80 | WRITE, 0).pop().bytes(), "TOTAL_LENGTH_OVERFLOW"));
        s.put("h12_readable_after_writable", new Seed(new Builder(8, 0, 0, 0)
                .add(WRITE, 8, READ, 8).pop().bytes(), "READABLE_AFTER_WRITABLE"));
        return s;
    }

    /** {@code chains} one-slot round trips on a ring of {@code size}: laps of the ring, wraps flipping. */
    private static byte[] laps(int size, int chains) {
        Builder b = new Builder(size, 0, 0, 0);
        for (int i = 0; i < chains; i++) {
            b.add(WRITE, 8).pop().complete(0, 4).notifyDecision();
        }
        return b.bytes();
    }

    private static byte[] allNext(int size) {
        Builder b = new Builder(size, 0, 0, 0);
        for (int slot = size - 1; slot >= 0; slot--) {
            b.raw(slot, AVAIL | NEXT, slot, WRITE, 8);
        }
        return b.pop().complete(0, 0).notifyDecision().bytes();
    }

    @TestFactory
    Stream<DynamicTest> seedsShowTheirOutcomeAndAreCheckedIn() {
        return seeds().entrySet().stream().map(e -> DynamicTest.dynamicTest(e.getKey(), () -> check(e.getKey(),
                e.getValue())));
    }

    private static void check(String name, Seed seed) throws IOException {
        String trace = PackedWalkerHarness.runTwice(seed.bytes());
        assertTrue(trace.contains(seed.expect()), name + ": expected '" + seed.expect() + "' in\n" + trace);
        String file = "seed_" + name;
        if (Boolean.getBoolean("fuzz.writeSeeds")) {
            Path dir = Path.of(System.getProperty("basedir", "."), "src/test/resources", INPUTS);
            Files.createDirectories(dir);
            Files.write(dir.resolve(file), seed.bytes());
            return;
        }
        try (InputStream in = PackedSeedCorpusTest.class.getClassLoader().getResourceAsStream(INPUTS + file)) {
            assertTrue(in != null, file + " is not checked in: run with -Dfuzz.writeSeeds=true");
            assertArrayEquals(seed.bytes(), in.readAllBytes(), file + " is stale: run with -Dfuzz.writeSeeds=true");
        }
    }
}
