package dev.vhostdevice.virtqueue.fuzz;

import dev.vhostdevice.virtqueue.ChainFault;
import dev.vhostdevice.virtqueue.memory.GuestRegion;
import java.lang.foreign.ValueLayout;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;

/**
 * A deliberately naive model of the descriptor walk (virtqueue.md §2.4-2.6 and the {@code SplitQueue} /
 * {@link ChainFault} docs): step counting per table, every range in {@link BigInteger}, guest memory read byte by
 * byte through a linear search of the regions. It shares no code with the production walker.
 */
final class ReferenceWalker {
    static final BigInteger TWO_64 = BigInteger.ONE.shiftLeft(64);
    static final BigInteger U32_MAX = BigInteger.valueOf(0xFFFF_FFFFL);

    /** One piece of a chain: {@code length} bytes at guest address {@code address}. */
    record Piece(long address, long length, boolean writable) {
    }

    /** What a walk yields: a fault (and no pieces) or the pieces; and how many descriptors it read. */
    record Walk(ChainFault fault, int descriptors, List<Piece> pieces) {
        long bytes(boolean writable) {
            return pieces.stream().filter(p -> p.writable() == writable).mapToLong(Piece::length).sum();
        }
    }

    private ReferenceWalker() {
    }

    static BigInteger unsigned(long v) {
        return new BigInteger(Long.toUnsignedString(v));
    }

    /** The region holding {@code gpa}, by linear search, or null. */
    static GuestRegion regionOf(List<GuestRegion> regions, BigInteger gpa) {
        for (GuestRegion r : regions) {
            BigInteger start = unsigned(r.guestAddress());
            if (gpa.compareTo(start) >= 0 && gpa.compareTo(start.add(BigInteger.valueOf(r.size()))) < 0) {
                return r;
            }
        }
        return null;
    }

    /** Whether [gpa, gpa + length) lies inside a single region. */
    static boolean inOneRegion(List<GuestRegion> regions, BigInteger gpa, BigInteger length) {
        GuestRegion r = regionOf(regions, gpa);
        if (r == null) {
            return false;
        }
        BigInteger end = unsigned(r.guestAddress()).add(BigInteger.valueOf(r.size()));
        return gpa.add(length).compareTo(end) <= 0 && length.signum() > 0;
    }

    /** The byte at {@code gpa}, or -1 if it is not guest memory. */
    static int readByte(List<GuestRegion> regions, BigInteger gpa) {
        GuestRegion r = regionOf(regions, gpa);
        if (r == null) {
            return -1;
        }
        long offset = gpa.subtract(unsigned(r.guestAddress())).longValueExact();
        return r.segment().get(ValueLayout.JAVA_BYTE, offset) & 0xFF;
    }

    /** {@code bytes} little-endian bytes at {@code gpa} as an unsigned value, or null if any is not memory. */
    static BigInteger readLe(List<GuestRegion> regions, BigInteger gpa, int bytes) {
        BigInteger value = BigInteger.ZERO;
        for (int i = bytes - 1; i >= 0; i--) {
            int b = readByte(regions, gpa.add(BigInteger.valueOf(i)));
            if (b < 0) {
                return null;
            }
            value = value.shiftLeft(8).or(BigInteger.valueOf(b));
        }
        return value;
    }

