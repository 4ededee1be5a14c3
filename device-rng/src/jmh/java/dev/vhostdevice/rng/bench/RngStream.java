package dev.vhostdevice.rng.bench;

import dev.vhostdevice.vhostuser.frontend.FrontendQueue;
import dev.vhostdevice.vhostuser.frontend.GuestRam;
import dev.vhostdevice.vhostuser.frontend.QemuDevice;
import dev.vhostdevice.vhostuser.frontend.TestFrontend;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import dev.vhostdevice.virtqueue.testing.DriverQueue;
import java.nio.file.Path;

/**
 * A front-end streaming virtio-rng requests over the real socket, as a guest driver that keeps the ring full
 * would: {@code inFlight} single-descriptor requests of {@code requestBytes}, each used head re-posted at once,
 * a kick when the device asks for one (EVENT_IDX's avail_event), and a sleep on the call eventfd (the guest's
 * interrupt) when nothing is used, with used_event at the next completion.
 */
final class RngStream implements AutoCloseable {
    private static final Linux LINUX = Linux.system();

    private final TestFrontend frontend;
    private final FrontendQueue queue;
    private final DriverQueue driver;
    private final int[] heads;
    private final int requestBytes;
    private boolean started;
    /** Used entries seen so far (mod 2^16): the used_event to ask for before sleeping. */
    private int seen;
    /** Kicks sent and sleeps on the call eventfd, since the start: notifications per request. */
    long kicks;
    long sleeps;

    private RngStream(TestFrontend frontend, FrontendQueue queue, int[] heads, int requestBytes) {
        this.frontend = frontend;
        this.queue = queue;
        this.driver = queue.driver();
        this.heads = heads;
        this.requestBytes = requestBytes;
    }

    /** Connects and negotiates like QEMU 10's vhost-user-rng with a ring of {@code queueSize}. */
    static RngStream connect(Path socket, int queueSize, int inFlight, int requestBytes) throws ErrnoException {
        TestFrontend frontend = TestFrontend.connect(socket);
        GuestRam ram = frontend.ram();
        frontend.negotiateLikeQemu10(QemuDevice.rng().withQueueSize(queueSize));
        FrontendQueue queue = frontend.queue(0);
        queue.driver().setEventIdx((frontend.ackedFeatures() & TestFrontend.F_EVENT_IDX) != 0);
        int[] heads = new int[inFlight];
        for (int i = 0; i < inFlight; i++) {
            long buffer = ram.allocate(requestBytes, 4096);
            heads[i] = queue.driver().prepare(DriverQueue.Buffer.writable(buffer, requestBytes));
        }
        queue.takeCalls();
        return new RngStream(frontend, queue, heads, requestBytes);
    }

    /** Streams for {@code nanos}; returns the bytes the device delivered in that time. */
    long run(long nanos) throws ErrnoException {
        if (!started) {
            started = true;
            for (int head : heads) {
                driver.publish(head);
            }
            queue.kick();
        }
        long bytes = 0;
        long end = System.nanoTime() + nanos;
        while (System.nanoTime() - end < 0) {
            int got = 0;
            DriverQueue.Used used;
            while ((used = driver.pollUsed()) != null) {
                if (used.length() != requestBytes) {
                    throw new IllegalStateException("head " + used.head() + " got " + used.length() + " bytes, asked "
                            + requestBytes);
                }
                bytes += used.length();
                driver.publish(used.head());
                got++;
            }
            if (got > 0) {
                seen = (seen + got) & 0xFFFF;
                if (driver.kickPrepare()) {
                    queue.kick();
                    kicks++;
                }
                continue;
            }
            // Nothing used: ask for an interrupt at the next completion, re-check (the store before the load that
            // decides to sleep), then sleep on the call eventfd.
            driver.setUsedEvent(seen);
            java.lang.invoke.VarHandle.fullFence();
            if (driver.usedIdx() != seen) {
                continue;
            }
            sleeps++;
            if (LINUX.poll(queue.callFd(), Linux.POLLIN, 100)) {
                LINUX.readEventfd(queue.callFd());
            }
        }
        return bytes;
    }

    @Override
    public void close() {
        frontend.close();
    }
}
