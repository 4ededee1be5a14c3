package dev.vhostdevice.vhostuser.frontend;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/** Payload builders for every request body (vhost-user-protocol.md §1.3), little-endian as on x86-64/aarch64. */
public final class Msg {
    public static final byte[] EMPTY = new byte[0];
    /** Bit 8 of a SET_VRING_KICK/CALL/ERR value: no fd attached. */
    public static final long NOFD = 0x100;

    private Msg() {
    }

    public static ByteBuffer le(int size) {
        return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    }

    public static byte[] u64(long value) {
        return le(8).putLong(value).array();
    }

    public static byte[] vringState(int index, int num) {
        return le(8).putInt(index).putInt(num).array();
    }

    public static byte[] vringAddr(int index, int flags, long descUva, long usedUva, long availUva, long logGpa) {
        return le(40).putInt(index).putInt(flags).putLong(descUva).putLong(usedUva).putLong(availUva)
                .putLong(logGpa).array();
    }

    /** One region description: guest_phys_addr, memory_size, userspace_addr, mmap_offset. */
    public record Region(long gpa, long size, long uva, long mmapOffset) {
    }

    public static byte[] memTable(List<Region> regions) {
        ByteBuffer b = le(8 + 32 * regions.size()).putInt(regions.size()).putInt(0);
        for (Region r : regions) {
            b.putLong(r.gpa()).putLong(r.size()).putLong(r.uva()).putLong(r.mmapOffset());
        }
        return b.array();
    }

    public static byte[] memTable(Region... regions) {
        return memTable(List.of(regions));
    }

    /** ADD_MEM_REG / REM_MEM_REG: 8 bytes of padding, then one region. */
    public static byte[] singleRegion(Region r) {
        return le(40).putLong(0).putLong(r.gpa()).putLong(r.size()).putLong(r.uva()).putLong(r.mmapOffset()).array();
    }

    public static byte[] logArea(long mmapSize, long mmapOffset) {
        return le(16).putLong(mmapSize).putLong(mmapOffset).array();
    }

    /** GET/SET_INFLIGHT_FD: mmap_size, mmap_offset, num_queues, queue_size, 4 bytes of tail padding. */
    public static byte[] inflight(long mmapSize, long mmapOffset, int numQueues, int queueSize) {
        return le(24).putLong(mmapSize).putLong(mmapOffset).putShort((short) numQueues).putShort((short) queueSize)
                .putInt(0).array();
    }

    /** GET_CONFIG request: offset, size, flags, then {@code size} zero bytes. */
    public static byte[] configRead(int offset, int size) {
        return le(12 + size).putInt(offset).putInt(size).putInt(0).array();
    }

    /** SET_CONFIG: offset, size, flags, data. */
    public static byte[] configWrite(int offset, int flags, byte[] data) {
        return le(12 + data.length).putInt(offset).putInt(data.length).putInt(flags).put(data).array();
    }

    public static byte[] deviceStateTransfer(int direction, int phase) {
        return le(8).putInt(direction).putInt(phase).array();
    }
}
