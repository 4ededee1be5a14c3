package dev.vhostdevice.vhostuser.testkit;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The driver side of one split ring, laid out by hand in a segment that mirrors guest memory from GPA 0:
 * descriptors at {@code descGpa}, available ring at {@code availGpa}, used ring at {@code usedGpa}, buffers
 * handed out from {@code bufferGpa} upwards. Each chain is one readable and one writable descriptor.
 */
public final class DriverRing {
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public final MemorySegment memory;
    public final int size;
    public final long descGpa;
    public final long availGpa;
    public final long usedGpa;
    private long nextBuffer;
    private int availIdx;
    private int nextDesc;

    public DriverRing(MemorySegment memory, int size, long descGpa, long availGpa, long usedGpa, long bufferGpa) {
        this.memory = memory;
        this.size = size;
        this.descGpa = descGpa;
        this.availGpa = availGpa;
        this.usedGpa = usedGpa;
        this.nextBuffer = bufferGpa;
    }

    /** Publishes a chain: {@code request} readable, then {@code writable} bytes writable. Returns the head. */
    public int add(byte[] request, int writable) {
        int head = nextDesc % size;
        int second = (head + 1) % size;
        nextDesc += 2;
        long in = nextBuffer;
        nextBuffer += 256;
        long out = nextBuffer;
        nextBuffer += 256;
        MemorySegment.copy(request, 0, memory, ValueLayout.JAVA_BYTE, in, request.length);
        writeDesc(head, in, request.length, 1 /* NEXT */, second);
        writeDesc(second, out, writable, 2 /* WRITE */, 0);
        memory.set(U16, availGpa + 4 + 2L * (availIdx % size), (short) head);
        availIdx = (availIdx + 1) & 0xFFFF;
        memory.set(U16, availGpa + 2, (short) availIdx);
        return head;
    }

    private void writeDesc(int index, long address, int length, int flags, int next) {
        long at = descGpa + 16L * index;
        memory.set(U64, at, address);
        memory.set(U32, at + 8, length);
        memory.set(U16, at + 12, (short) flags);
        memory.set(U16, at + 14, (short) next);
    }

    public int usedIdx() {
        return Short.toUnsignedInt(memory.get(U16, usedGpa + 2));
    }

    public int usedId(int slot) {
        return memory.get(U32, usedGpa + 4 + 8L * (slot % size));
    }

    public int usedLen(int slot) {
        return memory.get(U32, usedGpa + 4 + 8L * (slot % size) + 4);
    }

    /** The bytes the device wrote into the writable buffer of chain {@code head}. */
    public byte[] written(int head, int length) {
        long at = descGpa + 16L * ((head + 1) % size);
        long address = memory.get(U64, at);
        return memory.asSlice(address, length).toArray(ValueLayout.JAVA_BYTE);
    }
}
