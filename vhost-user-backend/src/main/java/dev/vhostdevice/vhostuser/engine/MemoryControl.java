package dev.vhostdevice.vhostuser.engine;

import dev.vhostdevice.vhostuser.protocol.Payload.MemoryRegion;
import dev.vhostdevice.vhostuser.protocol.Payload.MemoryTable;
import dev.vhostdevice.vhostuser.protocol.ProtocolException;
import dev.vhostdevice.vhostuser.sys.ReceivedFds;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import java.util.ArrayList;
import java.util.List;

/**
 * The memory table: SET_MEM_TABLE (full replace), ADD_MEM_REG and REM_MEM_REG. A new table is mapped on the
 * control thread, installed by the worker between device callbacks (queues remapped, device told), and only
 * then does the old generation's memory go away.
 */
final class MemoryControl {
    private final RegionMapper mapper;
    private final RingControl rings;
    private volatile RegionTable table = RegionTable.EMPTY;

    MemoryControl(RegionMapper mapper, RingControl rings) {
        this.mapper = mapper;
        this.rings = rings;
    }

    RegionTable table() {
        return table;
    }

    void setTable(MemoryTable message, ReceivedFds fds) throws Exception {
        List<MemoryRegion> regions = message.regions();
        if (fds.count() != regions.size()) {
            throw ProtocolException.invalid(regions.size() + " regions but " + fds.count() + " fds");
        }
        List<RegionTable.Mapping> mapped = new ArrayList<>(regions.size());
        RegionTable next;
        try {
            for (int i = 0; i < regions.size(); i++) {
                mapped.add(new RegionTable.Mapping(regions.get(i), mapper.map(regions.get(i), fds.peek(i))));
            }
            next = new RegionTable(mapped);
        } catch (Exception e) {
            mapped.forEach(m -> m.owner().close());
            throw overlapAsInvalid(e);
        }
        install(next);
    }

    void add(MemoryRegion region, int fd) throws Exception {
        RegionTable current = table;
        if (current.size() >= VhostUserSession.MAX_MEM_SLOTS) {
            throw ProtocolException.invalid("all " + VhostUserSession.MAX_MEM_SLOTS + " memory slots are in use");
        }
        GuestMemory owner = mapper.map(region, fd);
        RegionTable next;
        try {
            next = current.plus(new RegionTable.Mapping(region, owner));
        } catch (Exception e) {
            owner.close();
            throw overlapAsInvalid(e);
        }
        install(next);
    }

    void remove(MemoryRegion region) throws Exception {
        RegionTable current = table;
        int index = current.find(region);
        if (index < 0) {
            throw ProtocolException.invalid("no region " + RegionMapper.describe(region) + " to remove");
        }
        install(current.minus(index));
    }

    private static Exception overlapAsInvalid(Exception e) {
        return e instanceof IllegalArgumentException ? ProtocolException.invalid(e.getMessage()) : e;
    }

    private void install(RegionTable next) throws Exception {
        RegionTable old = table;
        try {
            rings.worker().call(() -> {
                table = next;
                rings.memoryChanged(next.memory());
                return null;
            });
        } catch (Exception e) {
            next.releaseUnshared(old);
            throw e;
        }
        // The worker has moved to the new table: nothing reads the old mappings any more.
        old.releaseUnshared(next);
    }

    /** At disconnect, after the worker stopped. */
    void releaseAll() {
        RegionTable old = table;
        table = RegionTable.EMPTY;
        old.releaseUnshared(null);
    }
}
