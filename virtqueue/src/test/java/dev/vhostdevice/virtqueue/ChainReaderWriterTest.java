package dev.vhostdevice.virtqueue;

import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.readable;
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.writable;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.vhostdevice.virtqueue.testing.DriverQueue;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The reader and writer cursors: little-endian fields and bulk bytes across descriptor boundaries. */
class ChainReaderWriterTest {
    private QueueFixture f;
    private DriverQueue driver;

    @BeforeEach
    void setUp() throws Exception {
        f = new QueueFixture(16);
        driver = f.driver;
    }

    @AfterEach
    void tearDown() {
        f.close();
    }

    @Test
    void aHeaderShatteredIntoOneByteDescriptorsReadsAsOneField() {
        for (int i = 0; i < 4; i++) {
            driver.write(0x10000 + 0x100L * i, new byte[] {(byte) (0x10 + i)});
        }
        driver.add(readable(0x10000, 1), readable(0x10100, 1), readable(0x10200, 1), readable(0x10300, 1));
        Chain chain = f.popOne();
        assertEquals(0x13121110, chain.reader().readInt());
        assertEquals(0, chain.reader().remaining());
    }

    @Test
    void fieldsOfEveryWidthReadLittleEndian() {
        driver.write(0x10000, new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15});
        driver.add(readable(0x10000, 15));
        ChainReader reader = f.popOne().reader();
        assertEquals(1, reader.readByte());
        assertEquals(0x0302, reader.readShort());
        assertEquals(0x07060504, reader.readInt());
        assertEquals(0x0F0E0D0C0B0A0908L, reader.readLong());
    }

    @Test
    void readingPastTheEndIsAnAccessErrorAndMovesNothing() {
        driver.add(readable(0x10000, 3), writable(0x20000, 4));
        ChainReader reader = f.popOne().reader();
        assertThrows(ChainAccessException.class, reader::readInt);
        assertEquals(0, reader.position());
        assertThrows(ChainAccessException.class, () -> reader.read(new byte[8], 0, 4));
        assertThrows(ChainAccessException.class, () -> reader.skip(4));
        assertThrows(ChainAccessException.class, () -> reader.skip(-1));
        assertEquals(3, reader.remaining());
    }

    @Test
    void bulkReadsCrossDescriptorBoundaries() {
        driver.write(0x10000, new byte[] {1, 2, 3});
        driver.write(0x10100, new byte[] {4, 5, 6, 7});
        driver.add(readable(0x10000, 3), readable(0x10100, 4));
        ChainReader reader = f.popOne().reader();
        reader.skip(1);
        byte[] out = new byte[5];
        reader.read(out, 0, 5);
        assertArrayEquals(new byte[] {2, 3, 4, 5, 6}, out);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment last = arena.allocate(1);
            reader.read(last, 0, 1);
            assertEquals(7, last.get(ValueLayout.JAVA_BYTE, 0));
        }
    }

    @Test
    void theUsedLengthIsTheFurthestByteWrittenEvenAfterSeekingBack() {
        int head = driver.add(writable(0x20000, 2), writable(0x20100, 14));
        Chain chain = f.popOne();
        ChainWriter writer = chain.writer();
        writer.seek(4);
        writer.write(new byte[] {9, 9, 9, 9, 9, 9}, 0, 6);
        writer.seek(0);
        writer.writeInt(0xAABBCCDD);
        assertEquals(10, writer.bytesWritten());
        f.queue.addUsed(chain);
        assertEquals(new DriverQueue.Used(head, 10), driver.pollUsed());
        assertArrayEquals(new byte[] {(byte) 0xDD, (byte) 0xCC}, driver.read(0x20000, 2));
        assertArrayEquals(new byte[] {(byte) 0xBB, (byte) 0xAA, 9, 9, 9, 9, 9, 9}, driver.read(0x20100, 8));
    }

    @Test
    void writingPastTheEndIsAnAccessError() {
        driver.add(writable(0x20000, 3));
        ChainWriter writer = f.popOne().writer();
        assertThrows(ChainAccessException.class, () -> writer.writeInt(1));
        assertThrows(ChainAccessException.class, () -> writer.seek(4));
        assertThrows(ChainAccessException.class, () -> writer.fill((byte) 0, 4));
        assertEquals(0, writer.bytesWritten());
    }

    @Test
    void fieldsSplitAcrossWritableDescriptorsAreScattered() {
        driver.add(writable(0x20000, 1), writable(0x20100, 1), writable(0x20200, 6));
        ChainWriter writer = f.popOne().writer();
        writer.writeShort(0x0201);
        writer.writeInt(0x06050403);
        writer.writeShort(0x0807);
        assertArrayEquals(new byte[] {1}, driver.read(0x20000, 1));
        assertArrayEquals(new byte[] {2}, driver.read(0x20100, 1));
        assertArrayEquals(new byte[] {3, 4, 5, 6, 7, 8}, driver.read(0x20200, 6));
    }

    @Test
    void aSourceFillsGuestMemoryPieceByPiece() throws Exception {
        driver.add(writable(0x20000, 5), writable(0x20100, 5));
        ChainWriter writer = f.popOne().writer();
        int[] calls = {0};
        long written = writer.writeFrom((segment, offset, length) -> {
            calls[0]++;
            segment.asSlice(offset, length).fill((byte) 0x5A);
            return length;
        }, 8);
        assertEquals(8, written);
        assertEquals(2, calls[0], "one call per piece");
        assertEquals(8, writer.bytesWritten());
        assertArrayEquals(new byte[] {0x5A, 0x5A, 0x5A, 0x0}, driver.read(0x20100, 4));
    }

    @Test
    void aSourceAtEndOfDataWritesNothing() throws Exception {
        driver.add(writable(0x20000, 8));
        ChainWriter writer = f.popOne().writer();
        assertEquals(-1, writer.writeFrom((segment, offset, length) -> -1, 8));
        assertEquals(0, writer.bytesWritten());
    }

    @Test
    void aShortSourceStopsTheFill() throws Exception {
        driver.add(writable(0x20000, 4), writable(0x20100, 4));
        ChainWriter writer = f.popOne().writer();
        assertEquals(3, writer.writeFrom((segment, offset, length) -> 3, 8));
        assertEquals(3, writer.bytesWritten());
    }

    @Test
    void cursorsStartOverForEveryPoppedChain() {
        driver.write(0x10000, new byte[] {1, 2, 3, 4});
        driver.add(readable(0x10000, 4), writable(0x20000, 4));
        Chain chain = f.popOne();
        chain.reader().readInt();
        chain.writer().writeInt(1);
        f.queue.addUsed(chain);
        driver.pollUsed();

        driver.add(readable(0x10000, 4), writable(0x20000, 4));
        f.popOne();
        assertEquals(0, chain.reader().position());
        assertEquals(0, chain.writer().bytesWritten());
        assertEquals(0x04030201, chain.reader().readInt());
    }
}
