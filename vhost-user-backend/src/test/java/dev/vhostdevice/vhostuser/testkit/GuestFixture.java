package dev.vhostdevice.vhostuser.testkit;

import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.memory.MemoryMapper;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** A guest's side for engine tests: a memfd as guest RAM (GPA 0), the driver's view of a ring, kick and call eventfds. */
public final class GuestFixture implements AutoCloseable {
    public static final long RAM_SIZE = 1 << 20;
    public static final int RING_SIZE = 16;

    public final Linux linux = Linux.system();
    public final Arena arena = Arena.ofShared();
    public final int memfd;
    public final MemorySegment ram;
    public final int kick;
    public final int call;
    public final DriverRing ring;

    public GuestFixture() throws Exception {
        memfd = MemoryMapper.system().createMemoryFile("test-guest-ram", RAM_SIZE);
        ram = MemoryMapper.system().map(memfd, 0, RAM_SIZE, arena);
        kick = linux.eventfd();
        call = linux.eventfd();
        ring = new DriverRing(ram, RING_SIZE, 0x0, 0x1000, 0x2000, 0x4000);
    }

    public long uva(long gpa) {
        return MiniFrontend.UVA_BASE + gpa;
    }

    public void kick() throws Exception {
        linux.writeEventfd(kick, 1);
    }

    /** Reads and clears the call eventfd: how many notifications arrived. */
    public long calls() throws Exception {
        return linux.readEventfd(call);
    }

    public void awaitUsed(int expected) throws InterruptedException {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (ring.usedIdx() != expected && System.nanoTime() < deadline) {
            Thread.sleep(2);
        }
    }

    @Override
    public void close() {
        linux.close(memfd);
        linux.close(kick);
        linux.close(call);
        arena.close();
    }
}
