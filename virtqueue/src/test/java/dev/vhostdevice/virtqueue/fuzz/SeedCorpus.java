package dev.vhostdevice.virtqueue.fuzz;

import static dev.vhostdevice.virtqueue.fuzz.Scenario.availFlags;
import static dev.vhostdevice.virtqueue.fuzz.Scenario.availIdx;
import static dev.vhostdevice.virtqueue.fuzz.Scenario.disable;
import static dev.vhostdevice.virtqueue.fuzz.Scenario.enable;
import static dev.vhostdevice.virtqueue.fuzz.Scenario.hasAvailable;
import static dev.vhostdevice.virtqueue.fuzz.Scenario.notifyDecision;
import static dev.vhostdevice.virtqueue.fuzz.Scenario.pop;
import static dev.vhostdevice.virtqueue.fuzz.Scenario.popHead;
import static dev.vhostdevice.virtqueue.fuzz.Scenario.publish;
import static dev.vhostdevice.virtqueue.fuzz.Scenario.read;
import static dev.vhostdevice.virtqueue.fuzz.Scenario.readField;
import static dev.vhostdevice.virtqueue.fuzz.Scenario.remap;
import static dev.vhostdevice.virtqueue.fuzz.Scenario.reset;
import static dev.vhostdevice.virtqueue.fuzz.Scenario.resetTo;
import static dev.vhostdevice.virtqueue.fuzz.Scenario.restore;
import static dev.vhostdevice.virtqueue.fuzz.Scenario.saveRestore;
import static dev.vhostdevice.virtqueue.fuzz.Scenario.seek;
import static dev.vhostdevice.virtqueue.fuzz.Scenario.used;
import static dev.vhostdevice.virtqueue.fuzz.Scenario.usedEvent;
import static dev.vhostdevice.virtqueue.fuzz.Scenario.write;
import static dev.vhostdevice.virtqueue.fuzz.Scenario.writeDesc;
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.readable;
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.writable;

import dev.vhostdevice.virtqueue.fuzz.FuzzInput.Base;
import dev.vhostdevice.virtqueue.fuzz.FuzzInput.Config;
import dev.vhostdevice.virtqueue.fuzz.FuzzInput.Region;
import dev.vhostdevice.virtqueue.testing.DriverQueue;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Function;

/**
 * The seed corpus: scenarios built with the {@link DriverQueue} kit (a basic multi-chain exchange, indirect
 * chains, one or more per bug class of virtqueue.md §7, and rust-vmm's fuzz regression inputs translated), each
 * with the outcome it is about. {@link SeedCorpusTest} runs them and keeps the serialized files in step.
 */
final class SeedCorpus {
    static final int NEXT = 1;
    static final int WRITE = 2;
    static final int INDIRECT = 4;

    private SeedCorpus() {
    }

