package dev.vhostdevice.virtqueue;

import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.testing.DriverQueue;

/** A driver and a device sharing one queue in 1 MiB of guest memory at GPA 0, rings at 0x1000. */
final class QueueFixture implements AutoCloseable {
    static final long MEMORY_SIZE = 1 << 20;
    final GuestMemory memory;
    final DriverQueue driver;
    final SplitQueue queue;
    final Chain chain = new Chain();

    QueueFixture(int size) throws QueueConfigException {
        this(GuestMemory.allocate(0, MEMORY_SIZE), size);
    }

    QueueFixture(GuestMemory memory, int size) throws QueueConfigException {
        this.memory = memory;
        driver = DriverQueue.layout(memory, size, 0x1000);
        queue = new SplitQueue("q0", size);
        driver.configure(queue);
        queue.setIndirectAllowed(true);
        queue.activate(memory);
    }

    /** Pops one chain, failing the test if there is none. */
    Chain popOne() {
        if (!queue.pop(chain)) {
            throw new AssertionError("expected a chain, queue " + queue);
        }
        return chain;
    }

    @Override
    public void close() {
        memory.close();
    }
}
