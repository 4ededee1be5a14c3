package dev.vhostdevice.vhostuser.engine;

import dev.vhostdevice.vhostuser.sys.EpollEvents;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.vhostuser.sys.ThreadPlacement;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.lang.foreign.Arena;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A device's worker: one platform thread in a native epoll loop over the queues' kick eventfds, the device's
 * host fds and its own wake-up eventfd. Everything that touches queues runs here: kicks, device callbacks,
 * and the control thread's changes, which it hands over with {@link #call} (the quiesce handshake: when the
 * task runs, the worker is between device callbacks and holds no chain of an old memory mapping).
 *
 * <p>With a poll budget ({@link WorkerTuning#pollNanos()}) the worker does not go back to sleep right after
 * serving a kick: it polls the available rings ({@link Events#poll}) until they have been empty for the budget,
 * looking at its epoll set every {@link #EPOLL_CHECK_NANOS} so host fds and control tasks are not held up,
 * then ends the polling ({@link Events#endPoll}, notifications back on) and sleeps in epoll.
 */
final class Worker implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Worker.class);

    static final int KIND_WAKE = 0;
    static final int KIND_KICK = 1;
    static final int KIND_HOST = 2;
    /** The session's back-end channel socket (acks to back-end requests). */
    static final int KIND_BACKEND = 3;
    /** How long a control task may wait for the worker to take it up (a device callback to return). */
    static final long CALL_TIMEOUT_MILLIS = 10_000;
    /** While polling, how often the worker looks for other events (one epoll_wait with timeout 0). */
    static final long EPOLL_CHECK_NANOS = 10_000;

    /** What the worker dispatches to. */
    interface Events {
        /** Queue {@code queueIndex}'s kick fd is ready ({@code readyEvents}: the EPOLL* bits). */
        void kick(int queueIndex, int readyEvents);

        void hostFd(int token, int events);

        /** The back-end channel socket is readable or hung up (a receive tells which). */
        void backendChannel();
        /** Polling: serves chains the driver published without a kick; true if a device popped any. */
        default boolean poll() {
            return false;
        }

        /** Polling ends: notifications back on, and whatever arrived meanwhile served. */
        default void endPoll() {
        }
    }

    private final Linux linux;
    private final String name;
    private final Events events;
    private final int epollFd;
    private final int wakeFd;
    private final ConcurrentLinkedQueue<FutureTask<?>> tasks = new ConcurrentLinkedQueue<>();
    private final Thread thread;
    private final long callTimeoutMillis;
    private final WorkerTuning tuning;
    private volatile boolean running = true;
    /** A kick was served since the worker last polled: worth polling for the next request. */
    private boolean kicked;

    Worker(Linux linux, String name, Events events) throws ErrnoException {
        this(linux, name, events, CALL_TIMEOUT_MILLIS, WorkerTuning.SLEEPING);
    }

    /** With another {@link #call} timeout (tests). */
    Worker(Linux linux, String name, Events events, long callTimeoutMillis) throws ErrnoException {
        this(linux, name, events, callTimeoutMillis, WorkerTuning.SLEEPING);
    }

    /** Polling and placed as {@code tuning} says. */
    Worker(Linux linux, String name, Events events, WorkerTuning tuning) throws ErrnoException {
        this(linux, name, events, CALL_TIMEOUT_MILLIS, tuning);
    }

    private Worker(Linux linux, String name, Events events, long callTimeoutMillis, WorkerTuning tuning)
            throws ErrnoException {
        this.callTimeoutMillis = callTimeoutMillis;
        this.linux = linux;
        this.name = name;
        this.events = events;
        this.tuning = tuning;
        this.epollFd = linux.epollCreate();
        int wake;
        try {
            wake = linux.eventfd();
            linux.epollAdd(epollFd, wake, Linux.EPOLLIN, token(KIND_WAKE, 0));
        } catch (ErrnoException e) {
            linux.close(epollFd);
            throw e;
        }
        this.wakeFd = wake;
        this.thread = Thread.ofPlatform().name(name).daemon(true).unstarted(this::loop);
    }

    static long token(int kind, int value) {
        return ((long) kind << 32) | (value & 0xFFFF_FFFFL);
    }

    void start() {
        thread.start();
    }

    /** Whether the worker polls after a kick (kicks are then served with {@link Events#poll} semantics). */
    boolean polls() {
        return tuning.pollNanos() > 0;
    }

    boolean isWorkerThread() {
        return Thread.currentThread() == thread;
    }

    void watch(int fd, int kind, int value, int eventMask) throws ErrnoException {
        linux.epollAdd(epollFd, fd, eventMask, token(kind, value));
    }

    void rewatch(int fd, int kind, int value, int eventMask) throws ErrnoException {
        linux.epollModify(epollFd, fd, eventMask, token(kind, value));
    }

    void unwatch(int fd) {
        try {
            linux.epollDelete(epollFd, fd);
        } catch (ErrnoException e) {
            LOG.debug("{}: epoll_ctl DEL of fd {}: {}", name, fd, e.getMessage());
        }
    }

    /**
     * Runs {@code task} on the worker between device callbacks and returns its result. On the worker itself it
     * runs directly. A task that has not started within {@link #CALL_TIMEOUT_MILLIS} (the worker is stuck in a
     * device callback) is withdrawn and the call fails; one that has started is the request's outcome, so the
     * call waits for it to complete, however long that takes, rather than report a failure for a change that is
     * then applied anyway.
     */
    <T> T call(Callable<T> task) throws Exception {
        if (isWorkerThread() || !thread.isAlive()) {
            return task.call();
        }
        ControlTask<T> future = new ControlTask<>(task);
        tasks.add(future);
        linux.writeEventfd(wakeFd, 1);
        try {
            return result(future);
        } catch (TimeoutException e) {
            if (future.withdraw()) {
                throw new TimeoutException(name + ": worker busy for more than " + callTimeoutMillis
                        + " ms; the request was not applied");
            }
        }
        while (true) {
            try {
                return result(future);
            } catch (TimeoutException stillRunning) {
                LOG.warn("{}: a control task has been running on the worker for more than {} ms; waiting for it",
                        name, callTimeoutMillis);
            }
        }
    }

    private <T> T result(FutureTask<T> future) throws Exception {
        try {
            return future.get(callTimeoutMillis, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof Exception cause) {
                throw cause;
            }
            throw e;
        }
    }

    /**
     * A control task that either runs or is withdrawn, never both. (FutureTask alone cannot tell: its cancel
     * succeeds while the task runs, and the task's outcome is then dropped although it was applied.)
     */
    private static final class ControlTask<T> extends FutureTask<T> {
        private final AtomicBoolean claimed = new AtomicBoolean();

        ControlTask(Callable<T> task) {
            super(task);
        }

        @Override
        public void run() {
            if (claimed.compareAndSet(false, true)) {
                super.run();
            }
        }

        /** Withdraws the task if it has not started; false if it has (its outcome is then the call's). */
        boolean withdraw() {
            return claimed.compareAndSet(false, true) && cancel(false);
        }
    }

    private void loop() {
        place();
        try (Arena arena = Arena.ofConfined()) {
            EpollEvents ready = new EpollEvents(64, arena);
            while (running) {
                if (!waitAndDispatch(ready, -1)) {
                    break;
                }
                if (kicked && running && polls()) {
                    pollRings(ready);
                }
            }
        } finally {
            // Whoever still waits gets the task run here rather than a hang.
            runTasks();
        }
    }

    /** One epoll_wait and the dispatch of what it returned; false if epoll failed (the worker stops). */
    private boolean waitAndDispatch(EpollEvents ready, int timeoutMillis) {
        int n;
        try {
            n = linux.epollWait(epollFd, ready, timeoutMillis);
        } catch (ErrnoException e) {
            LOG.error("{}: epoll_wait failed, worker stops: {}", name, e.getMessage());
            running = false;
            return false;
        }
        for (int i = 0; i < n && running; i++) {
            dispatch(ready.data(i), ready.events(i));
        }
        return true;
    }

    /** Polls until the rings have been empty for the budget, then ends polling; yields between looks, never sleeps. */
    private void pollRings(EpollEvents ready) {
        kicked = false;
        long budget = tuning.pollNanos();
        long lastWork = System.nanoTime();
        long nextCheck = lastWork + EPOLL_CHECK_NANOS;
        try {
            while (running) {
                boolean served = events.poll();
                long now = System.nanoTime();
                if (served) {
                    lastWork = now;
                } else if (now - lastWork >= budget) {
                    break;
                }
                if (now - nextCheck >= 0) {
                    nextCheck = now + EPOLL_CHECK_NANOS;
                    if (!waitAndDispatch(ready, 0)) {
                        break;
                    }
                }
                // sched_yield: on a machine with fewer CPUs than runnable threads (the guest's vCPU and the
                // front-end's event loop among them) the poller gives way to whoever is waiting for a CPU.
                Thread.yield();
            }
        } catch (RuntimeException | AssertionError e) {
            LOG.error("{}: error while polling: {}", name, e.toString(), e);
        } finally {
            kicked = false;
            try {
                events.endPoll();
            } catch (RuntimeException | AssertionError e) {
                LOG.error("{}: error ending polling: {}", name, e.toString(), e);
            }
        }
    }

    /** Applies the CPU placement from the worker thread itself. */
    private void place() {
        int[] cpus = tuning.cpus();
        if (cpus.length == 0) {
            return;
        }
        try {
            ThreadPlacement.pinCurrentThread(cpus);
        } catch (ErrnoException | RuntimeException e) {
            LOG.error("{}: cannot place the worker on CPUs {}: {}", name, java.util.Arrays.toString(cpus),
                    e.getMessage());
        }
    }

    private void dispatch(long data, int readyEvents) {
        int kind = (int) (data >>> 32);
        int value = (int) data;
        try {
            switch (kind) {
                case KIND_WAKE -> {
                    linux.readEventfd(wakeFd);
                    runTasks();
                }
                case KIND_KICK -> {
                    kicked = true;
                    events.kick(value, readyEvents);
                }
                case KIND_HOST -> events.hostFd(value, readyEvents);
                case KIND_BACKEND -> events.backendChannel();
                default -> LOG.error("{}: unknown epoll token 0x{}", name, Long.toHexString(data));
            }
        } catch (Exception | AssertionError e) {
            // One failing event never ends the worker.
            LOG.error("{}: error handling {} event {}: {}", name, kind == KIND_KICK ? "kick of queue" : "event",
                    value, e.toString(), e);
        }
    }

    private void runTasks() {
        FutureTask<?> task;
        while ((task = tasks.poll()) != null) {
            task.run();
        }
    }

    /** Stops the loop and joins the thread; closes the worker's own fds (not the watched ones). */
    @Override
    public void close() {
        running = false;
        if (thread.isAlive()) {
            try {
                linux.writeEventfd(wakeFd, 1);
            } catch (ErrnoException e) {
                LOG.error("{}: cannot wake worker: {}", name, e.getMessage());
            }
            try {
                thread.join(CALL_TIMEOUT_MILLIS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            if (thread.isAlive()) {
                LOG.error("{}: worker did not stop within {} ms (device callback stuck)", name, CALL_TIMEOUT_MILLIS);
                return; // leave its fds: closing them under a running thread could hit reused numbers
            }
        }
        linux.close(wakeFd);
        linux.close(epollFd);
    }
}
