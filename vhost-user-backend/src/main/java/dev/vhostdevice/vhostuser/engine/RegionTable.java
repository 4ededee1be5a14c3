package dev.vhostdevice.vhostuser.engine;

import dev.vhostdevice.vhostuser.protocol.Payload.MemoryRegion;
import dev.vhostdevice.vhostuser.protocol.ProtocolException;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.memory.GuestRegion;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.Collections;

/**
 * One generation of the front-end's memory table: the region descriptions (for user-address translation and
 * REM_MEM_REG matching), each region's own mapping, and the combined {@link GuestMemory} view the queues use.
 * Immutable; a change makes a new table that shares the unchanged mappings. {@link #releaseUnshared} unmaps
 * what the next generation no longer holds, once no worker uses this one.
 */
final class RegionTable {
    record Mapping(MemoryRegion region, GuestMemory owner) {}

    static final RegionTable EMPTY = new RegionTable(List.of());

    private final List<Mapping> mappings;
    private final GuestMemory memory;

    RegionTable(List<Mapping> mappings) throws IllegalArgumentException {
        this.mappings = List.copyOf(mappings);
        List<GuestRegion> regions = new ArrayList<>(mappings.size());
        for (Mapping m : mappings) {
            regions.add(m.owner().region(0));
        }
        this.memory = GuestMemory.of(regions);
    }

    GuestMemory memory() {
        return memory;
    }

    List<Mapping> mappings() {
        return mappings;
    }

    int size() {
        return mappings.size();
    }

    boolean isEmpty() {
        return mappings.isEmpty();
    }

    /**
     * The guest-physical address of the front-end user address {@code uva}, if [uva, uva + length) lies inside
     * one region's user range; else throws. Regions with user address 0 are skipped: the Xen bridge sends its
     * per-access grant regions so, never mapping them itself.
     */
    long userToGuest(long uva, long length, String what) throws ProtocolException {
        for (Mapping m : mappings) {
            MemoryRegion r = m.region();
            if (r.userAddr() == 0) {
                continue;
            }
            long offset = uva - r.userAddr();
            if (Long.compareUnsigned(uva, r.userAddr()) >= 0 && Long.compareUnsigned(offset, r.memorySize()) < 0
                    && Long.compareUnsigned(length, r.memorySize() - offset) <= 0) {
                return r.guestPhysAddr() + offset;
            }
        }
        throw ProtocolException.invalid(what + " at user address 0x%x (+0x%x) is outside the memory table"
                .formatted(uva, length));
    }

    /** This table plus {@code added}; throws if it overlaps a region already present. */
    RegionTable plus(Mapping added) {
        List<Mapping> all = new ArrayList<>(mappings);
        all.add(added);
        return new RegionTable(all);
    }

    /** Index of the region matching GPA, user address and size (mmap_offset ignored), or -1. */
    int find(MemoryRegion region) {
        for (int i = 0; i < mappings.size(); i++) {
            MemoryRegion r = mappings.get(i).region();
            if (r.guestPhysAddr() == region.guestPhysAddr() && r.userAddr() == region.userAddr()
                    && r.memorySize() == region.memorySize()) {
                return i;
            }
        }
        return -1;
    }

    RegionTable minus(int index) {
        List<Mapping> rest = new ArrayList<>(mappings);
        rest.remove(index);
        return new RegionTable(rest);
    }

    /** Unmaps this table's mappings that {@code next} does not hold (null: all of them). */
    void releaseUnshared(RegionTable next) {
        Set<GuestMemory> kept = Collections.newSetFromMap(new IdentityHashMap<>());
        if (next != null) {
            for (Mapping m : next.mappings) {
                kept.add(m.owner());
            }
        }
        for (Mapping m : mappings) {
            if (!kept.contains(m.owner())) {
                m.owner().close();
            }
        }
    }
}
