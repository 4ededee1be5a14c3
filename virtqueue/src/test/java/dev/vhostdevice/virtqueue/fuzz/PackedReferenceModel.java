package dev.vhostdevice.virtqueue.fuzz;

import dev.vhostdevice.virtqueue.ChainFault;
import dev.vhostdevice.virtqueue.QueueFault;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * A naive model of the device side of a packed ring (packed-ring.md §2, §6.1), written as a plain list of the
 * rules over a byte-array copy of guest memory, sharing nothing with {@code PackedQueue}: BigInteger address
 * arithmetic, sets instead of bitmaps, no reuse. The fuzz harness compares every pop with it.
 */
final class PackedReferenceModel {
    static final int NEXT = 1;
    static final int WRITE = 2;
    static final int INDIRECT = 4;
    static final int AVAIL = 1 << 7;
    static final int USED = 1 << 15;

    /** One pop's outcome: empty, a broken queue, or a chain (with its fault, or its pieces). */
    record Outcome(String kind, QueueFault queueFault, int id, int slots, ChainFault fault, List<Piece> pieces) {
        static Outcome empty() {
            return new Outcome("empty", null, -1, 0, null, List.of());
        }

        static Outcome broken(QueueFault why) {
            return new Outcome("broken", why, -1, 0, null, List.of());
        }

        static Outcome chain(int id, int slots, ChainFault fault, List<Piece> pieces) {
            return new Outcome("chain", null, id, slots, fault, fault == null ? pieces : List.of());
        }
    }

    /** A buffer the device may access: guest address, length, direction. */
    record Piece(long address, long length, boolean writable) {
    }

    final int size;
    final long ringAddress;
    final long memorySize;
    final boolean indirectAllowed;
    final int indirectCap;
    int availSlot;
    boolean availWrap;
    int inFlightSlots;
    final Set<Integer> inFlightIds = new HashSet<>();
    QueueFault broken;

    PackedReferenceModel(int size, long ringAddress, long memorySize, boolean indirectAllowed, int indirectCap,
                         int startSlot, boolean startWrap) {
        this.size = size;
        this.ringAddress = ringAddress;
        this.memorySize = memorySize;
        this.indirectAllowed = indirectAllowed;
        this.indirectCap = indirectCap;
        this.availSlot = startSlot;
        this.availWrap = startWrap;
    }

    private record Desc(long address, long length, int id, int flags) {
    }

    private static Desc read(byte[] memory, long at) {
        ByteBuffer b = ByteBuffer.wrap(memory, (int) at, 16).order(ByteOrder.LITTLE_ENDIAN);
        long address = b.getLong();
        long length = Integer.toUnsignedLong(b.getInt());
        int id = Short.toUnsignedInt(b.getShort());
        int flags = Short.toUnsignedInt(b.getShort());
        return new Desc(address, length, id, flags);
    }

    private static boolean available(int flags, boolean wrap) {
        return ((flags & AVAIL) != 0) == wrap && ((flags & USED) != 0) != wrap;
    }

    /** What a pop does to a ring in {@code memory}; the model moves on as the device would. */
    Outcome pop(byte[] memory) {
        if (broken != null) {
            return Outcome.empty();
        }
        Desc head = read(memory, ringAddress + 16L * availSlot);
        if (!available(head.flags(), availWrap)) {
            return Outcome.empty();
        }
        if (inFlightSlots == size) {
            broken = QueueFault.RING_OVERRUN;
            return Outcome.broken(broken);
        }
        int room = size - inFlightSlots;
        List<Desc> chain = new ArrayList<>();
        int slot = availSlot;
        boolean wrap = availWrap;
        boolean tooLong = false;
        while (true) {
            Desc d = read(memory, ringAddress + 16L * slot);
            if (!chain.isEmpty() && !available(d.flags(), wrap)) {
                broken = QueueFault.CHAIN_FLAGS_MISMATCH;
                return Outcome.broken(broken);
            }
            // The head's flags are the ones tested above (read once).
            chain.add(chain.isEmpty() ? head : d);
            slot++;
            if (slot == size) {
                slot = 0;
                wrap = !wrap;
            }
            if ((chain.getLast().flags() & NEXT) == 0) {
                break;
            }
            if (chain.size() == room) {
                if (inFlightSlots > 0) {
                    broken = QueueFault.RING_OVERRUN;
                    return Outcome.broken(broken);
                }
                tooLong = true;
                break;
            }
        }
        int id = chain.getLast().id();
        if (inFlightIds.contains(id)) {
            broken = QueueFault.BUFFER_ID_IN_FLIGHT;
            return Outcome.broken(broken);
        }
        availSlot = slot;
        availWrap = wrap;
        inFlightSlots += chain.size();
        inFlightIds.add(id);
        List<Piece> pieces = new ArrayList<>();
        ChainFault fault = tooLong ? ChainFault.CHAIN_TOO_LONG : walk(memory, chain, pieces);
        return Outcome.chain(id, chain.size(), fault, pieces);
    }

