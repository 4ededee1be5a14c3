package dev.vhostdevice.vhostuser.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.sys.Linux;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link Worker#call} past its timeout: a task that never started is withdrawn and the call fails; a task that
 * started is the request's outcome and the call returns it, however long it ran.
 */
class WorkerCallTest {
    private static final long TIMEOUT_MILLIS = 1_000;
    private Worker worker;

    @BeforeEach
    void start() throws Exception {
        worker = new Worker(Linux.system(), "test-worker", new Worker.Events() {
            @Override
            public void kick(int queueIndex, int readyEvents) {
            }

            @Override
            public void hostFd(int token, int events) {
            }

            @Override
            public void backendChannel() {
            }
        }, TIMEOUT_MILLIS);
        worker.start();
    }

    @AfterEach
    void stop() {
        worker.close();
    }

    @Test
    void aTaskThatStartedAndOutlivesTheTimeoutIsWaitedForAndItsResultReturned() throws Exception {
        int result = startedThenCalled(() -> {
            Thread.sleep(2 * TIMEOUT_MILLIS);
            return 42;
        });
        assertEquals(42, result, "reported as done, not as failed");
    }

    @Test
    void aTaskThatStartedAndFailsLateReportsItsOwnFailure() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> startedThenCalled(() -> {
            Thread.sleep(2 * TIMEOUT_MILLIS);
            throw new IllegalStateException("the task's own failure");
        }));
        assertEquals("the task's own failure", e.getMessage());
    }

    /**
     * Calls {@code task} so that it starts well inside the timeout on a loaded machine too: it is queued behind a
     * task that holds the worker and is released 20 ms later; the worker runs queued tasks back to back.
     */
    private <T> T startedThenCalled(java.util.concurrent.Callable<T> task) throws Exception {
        CountDownLatch holding = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        Thread holder = Thread.ofPlatform().start(() -> {
            try {
                worker.call(() -> {
                    holding.countDown();
                    release.await();
                    return null;
                });
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        assertTrue(holding.await(30, TimeUnit.SECONDS), "the worker runs the holding task");
        Thread.ofPlatform().start(() -> {
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            release.countDown();
        });
        try {
            return worker.call(task);
        } finally {
            holder.join(10_000);
        }
    }

    @Test
    void aTaskStillQueuedAtTheTimeoutIsWithdrawnAndNeverRuns() throws Exception {
        CountDownLatch blocking = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        Thread blocker = Thread.ofPlatform().start(() -> {
            try {
                worker.call(() -> {
                    blocking.countDown();
                    release.await(); // a device callback stuck on the worker
                    return null;
                });
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        assertTrue(blocking.await(30, TimeUnit.SECONDS));
        AtomicBoolean ran = new AtomicBoolean();

        TimeoutException e = assertThrows(TimeoutException.class, () -> worker.call(() -> {
            ran.set(true);
            return null;
        }));

        assertTrue(e.getMessage().contains("not applied"), e.getMessage());
        release.countDown();
        blocker.join(5_000);
        assertEquals(7, (int) worker.call(() -> 7), "the worker runs the next task");
        assertFalse(ran.get(), "the withdrawn task never ran");
    }
}