    /** Seed name to the scenario builder. */
    static Map<String, Function<String, Scenario>> all() {
        Map<String, Function<String, Scenario>> seeds = new LinkedHashMap<>();
        seeds.put("basic_multi_chain", SeedCorpus::basicMultiChain);
        seeds.put("rustvmm_basic_virtio_queue", SeedCorpus::rustVmmBasic);
        seeds.put("indirect_chains", SeedCorpus::indirectChains);
        seeds.put("adjacent_regions", SeedCorpus::adjacentRegions);
        seeds.put("notification_event_idx", SeedCorpus::notificationEventIdx);
        seeds.put("notification_flags", SeedCorpus::notificationFlags);
        seeds.put("remap", SeedCorpus::remapScenario);
        seeds.put("cve1_self_loop", s -> loop(s, false));
        seeds.put("cve1_two_cycle_and_max_chain", SeedCorpus::twoCycle);
        seeds.put("cve1_indirect_loop", s -> loop(s, true));
        seeds.put("cve1_total_length_overflow", SeedCorpus::totalOverflow);
        seeds.put("cve2_avail_full_then_runaway", SeedCorpus::availRunaway);
        seeds.put("cve2_avail_decrement", SeedCorpus::availDecrement);
        seeds.put("cve2_avail_wrap", SeedCorpus::availWrap);
        seeds.put("cve2_head_republished_in_flight", SeedCorpus::republished);
        seeds.put("cve3_zero_length", SeedCorpus::zeroLength);
        seeds.put("cve4_range_end_of_ram", SeedCorpus::endOfRam);
        seeds.put("cve4_buffer_across_hole", SeedCorpus::acrossHole);
        seeds.put("cve4_ring_straddles_ram_end", SeedCorpus::ringStraddles);
        seeds.put("cve5_wrap_2_64", SeedCorpus::wrap64);
        seeds.put("cve6_indirect_nested_and_next", SeedCorpus::indirectNested);
        seeds.put("cve6_indirect_bad_lengths", SeedCorpus::indirectBadLengths);
        seeds.put("cve6_indirect_unmapped_and_next_out", SeedCorpus::indirectUnmapped);
        seeds.put("cve6_indirect_not_negotiated", SeedCorpus::indirectNotNegotiated);
        seeds.put("cve7_head_out_of_range", s -> headOutOfRange(s, 16));
        seeds.put("cve7_head_ffff", s -> headOutOfRange(s, 0xFFFF));
        seeds.put("cve7_next_out_of_range", SeedCorpus::nextOutOfRange);
        seeds.put("cve8_size_0", s -> badSize(s, 0));
        seeds.put("cve8_size_3", s -> badSize(s, 3));
        seeds.put("cve8_size_65535", s -> badSize(s, 65535));
        seeds.put("cve8_restore_far_index", SeedCorpus::restoreFar);
        seeds.put("cve9_reset_staleness", SeedCorpus::resetStaleness);
        seeds.put("cve9_reset_new_rings", SeedCorpus::resetNewRings);
        seeds.put("cve10_readable_after_writable", SeedCorpus::order);
        seeds.put("rustvmm_regression_size_0", SeedCorpus::rustVmmSizeZero);
        seeds.put("rustvmm_regression_timeout_after_reset", SeedCorpus::rustVmmTimeoutAfterReset);
        return seeds;
    }

    private static byte[] text(String s) {
        return s.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    }

