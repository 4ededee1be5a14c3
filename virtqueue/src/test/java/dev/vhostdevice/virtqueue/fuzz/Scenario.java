package dev.vhostdevice.virtqueue.fuzz;

import dev.vhostdevice.virtqueue.fuzz.FuzzInput.Base;
import dev.vhostdevice.virtqueue.fuzz.FuzzInput.Config;
import dev.vhostdevice.virtqueue.fuzz.FuzzInput.Layout;
import dev.vhostdevice.virtqueue.fuzz.FuzzInput.Op;
import dev.vhostdevice.virtqueue.fuzz.FuzzInput.Raw;
import dev.vhostdevice.virtqueue.fuzz.FuzzInput.Region;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.memory.GuestRegion;
import dev.vhostdevice.virtqueue.testing.DriverQueue;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Builds a {@link FuzzInput} the way rust-vmm's fuzz/common builds its seeds: lay out guest memory as the input
 * will, let the {@link DriverQueue} test kit write rings, descriptors and buffers into it, then capture the memory
 * image as raw writes and append device/driver operations.
 */
final class Scenario implements AutoCloseable {
    final String name;
    final Layout layout;
    final long base;
    final GuestMemory memory;
    Config config;
    DriverQueue driver;
    final List<Op> ops = new ArrayList<>();
    /** A fragment the run's trace must contain: the outcome the seed is about. */
    String expect = "";

    /** One region of 16 pages at guest address 0. */
    Scenario(String name) {
        this(name, Base.ZERO, new Region(0, 16));
    }

    Scenario(String name, Base base, Region... regions) {
        this.name = name;
        this.layout = new Layout(base, List.of(regions));
        this.base = layout.baseAddress();
        GuestMemory.Builder b = GuestMemory.builder();
        long[] starts = layout.starts();
        for (int i = 0; i < starts.length; i++) {
            b.allocate(starts[i], regions[i].sizePages() * FuzzInput.PAGE);
        }
        this.memory = b.build();
    }

    long abs(long relative) {
        return base + relative;
    }

    long rel(long absolute) {
        return absolute - base;
    }

    /** A driver whose rings start at {@code relAt} (Linux layout), and the matching queue configuration. */
    DriverQueue queue(int size, long relAt, boolean eventIdx, boolean indirect) {
        driver = DriverQueue.layout(memory, size, abs(relAt));
        driver.setEventIdx(eventIdx);
        config = new Config(Integer.numberOfTrailingZeros(size), size, eventIdx, indirect, 0,
                rel(driver.descAddress()), rel(driver.availAddress()), rel(driver.usedAddress()));
        return driver;
    }

    DriverQueue queue(int size) {
        return queue(size, 0x1000, false, true);
    }

    /** Writes {@code bytes} at relative address {@code relAt}. */
    void fill(long relAt, byte[] bytes) {
        driver.write(abs(relAt), bytes);
    }

    /** Writes main-table descriptor {@code index}. */
    void desc(int index, long relAddr, long len, int flags, int next) {
        driver.writeDescriptor(index, abs(relAddr), (int) len, flags, next);
    }

    /** Writes a descriptor at a relative address (an indirect table entry). */
    void descAt(long relAt, long relAddr, long len, int flags, int next) {
        driver.writeDescriptorAt(abs(relAt), abs(relAddr), (int) len, flags, next);
    }

    Scenario ops(Op... more) {
        ops.addAll(List.of(more));
        return this;
    }

    Scenario expect(String fragment) {
        expect = fragment;
        return this;
    }

    /** The memory image (non-zero runs) as raw writes, the configuration and the ops. */
    FuzzInput build() {
        List<Raw> raws = new ArrayList<>();
        for (GuestRegion r : memory.regions()) {
            byte[] bytes = r.segment().toArray(ValueLayout.JAVA_BYTE);
            int i = 0;
            while (i < bytes.length) {
                if (bytes[i] == 0) {
                    i++;
                    continue;
                }
                int start = i;
                int zeros = 0;
                int end = i;
                while (i < bytes.length && zeros < 32 && i - start < FuzzInput.MAX_RAW_BYTES) {
                    if (bytes[i] == 0) {
                        zeros++;
                    } else {
                        zeros = 0;
                        end = i + 1;
                    }
                    i++;
                }
                raws.add(new Raw(rel(r.guestAddress() + start), Arrays.copyOfRange(bytes, start, end)));
                i = end;
            }
        }
        if (raws.size() > FuzzInput.MAX_RAWS) {
            throw new IllegalStateException(name + ": memory image needs " + raws.size() + " raw writes");
        }
        return new FuzzInput(layout, config, List.of(), raws, ops);
    }

    @Override
    public void close() {
        memory.close();
    }

    // ---------------------------------------------------------------------------------------- op shorthands

    static Op pop() {
        return new FuzzInput.Pop();
    }

    static Op popHead(int head) {
        return new FuzzInput.PopHead(head);
    }

    static Op read(int chain, int n) {
        return new FuzzInput.Read(chain, 0, n);
    }

    static Op readField(int chain, int kind) {
        return new FuzzInput.Read(chain, kind, 0);
    }

    static Op write(int chain, int n) {
        return new FuzzInput.Write(chain, 0, n, 0x5A);
    }

    static Op write(int chain, int kind, int n) {
        return new FuzzInput.Write(chain, kind, n, 0xA5);
    }

    static Op seek(int chain, boolean writer, long position) {
        return new FuzzInput.Seek(chain, writer, position);
    }

    static Op used(int chain) {
        return new FuzzInput.AddUsed(chain);
    }

    static Op notifyDecision() {
        return new FuzzInput.NeedsNotification();
    }

    static Op enable() {
        return new FuzzInput.EnableNotification();
    }

    static Op disable() {
        return new FuzzInput.DisableNotification();
    }

    static Op publish(int head) {
        return new FuzzInput.Publish(head);
    }

    static Op availIdx(int idx) {
        return new FuzzInput.SetAvailIdx(idx);
    }

    static Op usedEvent(int value) {
        return new FuzzInput.SetUsedEvent(value);
    }

    static Op availFlags(int value) {
        return new FuzzInput.SetAvailFlags(value);
    }

    static Op reset(int mode) {
        return new FuzzInput.Reset(mode, null);
    }

    static Op resetTo(Config config) {
        return new FuzzInput.Reset(3, config);
    }

    static Op restore(int nextAvail, int nextUsed, boolean eventIdx) {
        return new FuzzInput.StateRestore(true, nextAvail, nextUsed, eventIdx);
    }

    static Op saveRestore() {
        return new FuzzInput.StateRestore(false, 0, 0, false);
    }

    static Op remap(int mode) {
        return new FuzzInput.Remap(mode);
    }

    static Op hasAvailable() {
        return new FuzzInput.HasAvailable();
    }

    static Op writeDesc(int index, long relAddr, long len, int flags, int next) {
        return new FuzzInput.WriteDesc(new FuzzInput.Desc(index, relAddr, (int) len, flags, next));
    }

    static Op writeRaw(long relAddr, byte... bytes) {
        return new FuzzInput.WriteRaw(relAddr, bytes);
    }
}
