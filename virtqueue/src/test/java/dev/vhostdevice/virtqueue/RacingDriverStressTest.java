package dev.vhostdevice.virtqueue;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.virtqueue.testing.DriverQueue;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A hostile driver thread rewrites the descriptor table, the available ring and its index at random while the
 * device pops, reads, writes and completes. Results may be garbage; safety may not break: nothing but typed
 * errors, no access outside guest memory, every walk bounded. Bounded in time: it stops by itself.
 */
class RacingDriverStressTest {
    private static final int SIZE = 64;
    private static final long RUN_NANOS = TimeUnit.MILLISECONDS.toNanos(1500);

    @Test
    @Timeout(30)
    void aDriverRewritingTheRingsUnderTheDeviceCannotBreakIt() throws Exception {
        try (QueueFixture f = new QueueFixture(SIZE)) {
            DriverQueue driver = f.driver;
            AtomicBoolean stop = new AtomicBoolean();
            // Where the device is, so the vandal mostly keeps the available index plausible (runaways break the
            // queue at once, which would leave nothing else to race against).
            AtomicInteger devicePosition = new AtomicInteger();
            Thread vandal = Thread.ofPlatform().start(() -> {
                SplittableRandom random = new SplittableRandom(42);
                while (!stop.get()) {
                    switch (random.nextInt(4)) {
                        case 0 -> driver.writeDescriptor(random.nextInt(SIZE), randomAddress(random),
                                random.nextInt(), random.nextInt(8), random.nextInt(SIZE + 2));
                        case 1 -> driver.setAvailSlot(random.nextInt(SIZE), random.nextInt(SIZE + SIZE / 16));
                        case 2 -> driver.setAvailIdx(devicePosition.get() + random.nextInt(SIZE + 2));
                        default -> driver.writeDescriptorAt(0x8000 + random.nextInt(0x100),
                                randomAddress(random), random.nextInt(0x200), random.nextInt(8), random.nextInt(16));
                    }
                }
            });
            long pops = 0;
            long resets = 0;
            long deadline = System.nanoTime() + RUN_NANOS;
            Chain chain = f.chain;
            byte[] scratch = new byte[64];
            try {
                while (System.nanoTime() < deadline) {
                    if (f.queue.pop(chain)) {
                        pops++;
                        devicePosition.set(f.queue.nextAvail());
                        if (chain.isValid()) {
                            int n = (int) Math.min(scratch.length, chain.reader().remaining());
                            chain.reader().read(scratch, 0, n);
                            chain.writer().fill((byte) 0xEE, Math.min(64, chain.writer().remaining()));
                        }
                        f.queue.addUsed(chain);
                        f.queue.needsNotification();
                    } else if (f.queue.isBroken()) {
                        resets++;
                        QueueState state = f.queue.state();
                        f.queue.reset();
                        driver.configure(f.queue);
                        f.queue.setIndirectAllowed(true);
                        f.queue.restore(new QueueState(state.nextAvail(), state.nextUsed(), false));
                        f.queue.activate(f.memory);
                    } else {
                        f.queue.enableNotification();
                    }
                }
            } finally {
                stop.set(true);
                vandal.join();
            }
            assertTrue(pops > 0, "the device served chains (" + pops + " pops, " + resets + " resets)");
        }
    }

    /** Mostly inside the 1 MiB of guest memory (away from the rings), sometimes anywhere in 2^64. */
    private static long randomAddress(SplittableRandom random) {
        return random.nextInt(4) == 0 ? random.nextLong() : 0x10000 + random.nextInt(0xF0000);
    }
}
