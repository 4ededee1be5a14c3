package dev.vhostdevice.vhostuser.engine;

import static dev.vhostdevice.vhostuser.engine.FrontendSteps.F30;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.VERSION_1;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.await;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.awaitIdle;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.memoryTable;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.negotiate;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.startRing;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.SET_VRING_ENABLE;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.vringState;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.device.DeviceContext;
import dev.vhostdevice.vhostuser.device.DeviceQueue;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import dev.vhostdevice.vhostuser.server.VhostUserServer;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.vhostuser.testkit.EchoDevice;
import dev.vhostdevice.vhostuser.testkit.GuestFixture;
import dev.vhostdevice.vhostuser.testkit.MiniFrontend;
import dev.vhostdevice.virtqueue.Chain;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Host-fd watching on the worker ({@link DeviceContext#watchFd}, {@link DeviceContext#changeWatch},
 * {@link DeviceContext#unwatchFd}) over a real session: a real socket and front-end, real eventfds and socket
 * pairs, the worker's own epoll loop. What gpio's lines and vsock's sockets rely on: hundreds of fds at once,
 * each readiness delivered on the worker with the fd's current token, interest changed in place (nothing while
 * off, pending readiness delivered as soon as it is on again, EPOLLOUT only while wanted), and removal.
 *
 * <p>The device runs the test's watch calls on its worker: each is queued, then a chain is kicked, and the
 * device runs the queued calls in its queue handler before completing the chain (status byte 0, or 1 if a
 * call threw).
 */
class HostFdWatchTest {
    private static final int MANY = 300;

    /** One readiness as the device saw it. */
    record Ready(int token, int events, String thread) {
    }

    /** Runs queued watch calls on its worker; records and consumes host-fd readiness. */
    static final class WatchingDevice extends EchoDevice {
        final ConcurrentLinkedQueue<Consumer<WatchingDevice>> calls = new ConcurrentLinkedQueue<>();
        final LinkedBlockingQueue<Ready> ready = new LinkedBlockingQueue<>();
        final Linux linux = Linux.system();
        /** Token → fd, as the calls set it: used to consume readiness (worker only). */
        final Map<Integer, Integer> fdOfToken = new HashMap<>();
        /** Tokens whose EPOLLOUT is turned off once delivered, as a socket with nothing more to send. */
        final Set<Integer> oneShotOut = new HashSet<>();
        private final Chain chain = new Chain();
        volatile String workerThread;
        volatile boolean closed;
        DeviceContext context;

        @Override
        public void attach(DeviceContext deviceContext) {
            context = deviceContext;
        }

        @Override
        public void handleQueue(DeviceQueue queue) {
            workerThread = Thread.currentThread().getName();
            while (queue.pop(chain)) {
                int status = 0;
                Consumer<WatchingDevice> call;
                while ((call = calls.poll()) != null) {
                    try {
                        call.accept(this);
                    } catch (RuntimeException e) {
                        status = 1;
                    }
                }
                chain.writer().writeByte(status);
                queue.complete(chain);
            }
        }

        void watch(int fd, int events, int token) {
            context.watchFd(fd, events, token);
            fdOfToken.put(token, fd);
        }

        void change(int fd, int events, int oldToken, int token) {
            context.changeWatch(fd, events, token);
            fdOfToken.remove(oldToken);
            fdOfToken.put(token, fd);
        }

        @Override
        public void handleHostFd(int token, int readyEvents) {
            ready.add(new Ready(token, readyEvents, Thread.currentThread().getName()));
            Integer fd = fdOfToken.get(token);
            if (fd == null) {
                return;
            }
            try {
                if ((readyEvents & Linux.EPOLLIN) != 0) {
                    linux.readEventfd(fd); // level-triggered: consume, or it stays ready
                }
                if ((readyEvents & Linux.EPOLLOUT) != 0 && oneShotOut.contains(token)) {
                    context.changeWatch(fd, 0, token);
                }
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }

        @Override
        public void close() {
            closed = true;
        }
    }

    @TempDir
    Path dir;
    final Linux linux = Linux.system();
    final AtomicReference<WatchingDevice> device = new AtomicReference<>();
    final List<Integer> fds = new ArrayList<>();
    VhostUserServer server;
    GuestFixture guest;
    MiniFrontend fe;
    int used;

    @BeforeEach
    void start() throws Exception {
        server = VhostUserServer.start(dir.resolve("vu.sock"), () -> {
            WatchingDevice d = new WatchingDevice();
            device.set(d);
            return d;
        });
        guest = new GuestFixture();
        connect();
    }

    /** A front-end connects and starts ring 0 (a new session, with a new device and worker). */
    private void connect() throws Exception {
        fe = new MiniFrontend(server.socketPath());
        negotiate(fe, ProtocolFeature.maskOf(ProtocolFeature.MQ), VERSION_1 | F30);
        memoryTable(fe, guest);
        startRing(fe, guest, 0, guest.ring, 0, guest.kick, guest.call);
        fe.send(SET_VRING_ENABLE, vringState(0, 1));
    }

    @AfterEach
    void stop() {
        fe.close();
        server.close();
        guest.close();
        for (int fd : fds) {
            linux.close(fd);
        }
    }

    private int eventfd() throws Exception {
        int fd = linux.eventfd();
        fds.add(fd);
        return fd;
    }

    /** Runs {@code call} on the worker and returns the status the device reports for it (0: it did not throw). */
    private int onWorker(Consumer<WatchingDevice> call) throws Exception {
        device.get().calls.add(call);
        int head = guest.ring.add(new byte[] {'w'}, 1);
        guest.kick();
        used++;
        guest.awaitUsed(used);
        assertEquals(used, guest.ring.usedIdx(), "the worker ran the calls");
        return guest.ring.written(head, 1)[0];
    }

    private Ready next() throws InterruptedException {
        return device.get().ready.poll(5, TimeUnit.SECONDS);
    }

    /** Nothing arrives within 200 ms. */
    private void assertQuiet(String why) throws InterruptedException {
        assertNull(device.get().ready.poll(200, TimeUnit.MILLISECONDS), why);
    }

    @Test
    void hundredsOfWatchedFdsEachDeliverTheirOwnTokenOnTheWorker() throws Exception {
        int[] watched = new int[MANY];
        for (int i = 0; i < MANY; i++) {
            watched[i] = eventfd();
        }
        assertEquals(0, onWorker(d -> {
            for (int i = 0; i < MANY; i++) {
                d.watch(watched[i], Linux.EPOLLIN, 1000 + i);
            }
        }));
        // Every fd at once, then each alone in reverse order: each readiness is delivered once, with its token.
        for (int i = 0; i < MANY; i++) {
            linux.writeEventfd(watched[i], 1);
        }
        Set<Integer> seen = new HashSet<>();
        for (int i = 0; i < MANY; i++) {
            Ready r = next();
            assertEquals(Linux.EPOLLIN, r.events() & Linux.EPOLLIN);
            assertEquals(device.get().workerThread, r.thread(), "delivered on the device's worker");
            assertTrue(seen.add(r.token()), "token " + r.token() + " twice");
        }
        assertEquals(MANY, seen.size());
        assertTrue(seen.stream().allMatch(t -> t >= 1000 && t < 1000 + MANY));
        assertQuiet("each readiness was consumed: nothing is delivered twice");
        for (int i = MANY - 1; i >= 0; i -= 37) {
            linux.writeEventfd(watched[i], 1);
            assertEquals(1000 + i, next().token());
        }
        assertQuiet("only what was signalled");
    }

    @Test
    void changingTheInterestToNothingSilencesAnFdAndBackOnDeliversWhatIsPendingWithTheNewToken() throws Exception {
        int a = eventfd();
        int b = eventfd();
        assertEquals(0, onWorker(d -> {
            d.watch(a, Linux.EPOLLIN, 1);
            d.watch(b, Linux.EPOLLIN, 2);
        }));
        assertEquals(0, onWorker(d -> d.change(a, 0, 1, 1)));
        linux.writeEventfd(a, 1);
        assertQuiet("events 0: the fd does not wake the worker");
        linux.writeEventfd(b, 1);
        assertEquals(2, next().token(), "the other fd is unaffected");
        assertEquals(0, onWorker(d -> d.change(a, Linux.EPOLLIN, 1, 11)));
        assertEquals(11, next().token(), "level-triggered: the readiness pending while off comes now, new token");
        assertQuiet("once");
        linux.writeEventfd(a, 1);
        assertEquals(11, next().token());
    }

    @Test
    void epollOutIsDeliveredOnlyWhileWantedAsASocketWithBytesQueuedWouldAskForIt() throws Exception {
        int[] pair = linux.socketPair();
        fds.add(pair[0]);
        fds.add(pair[1]);
        linux.setNonBlocking(pair[0]);
        assertEquals(0, onWorker(d -> {
            d.oneShotOut.add(7);
            d.watch(pair[0], Linux.EPOLLIN, 7);
        }));
        assertQuiet("readable interest only, nothing to read");
        for (int round = 0; round < 3; round++) {
            assertEquals(0, onWorker(d -> d.change(pair[0], Linux.EPOLLIN | Linux.EPOLLOUT, 7, 7)));
            Ready r = next();
            assertEquals(7, r.token());
            assertEquals(Linux.EPOLLOUT, r.events() & Linux.EPOLLOUT, "a socket with buffer space is writable");
            assertQuiet("the device turned EPOLLOUT off on delivery: no busy loop");
        }
    }

    @Test
    void anUnwatchedFdIsSilentAndItsNumberCanBeWatchedAgainUnderANewToken() throws Exception {
        int a = eventfd();
        int b = eventfd();
        assertEquals(0, onWorker(d -> {
            d.watch(a, Linux.EPOLLIN, 1);
            d.watch(b, Linux.EPOLLIN, 2);
        }));
        assertEquals(0, onWorker(d -> d.context.unwatchFd(a)));
        linux.writeEventfd(a, 1);
        assertQuiet("unwatched");
        linux.writeEventfd(b, 1);
        assertEquals(2, next().token());

        linux.close(a);
        fds.remove(Integer.valueOf(a));
        int reused = eventfd(); // the lowest free number: usually a's
        assertEquals(0, onWorker(d -> d.watch(reused, Linux.EPOLLIN, 3)));
        linux.writeEventfd(reused, 1);
        assertEquals(3, next().token());
        assertQuiet("nothing for the old token");
    }

    @Test
    void watchingAnFdTwiceOrChangingOneNotWatchedFailsTheCallAndNotTheWorker() throws Exception {
        int a = eventfd();
        int notWatched = eventfd();
        assertEquals(0, onWorker(d -> d.watch(a, Linux.EPOLLIN, 1)));
        assertEquals(1, onWorker(d -> d.watch(a, Linux.EPOLLIN, 9)), "each fd once");
        assertEquals(1, onWorker(d -> d.change(notWatched, Linux.EPOLLIN, 2, 2)));
        assertEquals(1, onWorker(d -> d.watch(123_456, Linux.EPOLLIN, 4)), "not an fd");
        linux.writeEventfd(a, 1);
        assertEquals(1, next().token(), "the first watch stands, the worker carries on");
    }

    @Test
    void aDisconnectWithFdsWatchedClosesTheDeviceAndTheNextSessionStartsWithNone() throws Exception {
        int a = eventfd();
        assertEquals(0, onWorker(d -> d.watch(a, Linux.EPOLLIN, 1)));
        WatchingDevice first = device.get();
        fe.close();
        awaitIdle(server, 1);
        await(() -> first.closed, "the device was closed");
        linux.writeEventfd(a, 1);
        assertNull(first.ready.poll(200, TimeUnit.MILLISECONDS), "the old worker's epoll set is gone");

        guest.close();
        guest = new GuestFixture();
        used = 0;
        connect();
        assertEquals(0, onWorker(d -> d.watch(a, Linux.EPOLLIN, 5)), "a is not in the new worker's set");
        assertEquals(5, next().token(), "the readiness still pending on a arrives on the new worker");
    }
}