    static Scenario basicMultiChain(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(16);
        s.fill(0x4000, text("hello, device"));
        s.fill(0x5000, new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
        d.add(readable(s.abs(0x4000), 13), writable(s.abs(0x8000), 64));
        d.add(readable(s.abs(0x5000), 3), readable(s.abs(0x5100), 5), writable(s.abs(0x9000), 2),
                writable(s.abs(0x9100), 100));
        d.add(writable(s.abs(0xA000), 16));
        d.add(readable(s.abs(0x5000), 11));
        return s.ops(disable(), pop(), pop(), pop(), pop(), hasAvailable(),
                        read(0, 13), write(0, 64), used(0),
                        readField(0, 1), readField(0, 2), readField(0, 3), write(0, 1, 0), write(0, 3, 0),
                        seek(0, true, 0), write(0, 2, 0), write(0, 5, 50), write(0, 5, 60), used(0),
                        write(0, 4, 16), write(0, 1), used(0), read(0, 12), used(0),
                        notifyDecision(), enable(), pop(), notifyDecision())
                .expect("used head=");
    }

    /** rust-vmm fuzz/common basic_virtio_queue: 7 descriptors, chains (0,1), (2,3,4), (5,6), WRITE on 2, 4, 5. */
    static Scenario rustVmmBasic(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(256, 0x1000, false, false);
        for (int i = 0; i < 7; i++) {
            boolean next = i == 0 || i == 2 || i == 3 || i == 5;
            boolean w = i == 2 || i == 4 || i == 5;
            s.desc(i, 0x3000 + 0x1000L * i, 0x1000, (next ? NEXT : 0) | (w ? WRITE : 0), next ? i + 1 : 0);
        }
        d.publish(0);
        d.publish(2);
        d.publish(5);
        return s.ops(disable(), pop(), pop(), used(0), enable(), used(0), pop(), notifyDecision(), pop())
                .expect("READABLE_AFTER_WRITABLE");
    }

    static Scenario indirectChains(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(8);
        s.fill(0x4000, text("indirect request"));
        d.addIndirect(s.abs(0x7001), readable(s.abs(0x4000), 3), readable(s.abs(0x4003), 5),
                writable(s.abs(0x8000), 16));
        // A direct head followed by an INDIRECT tail (spec: MUST handle), table at an odd address.
        d.writeIndirectTable(s.abs(0x7103), readable(s.abs(0x4008), 8), writable(s.abs(0x8100), 32));
        s.desc(5, 0x4000, 4, NEXT, 6);
        s.desc(6, 0x7103, 32, INDIRECT, 0);
        d.publish(5);
        return s.ops(pop(), pop(), read(0, 8), write(0, 16), read(1, 12), write(1, 2, 0), used(1), used(0),
                        notifyDecision())
                .expect("ok 3 pieces");
    }

    static Scenario adjacentRegions(String name) {
        Scenario s = new Scenario(name, Base.ZERO, new Region(0, 16), new Region(0, 4), new Region(2, 2));
        DriverQueue d = s.queue(16);
        s.fill(0xFFF0, text("spans two regions"));
        d.add(readable(s.abs(0xFFF0), 0x20), writable(s.abs(0xFFF8), 0x10));
        // An indirect table straddling the region boundary: tables must lie in one region.
        d.writeIndirectTable(s.abs(0xFFF0), readable(s.abs(0x4000), 1), readable(s.abs(0x4001), 1));
        s.desc(10, 0xFFF0, 32, INDIRECT, 0);
        d.publish(10);
        // A buffer in the third region (after a hole), one running off its end.
        d.add(writable(s.abs(0x16000), 0x2000));
        d.add(writable(s.abs(0x16000), 0x2001));
        return s.ops(pop(), read(0, 0x20), write(0, 0x10), used(0), pop(), pop(), write(1, 0x2000), pop(),
                        used(0), used(0), used(0))
                .expect("ok 4 pieces");
    }

    static Scenario notificationEventIdx(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(8, 0x1000, true, false);
        for (int i = 0; i < 8; i++) {
            d.add(writable(s.abs(0x4000 + 0x100L * i), 0x10));
        }
        // virtqueue.md §3.1 worked values: (0, 0 -> 1) notify; (5, 3 -> 5) no; (5, 3 -> 7) notify.
        return s.ops(usedEvent(0), pop(), write(0, 4), used(0), notifyDecision(),
                        pop(), pop(), used(0), used(0), usedEvent(5), notifyDecision(),
                        pop(), pop(), used(0), usedEvent(5), notifyDecision(),
                        pop(), pop(), pop(), used(0), used(0), notifyDecision(), used(0), usedEvent(7),
                        notifyDecision(), enable(), disable(), enable(), notifyDecision())
                .expect("notify true");
    }

    static Scenario notificationFlags(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(4, 0x1000, false, false);
        d.add(writable(s.abs(0x4000), 0x10));
        d.add(writable(s.abs(0x4100), 0x10));
        return s.ops(disable(), pop(), used(0), availFlags(1), notifyDecision(), enable(), pop(), used(0),
                        availFlags(0), notifyDecision(), notifyDecision(), enable())
                .expect("notify false");
    }

    static Scenario remapScenario(String name) {
        Scenario s = new Scenario(name, Base.ZERO, new Region(0, 4), new Region(0, 8));
        DriverQueue d = s.queue(8, 0x5000, false, false);
        d.add(readable(s.abs(0x1000), 0x10), writable(s.abs(0x7000), 0x10));
        d.add(writable(s.abs(0x1100), 0x10));
        d.add(writable(s.abs(0x7100), 0x10));
        return s.ops(pop(), write(0, 8), remap(0), pop(), used(0), remap(1), pop(), read(0, 4), used(0),
                        remap(2), pop(), used(0), hasAvailable(), remap(0), pop(), used(0), reset(1), pop())
                .expect("remap 2 ready=false parked");
    }

    static Scenario loop(String name, boolean indirect) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(8);
        if (indirect) {
            s.descAt(0x7000, 0x4000, 4, NEXT, 1);
            s.descAt(0x7010, 0x4004, 4, NEXT, 0);
            s.desc(0, 0x7000, 32, INDIRECT, 0);
        } else {
            s.desc(0, 0x4000, 4, NEXT, 0);
        }
        d.publish(0);
        return s.ops(pop(), read(0, 1), used(0), notifyDecision()).expect("CHAIN_TOO_LONG");
    }