    void completed(int id, int slots) {
        inFlightIds.remove(id);
        inFlightSlots -= slots;
    }

    private ChainFault walk(byte[] memory, List<Desc> chain, List<Piece> pieces) {
        BigInteger[] total = {BigInteger.ZERO};
        boolean[] writableSeen = {false};
        for (int k = 0; k < chain.size(); k++) {
            Desc d = chain.get(k);
            if ((d.flags() & INDIRECT) == 0) {
                ChainFault f = buffer(d.address(), d.length(), (d.flags() & WRITE) != 0, total, writableSeen, pieces);
                if (f != null) {
                    return f;
                }
                continue;
            }
            if ((d.flags() & NEXT) != 0) {
                return ChainFault.INDIRECT_WITH_NEXT;
            }
            if (k > 0) {
                return ChainFault.INDIRECT_IN_CHAIN;
            }
            if (!indirectAllowed) {
                return ChainFault.INDIRECT_NOT_NEGOTIATED;
            }
            if (d.length() == 0) {
                return ChainFault.INDIRECT_TABLE_EMPTY;
            }
            if (d.length() % 16 != 0) {
                return ChainFault.INDIRECT_TABLE_BAD_LENGTH;
            }
            if (d.length() / 16 > indirectCap) {
                return ChainFault.INDIRECT_TABLE_TOO_LONG;
            }
            if (!inMemory(d.address(), d.length())) {
                return ChainFault.INDIRECT_TABLE_OUT_OF_RANGE;
            }
            for (long e = 0; e < d.length() / 16; e++) {
                Desc entry = read(memory, d.address() + 16 * e);
                if ((entry.flags() & INDIRECT) != 0) {
                    return ChainFault.NESTED_INDIRECT;
                }
                ChainFault f = buffer(entry.address(), entry.length(), (entry.flags() & WRITE) != 0, total,
                        writableSeen, pieces);
                if (f != null) {
                    return f;
                }
            }
        }
        return null;
    }

    private ChainFault buffer(long address, long length, boolean writable, BigInteger[] total, boolean[] writableSeen,
                              List<Piece> pieces) {
        if (!writable && writableSeen[0]) {
            return ChainFault.READABLE_AFTER_WRITABLE;
        }
        writableSeen[0] |= writable;
        total[0] = total[0].add(BigInteger.valueOf(length));
        if (total[0].compareTo(BigInteger.valueOf(0xFFFF_FFFFL)) > 0) {
            return ChainFault.TOTAL_LENGTH_OVERFLOW;
        }
        if (length > 0) {
            if (!inMemory(address, length)) {
                return ChainFault.BUFFER_OUT_OF_RANGE;
            }
            pieces.add(new Piece(address, length, writable));
        }
        return null;
    }

    private boolean inMemory(long address, long length) {
        BigInteger start = new BigInteger(Long.toUnsignedString(address));
        BigInteger end = start.add(BigInteger.valueOf(length));
        return end.compareTo(BigInteger.valueOf(memorySize)) <= 0;
    }
}
