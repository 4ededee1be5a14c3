package dev.vhostdevice.vhostuser.frontend;

import dev.vhostdevice.vhostuser.sys.EpollEvents;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.lang.foreign.Arena;
import java.time.Duration;

/** Waiting on fds with a deadline (epoll), so no test ever blocks forever on a socket or an eventfd. */
public final class Fds {
    private static final Linux LINUX = Linux.system();

    private Fds() {
    }

    /** Whether {@code fd} became readable (or hung up) within {@code timeout}. */
    public static boolean awaitReadable(int fd, Duration timeout) throws ErrnoException {
        int epoll = LINUX.epollCreate();
        try (Arena arena = Arena.ofConfined()) {
            LINUX.epollAdd(epoll, fd, Linux.EPOLLIN, 0);
            EpollEvents events = new EpollEvents(1, arena);
            long deadline = System.nanoTime() + timeout.toNanos();
            while (true) {
                long left = deadline - System.nanoTime();
                int millis = (int) Math.max(0, Math.min(Integer.MAX_VALUE, (left + 999_999) / 1_000_000));
                if (LINUX.epollWait(epoll, events, millis) > 0) {
                    return true;
                }
                if (System.nanoTime() - deadline >= 0) {
                    return false;
                }
            }
        } finally {
            LINUX.close(epoll);
        }
    }

    /** Waits until the eventfd is signalled, then reads and clears it; the count, or 0 on timeout. */
    public static long awaitEventfd(int eventfd, Duration timeout) throws ErrnoException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            long count = LINUX.readEventfd(eventfd);
            if (count > 0) {
                return count;
            }
            long left = deadline - System.nanoTime();
            if (left <= 0 || !awaitReadable(eventfd, Duration.ofNanos(left))) {
                return LINUX.readEventfd(eventfd);
            }
        }
    }
}
