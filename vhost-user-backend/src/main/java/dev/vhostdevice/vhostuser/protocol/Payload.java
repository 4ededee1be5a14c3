package dev.vhostdevice.vhostuser.protocol;

import java.util.List;

/** Decoded request bodies (vhost-user-protocol.md §1.3). All integers are host-native (little-endian) on the wire. */
public sealed interface Payload {

    /** No body. */
    record Empty() implements Payload {
        public static final Empty INSTANCE = new Empty();
    }

    /** One u64: feature masks, status, a log/config value. */
    record U64(long value) implements Payload {}

    /** vring state: index and a number (size, base, enable flag). */
    record VringState(int index, int num) implements Payload {}

    /** SET_VRING_ADDR: front-end addresses of the three rings plus the used-ring log address. */
    record VringAddress(int index, int flags, long descUserAddr, long usedUserAddr, long availUserAddr,
                        long logGuestAddr) implements Payload {
        /** VHOST_VRING_F_LOG: used-ring writes are logged at {@link #logGuestAddr}. */
        public static final int VHOST_VRING_F_LOG = 0x1;

        public boolean logUsed() {
            return (flags & VHOST_VRING_F_LOG) != 0;
        }
    }

    /** SET_VRING_KICK/CALL/ERR: bits 0-7 index, bit 8 "no fd". */
    record VringFd(int index, boolean noFd) implements Payload {
        public static final long INDEX_MASK = 0xFF;
        public static final long NOFD_MASK = 0x100;
    }

    /** One memory region description. The Xen fields are 0 in the standard 32-byte layout. */
    record MemoryRegion(long guestPhysAddr, long memorySize, long userAddr, long mmapOffset, int xenMmapFlags,
                        int xenMmapData) {
        public MemoryRegion(long guestPhysAddr, long memorySize, long userAddr, long mmapOffset) {
            this(guestPhysAddr, memorySize, userAddr, mmapOffset, 0, 0);
        }
    }

    /** SET_MEM_TABLE. */
    record MemoryTable(List<MemoryRegion> regions) implements Payload {
        public MemoryTable {
            regions = List.copyOf(regions);
        }
    }

    /** ADD_MEM_REG / REM_MEM_REG. */
    record SingleRegion(MemoryRegion region) implements Payload {}

    /** SET_LOG_BASE under LOG_SHMFD. */
    record LogArea(long mmapSize, long mmapOffset) implements Payload {}

    /** GET_INFLIGHT_FD / SET_INFLIGHT_FD. */
    record Inflight(long mmapSize, long mmapOffset, int numQueues, int queueSize) implements Payload {}

    /** GET_CONFIG / SET_CONFIG: a window of config space. */
    record Config(int offset, int size, int flags, byte[] data) implements Payload {
        /** Flag 1: a live-migration restore, which may write read-only fields. */
        public static final int VHOST_SET_CONFIG_TYPE_MIGRATION = 1;
    }

    /** SET_DEVICE_STATE_FD. */
    record DeviceStateTransfer(int direction, int phase) implements Payload {
        public static final int DIRECTION_SAVE = 0;
        public static final int DIRECTION_LOAD = 1;
        public static final int PHASE_STOPPED = 0;
    }

    /** A request the engine knows but does not decode (it is refused anyway). */
    record Raw(int size) implements Payload {}
}