    static Scenario twoCycle(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(4);
        s.desc(1, 0x4000, 4, NEXT, 2);
        s.desc(2, 0x4004, 4, NEXT, 1);
        d.publish(1);
        // Exactly N = 4 descriptors is a valid chain.
        s.desc(0, 0x4000, 1, NEXT, 1);
        return s.ops(pop(), used(0), writeDesc(1, 0x4001, 1, NEXT, 2), writeDesc(2, 0x4002, 1, NEXT, 3),
                        writeDesc(3, 0x4003, 1, 0, 0), publish(0), pop(), read(0, 4), used(0))
                .expect("ok 4 pieces");
    }

    static Scenario totalOverflow(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(4);
        s.desc(0, 0x4000, 0x10, NEXT, 1);
        s.desc(1, 0x4000, 0xFFFF_FFF0L, 0, 0); // total 2^32: overflow, before the range check
        d.publish(0);
        s.desc(2, 0x4000, 0x10, NEXT, 3);
        s.desc(3, 0x4000, 0xFFFF_FFEFL, 0, 0); // total 2^32 - 1: fits, but the buffer is not in memory
        d.publish(2);
        return s.ops(pop(), pop(), used(0), used(0)).expect("TOTAL_LENGTH_OVERFLOW");
    }

    static Scenario availRunaway(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(4);
        for (int i = 0; i < 4; i++) {
            d.add(writable(s.abs(0x4000 + 0x10L * i), 0x10));
        }
        // avail idx = next_avail + N is fine; the driver then runs N + 1 ahead.
        return s.ops(pop(), pop(), pop(), pop(), used(0), used(0), used(0), used(0), availIdx(9), pop(), pop(),
                        hasAvailable(), enable(), reset(1), availIdx(4), pop())
                .expect("broken AVAIL_INDEX_RUNAWAY");
    }

    static Scenario availDecrement(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(4);
        for (int i = 0; i < 3; i++) {
            d.add(writable(s.abs(0x4000 + 0x10L * i), 0x10));
        }
        // The batch read idx 3 once: popping goes on to it; only the next read of the index sees the decrement.
        return s.ops(pop(), availIdx(1), pop(), pop(), pop(), used(0)).expect("broken AVAIL_INDEX_RUNAWAY");
    }

    static Scenario availWrap(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(4);
        d.setAvailIdx(0xFFFE);
        int[] heads = new int[4];
        for (int i = 0; i < 4; i++) {
            heads[i] = d.prepare(writable(s.abs(0x4000 + 0x10L * i), 0x10));
        }
        return s.ops(restore(0xFFFE, 0xFFFE, false), publish(heads[0]), publish(heads[1]), publish(heads[2]),
                        publish(heads[3]), pop(), pop(), pop(), pop(), pop(), used(0), used(0), used(0),
                        used(0), notifyDecision())
                .expect("pop head=3 ok");
    }

    static Scenario republished(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(4);
        int head = d.add(writable(s.abs(0x4000), 0x10));
        d.publish(head);
        return s.ops(pop(), pop(), used(0), pop(), popHead(head), popHead(1))
                .expect("broken HEAD_IN_FLIGHT");
    }

    static Scenario zeroLength(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(8);
        d.add(readable(s.abs(0x4000), 0));
        d.add(readable(s.abs(0x4000), 4), readable(s.abs(0x4004), 0), writable(s.abs(0x5000), 4));
        d.add(writable(s.abs(0x5000), 0));
        s.desc(7, 0x7000, 0, INDIRECT, 0);
        d.publish(7);
        return s.ops(pop(), read(0, 1), pop(), read(1, 4), write(1, 4), pop(), write(2, 1), pop(),
                        used(0), used(0), used(0), used(0))
                .expect("INDIRECT_TABLE_EMPTY");
    }

    static Scenario endOfRam(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(4);
        d.add(writable(s.abs(0xFFF0), 0x10)); // ends at the last mapped byte
        d.add(writable(s.abs(0xFFF0), 0x11)); // one past
        return s.ops(pop(), write(0, 0x10), pop(), used(0), used(0)).expect("BUFFER_OUT_OF_RANGE");
    }

