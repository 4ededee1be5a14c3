package dev.vhostdevice.vhostuser.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.frontend.FrontendQueue;
import dev.vhostdevice.vhostuser.frontend.TestFrontend;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import dev.vhostdevice.vhostuser.server.ServerOptions;
import dev.vhostdevice.vhostuser.server.VhostUserServer;
import dev.vhostdevice.vhostuser.testkit.EchoDevice;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A worker with a poll budget, over a real socket: it serves what the driver publishes without kicking while it
 * polls, keeps answering the front-end, and sleeps (asking for kicks again) once the rings stay empty.
 */
class PollingWorkerTest {
    static final Duration WAIT = Duration.ofSeconds(5);

    @TempDir
    Path dir;
    VhostUserServer server;
    TestFrontend fe;

    private FrontendQueue start(long pollNanos, boolean eventIdx) throws Exception {
        server = VhostUserServer.start(dir.resolve("polling.sock"), EchoDevice::new,
                ServerOptions.DEFAULTS.withWorkers(new WorkerTuning(pollNanos, new int[0])));
        fe = TestFrontend.connect(server.socketPath()).timeout(WAIT);
        fe.negotiate(true, ProtocolFeature.REPLY_ACK.mask(), 1);
        if (!eventIdx) {
            fe.setFeatures(fe.ackedFeatures() & ~TestFrontend.F_EVENT_IDX);
        }
        FrontendQueue q = fe.startQueue(0, 16, 0);
        fe.setVringEnable(0, true);
        q.driver().setEventIdx(eventIdx);
        return q;
    }

    @AfterEach
    void stop() {
        if (fe != null) {
            fe.close();
        }
        if (server != null) {
            server.close();
        }
    }

    private static void kickedRoundTrip(FrontendQueue q, String text) throws Exception {
        q.post(text, 64);
        assertTrue(q.driver().kickPrepare(), "a sleeping worker asks for a kick");
        q.kick();
        assertEquals(new StringBuilder(text).reverse().toString(), q.awaitUsed(WAIT).text());
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void whilePollingRequestsAreServedWithoutTheDriverBeingAskedToKick(boolean eventIdx) throws Exception {
        FrontendQueue q = start(WorkerTuning.MAX_POLL_NANOS, eventIdx);
        kickedRoundTrip(q, "first");
        for (String text : new String[] {"second", "third"}) {
            q.post(text, 64);
            assertFalse(q.driver().kickPrepare(), "no kick asked for while the worker polls");
            assertEquals(new StringBuilder(text).reverse().toString(), q.awaitUsed(WAIT).text(), "served by polling");
        }
        assertTrue(q.awaitCall(WAIT) > 0, "the driver is still interrupted for completions");
    }

    @Test
    void aPollingWorkerKeepsAnsweringTheFrontEnd() throws Exception {
        FrontendQueue q = start(WorkerTuning.MAX_POLL_NANOS, true);
        kickedRoundTrip(q, "start polling");
        fe.setVringCall(0, q.callFd()); // runs on the worker: acked only if the polling worker looks at its tasks
        q.post("still polling", 64);
        assertFalse(q.driver().kickPrepare(), "the worker answered while it kept polling");
        assertEquals("gnillop llits", q.awaitUsed(WAIT).text());
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void afterItsBudgetAnIdleWorkerAsksForKicksAgainAndBurnsNoCpu(boolean eventIdx) throws Exception {
        FrontendQueue q = start(5_000_000, eventIdx);
        kickedRoundTrip(q, "once");
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!kicksWanted(q, eventIdx)) {
            assertTrue(System.nanoTime() < deadline, "the worker never asked for kicks again");
            Thread.sleep(5);
        }
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        long worker = workerThreadId();
        long cpuBefore = threads.getThreadCpuTime(worker);
        Thread.sleep(1000);
        long cpuMillis = (threads.getThreadCpuTime(worker) - cpuBefore) / 1_000_000;
        assertTrue(cpuMillis < 50, "an idle worker sleeps: " + cpuMillis + " ms of CPU in 1 s");
        kickedRoundTrip(q, "twice");
    }

    /** Whether the worker asks the driver to kick for its next chain (avail_event caught up, or no NO_NOTIFY). */
    private static boolean kicksWanted(FrontendQueue q, boolean eventIdx) {
        return eventIdx ? q.driver().availEvent() == q.driver().availIdx() : (q.driver().usedFlags() & 1) == 0;
    }

    private static long workerThreadId() {
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.getName().startsWith("polling.sock#") && t.getName().endsWith("-worker")) {
                return t.threadId();
            }
        }
        throw new AssertionError("no worker thread");
    }
}