    /**
     * Walks the chain at {@code head} of the main table at {@code descTable} ({@code size} entries). Policy, in
     * the order the checks apply to one descriptor: count it (more than the table's entries is CHAIN_TOO_LONG);
     * INDIRECT: nested, not negotiated, length 0, not a multiple of 16, more entries than the cap, not inside one
     * region; the table replaces the rest of the chain (its WRITE and NEXT are ignored). Otherwise: readable after
     * writable; running total over 2^32-1; buffer not wholly in memory (adjacent regions are fine, a wrap past 2^64
     * is not); NEXT out of the current table.
     */
    static Walk walk(List<GuestRegion> memory, long descTable, int size, int head, boolean indirectAllowed,
                     int indirectCap) {
        BigInteger table = unsigned(descTable);
        long entries = size;
        boolean inIndirect = false;
        long index = head;
        long steps = 0;
        int descriptors = 0;
        BigInteger total = BigInteger.ZERO;
        boolean writableSeen = false;
        List<Piece> pieces = new ArrayList<>();
        while (true) {
            steps++;
            if (steps > entries) {
                return new Walk(ChainFault.CHAIN_TOO_LONG, descriptors, List.of());
            }
            descriptors++;
            BigInteger at = table.add(BigInteger.valueOf(16 * index));
            BigInteger addrV = readLe(memory, at, 8);
            BigInteger lenV = readLe(memory, at.add(BigInteger.valueOf(8)), 4);
            BigInteger flagsV = readLe(memory, at.add(BigInteger.valueOf(12)), 2);
            BigInteger nextV = readLe(memory, at.add(BigInteger.valueOf(14)), 2);
            if (addrV == null || lenV == null || flagsV == null || nextV == null) {
                throw new AssertionError("model: descriptor at 0x" + at.toString(16) + " is not in guest memory");
            }
            int flags = flagsV.intValue();
            long len = lenV.longValue();
            if ((flags & 4) != 0) {
                if (inIndirect) {
                    return new Walk(ChainFault.NESTED_INDIRECT, descriptors, List.of());
                }
                if (!indirectAllowed) {
                    return new Walk(ChainFault.INDIRECT_NOT_NEGOTIATED, descriptors, List.of());
                }
                if (len == 0) {
                    return new Walk(ChainFault.INDIRECT_TABLE_EMPTY, descriptors, List.of());
                }
                if (len % 16 != 0) {
                    return new Walk(ChainFault.INDIRECT_TABLE_BAD_LENGTH, descriptors, List.of());
                }
                if (len / 16 > indirectCap) {
                    return new Walk(ChainFault.INDIRECT_TABLE_TOO_LONG, descriptors, List.of());
                }
                if (!inOneRegion(memory, addrV, lenV)) {
                    return new Walk(ChainFault.INDIRECT_TABLE_OUT_OF_RANGE, descriptors, List.of());
                }
                table = addrV;
                entries = len / 16;
                inIndirect = true;
                index = 0;
                steps = 0;
                continue;
            }
            boolean writable = (flags & 2) != 0;
            if (!writable && writableSeen) {
                return new Walk(ChainFault.READABLE_AFTER_WRITABLE, descriptors, List.of());
            }
            writableSeen |= writable;
            total = total.add(lenV);
            if (total.compareTo(U32_MAX) > 0) {
                return new Walk(ChainFault.TOTAL_LENGTH_OVERFLOW, descriptors, List.of());
            }
            if (len > 0 && !addPieces(memory, addrV, lenV, writable, pieces)) {
                return new Walk(ChainFault.BUFFER_OUT_OF_RANGE, descriptors, List.of());
            }
            if ((flags & 1) == 0) {
                return new Walk(null, descriptors, List.copyOf(pieces));
            }
            long next = nextV.longValue();
            if (next >= entries) {
                return new Walk(ChainFault.NEXT_OUT_OF_RANGE, descriptors, List.of());
            }
            index = next;
        }
    }

    private static boolean addPieces(List<GuestRegion> memory, BigInteger addr, BigInteger len, boolean writable,
                                     List<Piece> pieces) {
        BigInteger end = addr.add(len);
        if (end.compareTo(TWO_64) > 0) {
            return false;
        }
        BigInteger cur = addr;
        while (cur.compareTo(end) < 0) {
            GuestRegion r = regionOf(memory, cur);
            if (r == null) {
                return false;
            }
            BigInteger regionEnd = unsigned(r.guestAddress()).add(BigInteger.valueOf(r.size()));
            BigInteger pieceEnd = end.min(regionEnd);
            pieces.add(new Piece(cur.longValue(), pieceEnd.subtract(cur).longValueExact(), writable));
            cur = pieceEnd;
        }
        return true;
    }

    /** The EVENT_IDX rule, written out from the spec text (virtio 1.2 §2.7.10, virtqueue.md §3.1). */
    static boolean needEvent(int event, int newIdx, int oldIdx) {
        int distanceFromEvent = Math.floorMod(newIdx - event - 1, 65536);
        int added = Math.floorMod(newIdx - oldIdx, 65536);
        return distanceFromEvent < added;
    }
}