    static Scenario acrossHole(String name) {
        Scenario s = new Scenario(name, Base.LOW, new Region(0, 8), new Region(1, 8));
        DriverQueue d = s.queue(4);
        d.add(readable(s.abs(0x7FF0), 0x20)); // the second region starts a page after the first ends
        d.add(readable(s.abs(0x9000), 0x20));
        return s.ops(pop(), pop(), used(0), used(0)).expect("BUFFER_OUT_OF_RANGE");
    }

    static Scenario ringStraddles(String name) {
        Scenario s = new Scenario(name, Base.ZERO, new Region(0, 1), new Region(0, 1));
        s.queue(4, 0x100, false, false);
        // Used ring from 0xFFC over the boundary of two adjacent regions: rings must lie in one region.
        s.config = new Config(2, 4, false, false, 0, 0x100, 0x200, 0xFFC);
        return s.ops(pop(), resetTo(new Config(0, 4, false, false, 0, 0xFD0, 0x200, 0x300)), pop(),
                        resetTo(new Config(0, 4, false, false, 0, 0x100, 0x200, 0x300)), pop())
                .expect("activate refused");
    }

    static Scenario wrap64(String name) {
        Scenario s = new Scenario(name, Base.TOP, new Region(0, 16));
        DriverQueue d = s.queue(8);
        long top16 = 0x10000 - 0x10; // relative: 0xFFFF_FFFF_FFFF_FFF0
        d.add(writable(s.abs(top16), 0x10)); // ends exactly at 2^64
        d.add(writable(s.abs(top16), 0x20)); // wraps
        s.desc(6, top16, 0x20, INDIRECT, 0); // indirect table wrapping
        d.publish(6);
        return s.ops(pop(), write(0, 0x10), used(0), pop(), pop(), used(0), used(0),
                        resetTo(new Config(0, 8, false, true, 0, 0xFFC0, 0x1000, 0x2000)), pop())
                .expect("BUFFER_OUT_OF_RANGE");
    }

    static Scenario indirectNested(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(8);
        s.descAt(0x7000, 0x7100, 16, INDIRECT, 0);
        s.desc(0, 0x7000, 16, INDIRECT, 0);
        d.publish(0);
        // INDIRECT with NEXT: the table is followed, NEXT ignored.
        d.writeIndirectTable(s.abs(0x7200), readable(s.abs(0x4000), 8));
        s.desc(1, 0x7200, 16, INDIRECT | NEXT, 2);
        s.desc(2, 0x4000, 8, 0, 0);
        d.publish(1);
        return s.ops(pop(), pop(), read(1, 8), used(0), used(0)).expect("NESTED_INDIRECT");
    }

    static Scenario indirectBadLengths(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(8);
        d.writeIndirectTable(s.abs(0x7003), readable(s.abs(0x4000), 8), writable(s.abs(0x5000), 8));
        s.desc(0, 0x7003, 17, INDIRECT, 0);
        s.desc(1, 0x7003, 16 * 65536L, INDIRECT, 0);
        s.desc(2, 0x7003, 32, INDIRECT, 0); // unaligned table: fine
        for (int i = 0; i < 3; i++) {
            d.publish(i);
        }
        return s.ops(pop(), pop(), pop(), write(2, 8), used(0), used(0), used(0)).expect("INDIRECT_TABLE_BAD_LENGTH");
    }

    static Scenario indirectUnmapped(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(8);
        s.desc(0, 0xFFF0, 32, INDIRECT, 0); // half outside memory
        s.descAt(0x7000, 0x4000, 4, NEXT, 2); // next = table length
        s.descAt(0x7010, 0x4004, 4, 0, 0);
        s.desc(1, 0x7000, 32, INDIRECT, 0);
        d.publish(0);
        d.publish(1);
        return s.ops(pop(), pop(), used(0), used(0)).expect("NEXT_OUT_OF_RANGE");
    }

    static Scenario indirectNotNegotiated(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(4, 0x1000, false, false);
        d.addIndirect(s.abs(0x7000), readable(s.abs(0x4000), 4));
        return s.ops(pop(), used(0)).expect("INDIRECT_NOT_NEGOTIATED");
    }

