package dev.vhostdevice.vhostuser.conformance;

import static dev.vhostdevice.vhostuser.frontend.TestFrontend.F_EVENT_IDX;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.frontend.FrontendQueue;
import dev.vhostdevice.vhostuser.frontend.Msg;
import dev.vhostdevice.vhostuser.frontend.RingLayout;
import dev.vhostdevice.vhostuser.frontend.TestFrontend;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import dev.vhostdevice.virtqueue.PackedRing;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Ring lifecycle: start, enable, stop, resume, notifications (spec §4.1; checklist 26-27, 35-51), on both ring
 * layouts: every case runs with split rings and with packed rings (VIRTIO_F_RING_PACKED, packed-ring.md §5).
 */
@ParameterizedClass
@EnumSource(RingLayout.class)
class RingLifecycleConformanceTest extends ConformanceBase {
    @Parameter
    RingLayout layout;

    @Override
    RingLayout layout() {
        return layout;
    }

    /** GET_VRING_BASE after {@code chains} posted chains (a readable and a writable buffer each), all completed. */
    private int baseAfter(int chains) {
        return layout.baseAfter(chains, 2, 16);
    }

    // §7 #26 / §4.1: without bit 30, SET_FEATURES enables every ring: a kick is processed without SET_VRING_ENABLE.
    @Test
    void withoutProtocolFeaturesEveryRingIsEnabledAtSetFeatures() throws Exception {
        fe.negotiate(false, 0, 1);
        FrontendQueue q = fe.startQueue(0, 16);
        roundTrip(q, "hello");
        assertTrue(q.awaitCall(WAIT) > 0, "the guest was interrupted");
    }

