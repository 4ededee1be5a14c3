package dev.vhostdevice.vhostuser.conformance;

import static dev.vhostdevice.vhostuser.frontend.TestFrontend.F_EVENT_IDX;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.SET_VRING_BASE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.frontend.FrontendQueue;
import dev.vhostdevice.vhostuser.frontend.GuestRam;
import dev.vhostdevice.vhostuser.frontend.Msg;
import dev.vhostdevice.vhostuser.frontend.TestFrontend;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * SET_VRING_BASE on a split ring sets where both the next available and the next used index resume (spec §2.1,
 * §4.1), at any 16-bit base, with and without EVENT_IDX, and serving goes on across the wrap to 0. Each case lays
 * the guest's rings out resumed at the base (avail and used idx there, as after a migration), serves three round
 * trips and a batch of two, and checks the used index and GET_VRING_BASE land five past the base.
 */
class RingBaseConformanceTest extends ConformanceBase {
    /** Requests each case serves after the base: three one at a time, then two in one kick. */
    private static final int SERVED = 5;

    static Stream<Arguments> basesWithAndWithoutEventIdx() {
        return Stream.of(0, 1, 32767, 65534, 65535)
                .flatMap(base -> Stream.of(Arguments.of(base, false), Arguments.of(base, true)));
    }

    // SET_VRING_BASE before SET_VRING_KICK (QEMU's order): the ring starts at the base.
    @ParameterizedTest(name = "base {0}, EVENT_IDX {1}")
    @MethodSource("basesWithAndWithoutEventIdx")
    void aBaseBeforeTheKickStartsTheRingThere(int base, boolean eventIdx) throws Exception {
        negotiate(eventIdx);
        servedFrom(enabledAt(base), base, eventIdx);
    }

    // The reported failure: ring set up at 0 and kicked, then laid out resumed at the base and SET_VRING_BASE
    // again before SET_VRING_ENABLE. The started, disabled ring restarts at the new base.
    @ParameterizedTest(name = "base {0}, EVENT_IDX {1}")
    @MethodSource("basesWithAndWithoutEventIdx")
    void aBaseAfterTheKickAndBeforeEnableMovesTheStartedRing(int base, boolean eventIdx) throws Exception {
        negotiate(eventIdx);
        FrontendQueue q = fe.startQueue(0, 16, 0);
        q.resumeAt(base);
        assertEquals(0, fe.ack(SET_VRING_BASE, Msg.vringState(0, base)), "accepted, not refused");
        fe.setVringEnable(0, true);
        servedFrom(q, base, eventIdx);
    }

    // Stop with GET_VRING_BASE, then NUM/BASE/KICK/CALL with the returned index: serving continues there.
    @ParameterizedTest(name = "base {0}, EVENT_IDX {1}")
    @MethodSource("basesWithAndWithoutEventIdx")
    void aStopAndStartWithGetVringBaseInBetweenResumesAtTheReturnedBase(int base, boolean eventIdx) throws Exception {
        negotiate(eventIdx);
        FrontendQueue q = enabledAt(base);
        roundTrip(q, "before");
        fe.setVringEnable(0, false);
        int stopped = fe.getVringBase(0);
        assertEquals((base + 1) & 0xFFFF, stopped);

        fe.setVringNum(0, 16);
        fe.setVringBase(0, stopped);
        fe.setVringKick(0, q.kickFd());
        fe.setVringCall(0, q.callFd());
        fe.setVringEnable(0, true);
        servedFrom(q, stopped, eventIdx);
        assertEquals(1 + SERVED, device().handled.get(), "nothing handled twice across the stop");
    }