    static Scenario headOutOfRange(String name, int head) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(16);
        d.add(writable(s.abs(0x4000), 4));
        d.publish(head);
        d.add(writable(s.abs(0x4004), 4));
        return s.ops(pop(), pop(), pop(), used(0), enable(), hasAvailable(), reset(1), pop())
                .expect("broken HEAD_OUT_OF_RANGE");
    }

    static Scenario nextOutOfRange(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(8);
        s.desc(0, 0x4000, 4, NEXT, 8);
        d.publish(0);
        return s.ops(pop(), used(0)).expect("NEXT_OUT_OF_RANGE");
    }

    static Scenario badSize(String name, int size) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(16);
        d.add(writable(s.abs(0x4000), 4));
        Config c = s.config;
        s.config = new Config(c.maxSizeLog(), size, c.eventIdx(), c.indirect(), c.indirectCap(), c.desc(), c.avail(),
                c.used());
        return s.ops(pop(), used(0), resetTo(new Config(0, size, false, false, 0, 0x1000, 0x1100, 0x1128)), pop())
                .expect("config size=16");
    }

    static Scenario restoreFar(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(8);
        d.add(writable(s.abs(0x4000), 4));
        return s.ops(saveRestore(), restore(0x8000, 0x1234, true), pop(), hasAvailable(), reset(1), pop(),
                        used(0))
                .expect("broken AVAIL_INDEX_RUNAWAY");
    }

    static Scenario resetStaleness(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(8);
        d.add(writable(s.abs(0x4000), 4));
        d.add(writable(s.abs(0x4004), 4));
        return s.ops(pop(), write(0, 4), reset(0), pop(), hasAvailable(), reset(1), pop(), pop(), used(0),
                        reset(2), pop(), pop())
                .expect("reset 0");
    }

    static Scenario resetNewRings(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(8);
        d.add(writable(s.abs(0x4000), 4));
        DriverQueue other = DriverQueue.layout(s.memory, 4, s.abs(0x9000));
        other.add(writable(s.abs(0xA000), 8));
        return s.ops(pop(), used(0), resetTo(new Config(0, 4, false, false, 0, other.descAddress() - s.base,
                                other.availAddress() - s.base, other.usedAddress() - s.base)),
                        pop(), write(0, 8), used(0), notifyDecision(), enable())
                .expect("used head=0 len=8");
    }

    static Scenario order(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(8);
        d.add(readable(s.abs(0x4000), 4), writable(s.abs(0x5000), 4), readable(s.abs(0x4004), 4));
        d.add(writable(s.abs(0x5100), 8));
        d.add(readable(s.abs(0x4100), 8));
        return s.ops(pop(), pop(), pop(), read(1, 1), write(2, 1), write(1, 8), used(0), used(0), used(0))
                .expect("READABLE_AFTER_WRITABLE");
    }

    /** rust-vmm test_regression_iterator_division: size 0 with the fuzzer's descriptor. */
    static Scenario rustVmmSizeZero(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(256, 0x1000, false, false);
        d.writeDescriptor(0, 0xC4C4_C4C4_C4C4_44C4L /* 14178673876262995140 */, (int) 3301229764L, 50372, 50372);
        d.publish(0);
        Config c = s.config;
        s.config = new Config(c.maxSizeLog(), 0, false, false, 0, c.desc(), c.avail(), c.used());
        return s.ops(pop(), pop(), used(0)).expect("config size=256");
    }

    /** rust-vmm test_regression_timeout_after_reset: reset, then set ready without programming the rings. */
    static Scenario rustVmmTimeoutAfterReset(String name) {
        Scenario s = new Scenario(name);
        DriverQueue d = s.queue(256, 0, false, false);
        for (int i = 0; i < 7; i++) {
            s.desc(i, 0x3000 + 0x100L * i, 0x100, NEXT, i + 1);
        }
        s.desc(7, 0x3700, 0x100, 0, 0);
        d.publish(0);
        return s.ops(pop(), used(0), reset(2), pop(), pop(), pop(), used(0), used(0))
                .expect("reset 2");
    }
}
