package dev.vhostdevice.virtqueue.fuzz;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.virtqueue.Chain;
import dev.vhostdevice.virtqueue.SplitQueue;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.testing.DriverQueue;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer;
import dev.vhostdevice.virtqueue.testing.GuestAllocator;
import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.stream.LongStream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Any valid chain the {@link DriverQueue} kit builds (direct, chained, indirect, a direct head with an indirect
 * tail; buffers of 0 to 300 bytes scattered over 1 to 3 adjacent regions, so some span a region boundary)
 * round-trips through {@link SplitQueue}: the readable bytes read are what the driver wrote, bytes written through
 * the writer land in the writable buffers in order, and the used length is the number of bytes written.
 *
 * <p>A seeded property test in plain JUnit: each case derives its chain from its seed, so a failure names the
 * seed that reproduces it. (jqwik is not used: its 1.10 engine asks AI agents not to use it.)
 */
class ChainRoundTripPropertiesTest {
    private static final long PAGE = 4096;
    private static final long RINGS = 0x1000;
    /** Room for 8 buffers with their gaps even in a single region. */
    private static final long REGION = 16 * PAGE;

    enum Shape { DIRECT, INDIRECT, MIXED }

    /** One buffer: its length, the gap before it, and its direction. */
    record Buf(int length, int gap, boolean writable) {
    }

    private static final int CASES = 150;

    static LongStream seeds() {
        return LongStream.range(0, CASES).map(i -> 0x9E3779B97F4A7C15L * (i + 1));
    }

    /** 1 to 8 buffers of 0 to 300 bytes with gaps, every readable one before the writable ones. */
    private static List<Buf> buffers(Random random) {
        int count = 1 + random.nextInt(8);
        List<Buf> bufs = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            bufs.add(new Buf(random.nextInt(301), random.nextInt(6001), random.nextBoolean()));
        }
        return bufs.stream().sorted(Comparator.comparing(Buf::writable)).toList();
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void validChainsRoundTrip(long seed) throws Exception {
        Random shapeRandom = new Random(seed);
        List<Buf> bufs = buffers(shapeRandom);
        Shape shape = Shape.values()[shapeRandom.nextInt(Shape.values().length)];
        int sizeLog = shapeRandom.nextInt(7);
        int regions = 1 + shapeRandom.nextInt(3);
        int directPrefix = shapeRandom.nextInt(9);
        long contentSeed = shapeRandom.nextLong();
        int size = 1 << sizeLog;
        int prefix = Math.min(directPrefix, bufs.size() - 1);
        // Shapes that cannot fit the ring become indirect chains, which always fit.
        if (shape == Shape.DIRECT && bufs.size() > size
                || shape == Shape.MIXED && !(prefix >= 1 && prefix + 1 <= size)) {
            shape = Shape.INDIRECT;
        }

        GuestMemory.Builder builder = GuestMemory.builder();
        for (int i = 0; i < regions; i++) {
            builder.allocate(REGION * i, REGION); // adjacent regions
        }
        try (GuestMemory memory = builder.build()) {
            DriverQueue driver = DriverQueue.layout(memory, size, RINGS);
            SplitQueue queue = new SplitQueue("property", size);
            driver.configure(queue);
            queue.setIndirectAllowed(true);
            queue.activate(memory);

            // Place the buffers after the rings and any indirect table, with the chosen gaps.
            long tableAt = RINGS + DriverQueue.layoutBytes(size) + 7; // odd: tables need no alignment
            GuestAllocator alloc = new GuestAllocator(tableAt + 16L * bufs.size(), REGION * regions
                    - (tableAt + 16L * bufs.size()));
            Random random = new Random(contentSeed);
            List<Buffer> buffers = new ArrayList<>();
            ByteArrayOutputStream readable = new ByteArrayOutputStream();
            for (Buf b : bufs) {
                alloc.allocate(b.gap(), 1);
                long at = alloc.allocate(b.length(), 1);
                buffers.add(new Buffer(at, b.length(), b.writable()));
                if (!b.writable()) {
                    byte[] content = new byte[b.length()];
                    random.nextBytes(content);
                    driver.write(at, content);
                    readable.writeBytes(content);
                }
            }
            Buffer[] all = buffers.toArray(Buffer[]::new);
            int head = switch (shape) {
                case DIRECT -> driver.add(all);
                case INDIRECT -> driver.addIndirect(tableAt, all);
                case MIXED -> {
                    for (int i = 0; i < prefix; i++) {
                        Buffer b = all[i];
                        driver.writeDescriptor(i, b.address(), b.length(), 1 | (b.writable() ? 2 : 0), i + 1);
                    }
                    Buffer[] tail = buffers.subList(prefix, all.length).toArray(Buffer[]::new);
                    driver.writeIndirectTable(tableAt, tail);
                    driver.writeDescriptor(prefix, tableAt, 16 * tail.length, 4, 0);
                    driver.publish(0);
                    yield 0;
                }
            };

            Chain chain = new Chain();
            assertTrue(queue.pop(chain));
            assertTrue(chain.isValid(), () -> "refused: " + chain.fault());
            assertEquals(head, chain.head());
            byte[] expectedRead = readable.toByteArray();
            assertEquals(expectedRead.length, chain.readableBytes());
            long writableBytes = bufs.stream().filter(Buf::writable).mapToLong(Buf::length).sum();
            assertEquals(writableBytes, chain.writableBytes());

            byte[] got = new byte[expectedRead.length];
            chain.reader().read(got, 0, got.length);
            assertArrayEquals(expectedRead, got);
            assertEquals(0, chain.reader().remaining());

            int toWrite = (int) (writableBytes == 0 ? 0 : Math.floorMod(contentSeed, writableBytes + 1));
            byte[] payload = new byte[toWrite];
            random.nextBytes(payload);
            chain.writer().write(payload, 0, toWrite);
            queue.addUsed(chain);

            assertEquals(new DriverQueue.Used(head, toWrite), driver.pollUsed());
            int at = 0;
            for (Buffer b : buffers) {
                if (!b.writable() || at == toWrite) {
                    continue;
                }
                int n = Math.min(b.length(), toWrite - at);
                byte[] landed = driver.read(b.address(), n);
                byte[] want = java.util.Arrays.copyOfRange(payload, at, at + n);
                assertArrayEquals(want, landed, "writable buffer at 0x" + Long.toHexString(b.address()));
                at += n;
            }
            assertEquals(toWrite, at);
            assertTrue(!queue.pop(chain));
        }
    }
}