    // A fresh connection (a new back-end session) given the base of the previous one, over the same guest RAM.
    @ParameterizedTest(name = "base {0}, EVENT_IDX {1}")
    @MethodSource("basesWithAndWithoutEventIdx")
    void aFreshConnectionResumesAtTheBaseItIsGiven(int base, boolean eventIdx) throws Exception {
        try (GuestRam ram = GuestRam.single(1 << 20)) {
            fe.useRam(ram);
            negotiate(eventIdx);
            FrontendQueue first = fe.startQueue(0, 16, 0);
            fe.setVringEnable(0, true);
            roundTrip(first, "first connection");
            fe.setVringEnable(0, false);
            assertEquals(1, fe.getVringBase(0));
            fe.close();

            fe = TestFrontend.connect(server.socketPath()).timeout(WAIT).useRam(ram);
            negotiate(eventIdx);
            servedFrom(enabledAt(base), base, eventIdx); // the migrated guest's rings, resumed at the base
            assertEquals(2, devices.size(), "a device per connection");
            fe.close(); // before the RAM it maps is closed
            fe = null;
        }
    }

    // Never half applied: on an enabled ring the base is refused whole and the ring goes on where it was.
    @Test
    void aBaseOnAnEnabledRingIsRefusedAndTheRingKeepsItsPosition() throws Exception {
        negotiate(true);
        FrontendQueue q = runningQueue(0);
        roundTrip(q, "one");
        assertNotEquals(0, fe.ack(SET_VRING_BASE, Msg.vringState(0, 40000)));
        roundTrip(q, "two");
        assertEquals(2, q.usedIdx());
        fe.setVringEnable(0, false);
        assertEquals(2, fe.getVringBase(0));
    }

    // A disabled ring that still holds popped requests cannot move under them: refused, and they complete.
    @Test
    void aBaseOnADisabledRingWithRequestsInFlightIsRefused() throws Exception {
        negotiate(true);
        FrontendQueue q = runningQueue(0);
        device().hold = true;
        q.post("held", 8);
        q.kick();
        awaitTrue(() -> device().held.get() == 1, "the device to hold the request");
        fe.setVringEnable(0, false);
        assertNotEquals(0, fe.ack(SET_VRING_BASE, Msg.vringState(0, 7)));
        assertEquals(1, fe.getVringBase(0), "position unchanged; the held request completed at the stop");
        assertEquals(1, q.usedIdx());
    }

    /** Queue 0 laid out resumed at {@code base}, started with SET_VRING_BASE {@code base} before its kick, enabled. */
    private FrontendQueue enabledAt(int base) throws Exception {
        FrontendQueue q = fe.queue(0, 16);
        q.resumeAt(base);
        fe.startQueue(0, 16, base);
        fe.setVringEnable(0, true);
        return q;
    }

    private void negotiate(boolean eventIdx) throws Exception {
        long features = negotiateWithReplyAck(0);
        assertTrue((features & F_EVENT_IDX) != 0, "the engine offers EVENT_IDX");
        if (!eventIdx) {
            fe.setFeatures(features & ~F_EVENT_IDX);
        }
    }

    /** Serves {@link #SERVED} requests from {@code base} across the wrap; checks calls, used idx and the base. */
    private void servedFrom(FrontendQueue q, int base, boolean eventIdx) throws Exception {
        for (int i = 0; i < 3; i++) {
            q.post("request " + i, 64);
            q.kick();
            // The call before the used entry is consumed: consuming moves used_event on (EVENT_IDX), after which
            // a device that decides late rightly does not call.
            assertTrue(q.awaitCall(WAIT) > 0, "the guest was called for request " + i + " (EVENT_IDX " + eventIdx + ")");
            assertEquals(i + " tseuqer", q.awaitUsed(WAIT).text());
        }
        q.post("batch a", 16);
        q.post("batch b", 16);
        q.kick();
        assertEquals("a hctab", q.awaitUsed(WAIT).text());
        assertEquals("b hctab", q.awaitUsed(WAIT).text());
        int end = (base + SERVED) & 0xFFFF;
        assertEquals(end, q.usedIdx(), "used idx continued from the base");
        fe.setVringEnable(0, false);
        assertEquals(end, fe.getVringBase(0), "next avail continued from the base");
    }
}