    // §7 #27 + #37 / §4.1: with bit 30 rings start disabled; a started-but-disabled ring has no side effects.
    @Test
    void withProtocolFeaturesAStartedRingStaysDisabledWithoutSideEffects() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = fe.startQueue(0, 16);
        q.post("early", 16);
        q.kick();
        fe.sync();
        Thread.sleep(QUIET.toMillis());
        assertEquals(0, q.usedIdx(), "no used entries while disabled");
        assertEquals(0, q.takeCalls(), "no call while disabled");
        assertEquals(0, device().handled.get());
    }

    // §7 #36 / §8 #1 (rust-vmm #247): a kick that arrives while the ring is disabled is processed after ENABLE(1).
    @Test
    void aKickBeforeEnableIsProcessedWhenTheRingIsEnabled() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = fe.startQueue(0, 16);
        q.post("early", 16);
        q.kick();
        fe.sync();
        fe.setVringEnable(0, true);
        assertEquals("ylrae", q.awaitUsed(WAIT).text());
    }

    // §7 #35 / §4.1: a ring is not processed before its kick fd is installed; SET_VRING_KICK starts it.
    @Test
    void aRingIsNotProcessedBeforeItsKickFdAndStartsAtSetVringKick() throws Exception {
        fe.negotiate(false, 0, 1); // enabled at SET_FEATURES: only the missing kick fd holds it back
        FrontendQueue q = fe.queue(0, 16);
        fe.setVringNum(0, 16);
        fe.setVringBase(0, layout.freshBase());
        fe.setVringAddr(q);
        fe.setVringCall(0, q.callFd());
        q.post("waiting", 16);
        fe.sync();
        Thread.sleep(QUIET.toMillis());
        assertEquals(0, q.usedIdx(), "stopped until SET_VRING_KICK");
        fe.setVringKick(0, q.kickFd());
        q.kick();
        assertEquals("gnitiaw", q.awaitUsed(WAIT).text());
    }

    // §4.1 "The enable state must be tracked even while a ring is stopped": ENABLE(1) before KICK is kept.
    @Test
    void enableIsTrackedWhileTheRingIsStopped() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = fe.queue(0, 16);
        fe.setVringNum(0, 16);
        fe.setVringBase(0, layout.freshBase());
        fe.setVringAddr(q);
        fe.setVringCall(0, q.callFd());
        fe.setVringEnable(0, true);
        q.post("abc", 8);
        fe.setVringKick(0, q.kickFd());
        q.kick();
        assertEquals("cba", q.awaitUsed(WAIT).text());
    }

    // §7 #38 / §2.1 GET_VRING_BASE: the reply is the back-end's next avail index (5 consumed of 7 available).
    @Test
    void getVringBaseReturnsTheNextAvailIndexTheBackendWouldProcess() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = runningQueue(0);
        for (int i = 0; i < 5; i++) {
            q.post("x" + i, 8);
        }
        q.kick();
        q.awaitUsedIdx(5, WAIT);
        // As QEMU: disable, then GET_VRING_BASE. Chains published after the disable are not processed. (Posting
        // them before it would race with the worker's legitimate re-check after its drain.)
        fe.setVringEnable(0, false);
        q.post("not processed", 16);
        q.post("not processed", 16);
        assertEquals(baseAfter(5), fe.getVringBase(0));
    }

    // §7 #39: after the GET_VRING_BASE reply the ring writes no more used entries and signals no more calls.
    @Test
    void afterGetVringBaseTheRingWritesNothingAndSignalsNothing() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = runningQueue(0);
        roundTrip(q, "one");
        assertEquals(baseAfter(1), fe.getVringBase(0));
        q.takeCalls();
        q.post("two", 8);
        q.kick();
        fe.sync();
        Thread.sleep(QUIET.toMillis());
        assertEquals(1, q.usedIdx());
        assertEquals(0, q.takeCalls());
    }

    // §7 #40 / §4.1 (newer spec default): in-flight requests are completed before the GET_VRING_BASE reply.
    @Test
    void inFlightRequestsAreCompletedBeforeTheGetVringBaseReply() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = runningQueue(0);
        device().hold = true;
        for (int i = 0; i < 3; i++) {
            q.post("held" + i, 8);
        }
        q.kick();
        awaitTrue(() -> device().held.get() == 3, "the device to hold 3 requests");
        assertEquals(0, q.usedIdx(), "held, not completed");
        assertEquals(baseAfter(3), fe.getVringBase(0));
        assertEquals(3, q.usedIdx(), "all three completed by the time the reply arrived");
    }

    // §7 #41 / §8 #3 (rust-vmm #154): GET_VRING_BASE then SET_VRING_BASE(same) + KICK resumes at that index.
    @Test
    void suspendAndResumeContinuesAtTheSavedIndex() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = runningQueue(0);
        roundTrip(q, "a");
        roundTrip(q, "b");
        int base = fe.getVringBase(0);
        assertEquals(baseAfter(2), base);
        fe.setVringBase(0, base);
        fe.setVringKick(0, q.kickFd());
        fe.setVringCall(0, q.callFd());
        roundTrip(q, "c");
        assertEquals(3, device().handled.get(), "nothing before the stop was handled twice");
        assertEquals(3, q.usedIdx());
    }

    // §7 #42 / §8 #4 (rust-vmm #180): after a guest reboot (new rings, used->idx 0) next_used comes from memory.
    @Test
    void afterAGuestRebootProcessingRestartsWithUsedIdxFromGuestMemory() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = runningQueue(0);
        for (int i = 0; i < 3; i++) {
            roundTrip(q, "boot1-" + i);
        }
        fe.getVringBase(0);
        q.relayout(16); // the rebooted guest's driver: fresh rings elsewhere, all indices 0
        fe.setVringNum(0, 16);
        fe.setVringBase(0, layout.freshBase());
        fe.setVringAddr(q);
        fe.setVringKick(0, q.kickFd());
        fe.setVringCall(0, q.callFd());
        roundTrip(q, "boot2");
        assertEquals(1, q.usedIdx(), "used idx restarted at 0, not at the old 3");
    }

    // xen.md §2.7 #11: the Xen bridge re-probes the device with a second SET_OWNER on the live connection, then
    // sends the whole ring setup again. The second SET_OWNER stops every started ring as GET_VRING_BASE would
    // (the device completes what it holds) and keeps the memory table; the setup sent again is accepted and the
    // ring serves from the base it is given, the request posted while it was stopped first.
    @Test
    void aSecondSetOwnerStopsTheRingsAndTheRingSetupSentAgainIsServed() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = runningQueue(0);
        roundTrip(q, "before");
        device().hold = true;
        q.post("held", 8);
        q.kick();
        awaitTrue(() -> device().held.get() == 1, "the device to hold the request");
        assertEquals(0, fe.ack(SET_OWNER, Msg.EMPTY), "a second SET_OWNER is accepted");
        assertEquals(2, q.usedIdx(), "the held request completed by the time SET_OWNER was acked");
        assertEquals("dleh", q.awaitUsed(WAIT).text());
        device().hold = false;
        q.post("while stopped", 16);
        q.kick();
        fe.sync();
        Thread.sleep(QUIET.toMillis());
        assertEquals(2, q.usedIdx(), "stopped: nothing served until the setup comes again");

        fe.setVringNum(0, 16); // refused by a running ring: accepted only because the ring stopped
        fe.setVringAddr(q);
        fe.setVringBase(0, baseAfter(2));
        fe.setVringCall(0, q.callFd());
        fe.setVringKick(0, q.kickFd());
        fe.setVringEnable(0, true);
        assertEquals("deppots elihw", q.awaitUsed(WAIT).text());
        roundTrip(q, "after");
        fe.setVringEnable(0, false);
        assertEquals(baseAfter(4), fe.getVringBase(0));
        assertEquals(4, device().handled.get(), "nothing handled twice across the re-probe");
    }

    // The first SET_OWNER of a connection stops nothing: a front-end may set a ring up before claiming it.
    @Test
    void theFirstSetOwnerLeavesARingSetUpBeforeItRunning() throws Exception {
        fe.getFeatures();
        fe.setProtocolFeatures(REPLY_ACK);
        fe.setFeatures(fe.getFeatures() & (TestFrontend.F_VERSION_1 | TestFrontend.F_PROTOCOL_FEATURES)
                | layout.feature());
        fe.setMemTable();
        FrontendQueue q = runningQueue(0);
        fe.setOwner();
        roundTrip(q, "owned late");
    }

    // §7 #43: SET_VRING_NUM 0, above the maximum, or not a power of two is rejected; a packed ring takes any
    // size from 1 to the maximum (packed-ring.md §1.1, H17).
    @Test
    void setVringNumRejectsZeroOversizeAndNonPowerOfTwo() throws Exception {
        negotiateWithReplyAck(0);
        assertNotEquals(0, fe.ack(SET_VRING_NUM, Msg.vringState(0, 0)));
        assertNotEquals(0, fe.ack(SET_VRING_NUM, Msg.vringState(0, 512)));
        if (layout.packed()) {
            assertEquals(0, fe.ack(SET_VRING_NUM, Msg.vringState(0, 24)));
            assertEquals(0, fe.ack(SET_VRING_NUM, Msg.vringState(0, 3)));
        } else {
            assertNotEquals(0, fe.ack(SET_VRING_NUM, Msg.vringState(0, 24)));
        }
        assertEquals(0, fe.ack(SET_VRING_NUM, Msg.vringState(0, 256)));
    }

    // §7 #44: SET_VRING_ADDR with misaligned desc (16), avail (2) or used (4) is rejected.
    @Test
    void setVringAddrRejectsMisalignedRings() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = fe.queue(0, 16);
        fe.setVringNum(0, 16);
        long d = q.descUva();
        long a = q.availUva();
        long u = q.usedUva();
        assertNotEquals(0, fe.ack(SET_VRING_ADDR, Msg.vringAddr(0, 0, d + 8, u, a, 0)), "desc");
        assertNotEquals(0, fe.ack(SET_VRING_ADDR, Msg.vringAddr(0, 0, d, u, a + 1, 0)), "avail");
        assertNotEquals(0, fe.ack(SET_VRING_ADDR, Msg.vringAddr(0, 0, d, u + 2, a, 0)), "used");
        assertEquals(0, fe.ack(SET_VRING_ADDR, Msg.vringAddr(0, 0, d, u, a, 0)));
    }

    // §7 #44 + #45 / §4.2: ring addresses are front-end user addresses; GPAs (or anything outside every region's
    // user range) are rejected.
    @Test
    void ringAddressesAreUserAddressesAndGpasAreRejected() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = fe.queue(0, 16);
        fe.setVringNum(0, 16);
        assertNotEquals(0, fe.ack(SET_VRING_ADDR, Msg.vringAddr(0, 0, q.descGpa(), q.usedGpa(), q.availGpa(), 0)),
                "GPAs are not user addresses");
        assertEquals(0, fe.ack(SET_VRING_ADDR, Msg.vringAddr(0, 0, q.descUva(), q.usedUva(), q.availUva(), 0)));
    }

    // §7 #46: SET_VRING_CALL and SET_VRING_ERR are accepted before SET_FEATURES and SET_MEM_TABLE.
    @Test
    void callAndErrFdsAreAcceptedBeforeFeaturesAndMemory() throws Exception {
        fe.setProtocolFeatures(REPLY_ACK);
        FrontendQueue q = fe.queue(0, 16);
        assertEquals(0, fe.ack(SET_VRING_CALL, Msg.u64(0), q.maskedCallFd()));
        assertEquals(0, fe.ack(SET_VRING_ERR, Msg.u64(0), q.errFd()));
        assertEquals(0, fe.ack(SET_VRING_CALL, Msg.u64(1), q.maskedCallFd()));
    }

    // §7 #47 / §4.1 on-the-fly changes: replacing the call fd while running sends later notifications to the new fd.
    @Test
    void replacingTheCallFdWhileRunningRedirectsNotifications() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = fe.startQueue(0, 16);
        fe.setVringCall(0, q.maskedCallFd()); // QEMU's masked notifier first
        fe.setVringEnable(0, true);
        roundTrip(q, "masked");
        assertTrue(dev.vhostdevice.vhostuser.frontend.Fds.awaitEventfd(q.maskedCallFd(), WAIT) > 0);
        fe.setVringCall(0, q.callFd()); // the guest unmasked its interrupt
        roundTrip(q, "unmasked");
        assertTrue(q.awaitCall(WAIT) > 0, "the new call fd is signalled");
        assertEquals(0, dev.vhostdevice.vhostuser.frontend.Fds.awaitEventfd(q.maskedCallFd(), java.time.Duration.ZERO),
                "the old one is not");
    }

    // Hostile input: a call fd that is not a non-blocking eventfd (here a socket nobody reads) fills up; the worker
    // must not block writing to it, so the ring keeps serving and control requests keep being answered.
    @Test
    void aFullBlockingCallFdDoesNotWedgeTheWorker() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = runningQueue(0);
        dev.vhostdevice.vhostuser.sys.Linux linux = dev.vhostdevice.vhostuser.sys.Linux.system();
        int[] pair = linux.socketPair();
        try {
            fe.setVringCall(0, pair[0]);
            // Shared file description: the back-end's copy made it non-blocking, so this fill stops at EAGAIN
            // instead of blocking (as the worker's write would) once the socket buffer is full.
            org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(WAIT, () -> {
                try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
                    java.lang.foreign.MemorySegment chunk = arena.allocate(4096);
                    while (linux.write(pair[0], chunk, 4096) > 0) {
                        // until the buffer is full
                    }
                }
            }, "the call fd the back-end got is still blocking");
            roundTrip(q, "full");
            roundTrip(q, "still full");
            assertTrue(Integer.toUnsignedLong(fe.getVringBase(0)) >= 2, "the worker still answers control requests");
        } finally {
            linux.close(pair[0]);
            linux.close(pair[1]);
        }
    }

    // Hostile input: a kick fd whose peer hangs up stays epoll-ready for ever; the worker must not spin on it.
    @Test
    void aKickFdThatHangsUpDoesNotSpinTheWorker() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = runningQueue(0);
        dev.vhostdevice.vhostuser.sys.Linux linux = dev.vhostdevice.vhostuser.sys.Linux.system();
        int[] pair = linux.socketPair();
        try {
            fe.setVringKick(0, pair[0]);
            linux.close(pair[1]); // EPOLLHUP from now on
            // This connection's worker: named after the socket and the connection (vu.sock#1-worker).
            String workerName = server.socketPath().getFileName() + "#" + server.connectionsServed() + "-worker";
            Thread worker = Thread.getAllStackTraces().keySet().stream()
                    .filter(t -> t.getName().equals(workerName) && t.isAlive())
                    .findFirst().orElseThrow(() -> new AssertionError("no thread " + workerName));
            var threads = java.lang.management.ManagementFactory.getThreadMXBean();
            Thread.sleep(100);
            long before = threads.getThreadCpuTime(worker.threadId());
            Thread.sleep(500);
            long spent = threads.getThreadCpuTime(worker.threadId()) - before;
            assertTrue(spent < 100_000_000L, "the worker burnt " + spent / 1_000_000 + " ms of CPU in 500 ms");
            fe.getVringBase(0); // the worker still answers control requests
        } finally {
            linux.close(pair[0]);
        }
    }

    // §7 #49: without EVENT_IDX, VRING_AVAIL_F_NO_INTERRUPT suppresses calls.
    @Test
    void noInterruptFlagSuppressesCallsWithoutEventIdx() throws Exception {
        fe.negotiate(true, REPLY_ACK, 1 /* no EVENT_IDX: masked below */);
        fe.setFeatures(fe.ackedFeatures() & ~F_EVENT_IDX);
        FrontendQueue q = runningQueue(0);
        suppressInterrupts(q, true);
        roundTrip(q, "quiet");
        suppressInterrupts(q, false);
        roundTrip(q, "loud");
        assertEquals(1, q.awaitCall(WAIT), "only the second completion interrupted the guest");
    }

    /** Split: VRING_AVAIL_F_NO_INTERRUPT; packed: Driver Event Suppression DISABLE or ENABLE. */
    private void suppressInterrupts(FrontendQueue q, boolean suppress) {
        if (layout.packed()) {
            q.packedDriver().setDriverEvent(suppress ? PackedRing.RING_EVENT_FLAGS_DISABLE
                    : PackedRing.RING_EVENT_FLAGS_ENABLE, 0);
        } else {
            q.driver().setNoInterrupt(suppress);
        }
    }

    // §7 #48 / gotcha 3: with EVENT_IDX the guest is called only when used_event is crossed, and avail_event is
    // published so the driver knows when to kick.
    @Test
    void eventIdxCallsOnlyWhenUsedEventIsCrossedAndPublishesAvailEvent() throws Exception {
        long features = negotiateWithReplyAck(0);
        assertTrue((features & F_EVENT_IDX) != 0);
        FrontendQueue q = runningQueue(0);
        if (layout.packed()) {
            packedEventIdx(q);
            return;
        }
        q.driver().setEventIdx(true);
        q.driver().setUsedEvent(0);
        roundTrip(q, "first");                       // used idx 0 -> 1 crosses used_event 0
        assertEquals(1, q.awaitCall(WAIT));
        q.driver().setUsedEvent(5);
        roundTrip(q, "second");                      // 1 -> 2 does not cross 5
        q.driver().setUsedEvent(2);
        roundTrip(q, "third");                       // 2 -> 3 crosses 2
        assertEquals(1, q.awaitCall(WAIT), "one call for the third, none for the second");
        assertEquals(q.driver().availIdx(), q.driver().availEvent(), "avail_event maintained");
        q.post("fourth", 16);
        assertTrue(q.driver().kickPrepare(), "the driver is asked to kick for new buffers");
    }

    /**
     * The packed form (packed-ring.md §4.2): the driver asks for a call at a used position (DESC off_wrap), the
     * device's first decision after a start always calls, and the device asks for a kick at its next-avail.
     */
    private void packedEventIdx(FrontendQueue q) throws Exception {
        var driver = q.packedDriver();
        driver.setEventIdx(true);
        driver.setDriverEvent(PackedRing.RING_EVENT_FLAGS_DESC, PackedRing.position(5, true));
        // Each chain takes two slots.
        roundTrip(q, "first");                       // the first decision after the start calls
        assertEquals(1, q.awaitCall(WAIT));
        roundTrip(q, "second");                      // slots 2-3 used: not the event at slot 5
        roundTrip(q, "third");                       // slots 4-5 used: the event
        assertEquals(1, q.awaitCall(WAIT), "one call for the third, none for the second");
        assertEquals(PackedRing.RING_EVENT_FLAGS_DESC, driver.deviceEventFlags());
        assertEquals(driver.availPosition(), driver.deviceEventOffWrap(), "kick wanted at next-avail");
        driver.kickPrepare();
        q.post("fourth", 16);
        assertTrue(driver.kickPrepare(), "the driver is asked to kick for new buffers");
    }

    // §7 #50 / §3.1 RING_RESET: one ring is stopped and restarted while another keeps processing.
    @Test
    void oneRingIsStoppedAndRestartedWhileTheOtherKeepsRunning() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q0 = runningQueue(0);
        FrontendQueue q1 = runningQueue(1);
        roundTrip(q1, "before");
        assertEquals(baseAfter(1), fe.getVringBase(1));
        roundTrip(q0, "meanwhile");
        q1.relayout(16);
        fe.startQueue(1, 16);
        fe.setVringEnable(1, true);
        roundTrip(q1, "after");
        roundTrip(q0, "still");
    }

    // §7 #51 / §4.1 suspended device: with every ring stopped nothing is written or signalled, yet every control
    // message is answered.
    @Test
    void aSuspendedDeviceWritesNothingButAnswersControlMessages() throws Exception {
        negotiateWithReplyAck(ProtocolFeature.CONFIG.mask() | ProtocolFeature.MQ.mask());
        FrontendQueue q0 = runningQueue(0);
        FrontendQueue q1 = runningQueue(1);
        roundTrip(q0, "a");
        fe.getVringBase(0);
        fe.getVringBase(1);
        q0.takeCalls();
        q0.post("late", 8);
        q1.post("late", 8);
        q0.kick();
        q1.kick();
        assertEquals(2, fe.getQueueNum());
        assertArrayEquals(new byte[] {1, 2, 3, 4}, fe.getConfig(0, 4));
        fe.setVringEnable(0, true);
        fe.sync();
        Thread.sleep(QUIET.toMillis());
        assertEquals(1, q0.usedIdx());
        assertEquals(0, q1.usedIdx());
        assertEquals(0, q0.takeCalls());
    }
}
