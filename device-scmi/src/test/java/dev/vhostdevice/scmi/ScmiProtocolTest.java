package dev.vhostdevice.scmi;

import static dev.vhostdevice.scmi.BaseProtocol.DISCOVER_AGENT;
import static dev.vhostdevice.scmi.BaseProtocol.DISCOVER_IMPLEMENTATION_VERSION;
import static dev.vhostdevice.scmi.BaseProtocol.DISCOVER_LIST_PROTOCOLS;
import static dev.vhostdevice.scmi.BaseProtocol.DISCOVER_SUB_VENDOR;
import static dev.vhostdevice.scmi.BaseProtocol.DISCOVER_VENDOR;
import static dev.vhostdevice.scmi.ScmiProtocol.PROTOCOL_ATTRIBUTES;
import static dev.vhostdevice.scmi.ScmiProtocol.PROTOCOL_MESSAGE_ATTRIBUTES;
import static dev.vhostdevice.scmi.ScmiProtocol.PROTOCOL_VERSION;
import static dev.vhostdevice.scmi.SensorProtocol.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.scmi.ScmiAgent.Message;
import dev.vhostdevice.vhostuser.device.DeviceFactory;
import dev.vhostdevice.vhostuser.server.VhostUserServer;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * virtio-scmi as a Linux SCMI agent drives it, over the real vhost-user socket (QEMU 10's negotiation, the
 * project's test front-end): the probe sequence of drivers/firmware/arm_scmi (base discovery, then each
 * protocol's attributes and descriptions, with Linux's buffer sizes), readings, notifications and delayed
 * responses on the eventq, and every bad input followed by a request that is still served.
 */
class ScmiProtocolTest {
    private static final int BASE = BaseProtocol.ID;
    private static final int SENSOR = SensorProtocol.ID;
    private static final int CLOCK = ClockProtocol.ID;
    private static final int VOLTAGE = VoltageProtocol.ID;
    private static final int POWER = PowerProtocol.ID;
    private static final int OK = ScmiStatus.SUCCESS.code;
    /** SENSOR_CONFIG_SET's config: update interval 2 x 10^-2 s, sensor enabled. */
    private static final int TWENTY_MS_ENABLED = 2 << 16 | (-2 & 0x1F) << 11 | 1;
    /** SENSOR_UPDATE: message 1, type 3 (notification), protocol 0x15. */
    private static final int SENSOR_UPDATE_HEADER = 0x5701;

    @TempDir
    Path dir;
    private ScmiAgent agent;

    /** The daemon's factory for {@code -d} arguments, as the command line builds it. */
    private DeviceFactory devices(String... specs) {
        List<String> args = new ArrayList<>(List.of("-s", dir.resolve("unused.sock").toString()));
        for (String s : specs) {
            args.add("-d");
            args.add(s);
        }
        ScmiCommand command = new ScmiCommand();
        command.parseArgs(args.toArray(String[]::new));
        return command.deviceFactory(0);
    }

    private ScmiAgent start(String... specs) throws Exception {
        agent = ScmiAgent.start(dir, devices(specs));
        return agent;
    }

    @AfterEach
    void stop() {
        if (agent != null) {
            agent.close();
        }
    }

    private static void assertStatus(ScmiStatus expected, Message m) {
        assertEquals(8, m.length(), "an error reply is header + status");
        assertEquals(expected.code, m.status(), "status");
    }

    /** The device still answers: PROTOCOL_VERSION of base. */
    private void assertServed() throws Exception {
        Message m = agent.callExpecting(4, BASE, PROTOCOL_VERSION);
        assertEquals(OK, m.status());
        assertEquals(BaseProtocol.VERSION, m.word(1));
    }

    // ------------------------------------------------------------------ probe: base discovery

    @Test
    void baseDiscoveryAsLinuxProbesIt() throws Exception {
        start("fake,name=accel0", "clock,name=uart", "voltage", "power,name=gpu");
        Message version = agent.callExpecting(4, BASE, PROTOCOL_VERSION);
        assertEquals(12, version.length());
        assertEquals(0x20000, version.word(1));

        Message attributes = agent.callExpecting(4, BASE, PROTOCOL_ATTRIBUTES);
        assertEquals(4, attributes.word(1) & 0xFF, "protocols other than base: power, clock, sensor, voltage");
        assertEquals(1, (attributes.word(1) >>> 8) & 0xFF, "one agent");

        Message vendor = agent.callExpecting(16, BASE, DISCOVER_VENDOR);
        assertEquals(24, vendor.length(), "Linux sizes it 8 + 16: one word more would not fit");
        assertEquals("vhost-device", vendor.name(1));
        Message subVendor = agent.callExpecting(16, BASE, DISCOVER_SUB_VENDOR);
        assertEquals("java", subVendor.name(1));
        Message implementation = agent.callExpecting(4, BASE, DISCOVER_IMPLEMENTATION_VERSION);
        assertEquals(BaseProtocol.IMPLEMENTATION_VERSION, implementation.word(1));

        // Linux pages DISCOVER_LIST_PROTOCOLS until a reply returns none.
        Message list = agent.call(BASE, DISCOVER_LIST_PROTOCOLS, 0);
        assertEquals(OK, list.status());
        assertEquals(4, list.word(1));
        assertEquals(0x17151411, list.word(2), "ids packed four to a word, ascending");
        assertEquals(16, list.length());
        Message rest = agent.call(BASE, DISCOVER_LIST_PROTOCOLS, 4);
        assertEquals(OK, rest.status());
        assertEquals(0, rest.word(1));
        assertStatus(ScmiStatus.INVALID_PARAMETERS, agent.call(BASE, DISCOVER_LIST_PROTOCOLS, 5));

        // Linux asks for each agent id below num_agents: 0 is the platform; the guest is 1 (or "myself").
        Message platform = agent.callExpecting(20, BASE, DISCOVER_AGENT, 0);
        assertEquals(28, platform.length());
        assertEquals(0, platform.word(1));
        assertEquals("platform", platform.name(2));
        Message self = agent.callExpecting(20, BASE, DISCOVER_AGENT, 0xFFFFFFFF);
        assertEquals(1, self.word(1));
        assertEquals("OSPM", self.name(2));
        assertStatus(ScmiStatus.NOT_FOUND, agent.callExpecting(20, BASE, DISCOVER_AGENT, 2));
    }

    @Test
    void protocolMessageAttributesTellImplementedFromNot() throws Exception {
        start("fake");
        for (int id : new int[] {DISCOVER_VENDOR, DISCOVER_SUB_VENDOR, DISCOVER_LIST_PROTOCOLS, DISCOVER_AGENT}) {
            Message m = agent.callExpecting(4, BASE, PROTOCOL_MESSAGE_ATTRIBUTES, id);
            assertEquals(OK, m.status(), "base message " + id);
            assertEquals(0, m.word(1));
        }
        assertStatus(ScmiStatus.NOT_FOUND, agent.callExpecting(4, BASE, PROTOCOL_MESSAGE_ATTRIBUTES, 0x8));
        assertStatus(ScmiStatus.NOT_FOUND, agent.callExpecting(4, BASE, PROTOCOL_MESSAGE_ATTRIBUTES, 0x1234));
        for (int id : new int[] {SENSOR_DESCRIPTION_GET, SENSOR_READING_GET, SENSOR_AXIS_DESCRIPTION_GET,
                SENSOR_CONFIG_GET, SENSOR_CONFIG_SET, SENSOR_TRIP_POINT_NOTIFY, SENSOR_TRIP_POINT_CONFIG,
                SENSOR_CONTINUOUS_UPDATE_NOTIFY, SENSOR_LIST_UPDATE_INTERVALS}) {
            assertEquals(OK, agent.callExpecting(4, SENSOR, PROTOCOL_MESSAGE_ATTRIBUTES, id).status(), "sensor " + id);
        }
        assertStatus(ScmiStatus.NOT_FOUND, agent.callExpecting(4, SENSOR, PROTOCOL_MESSAGE_ATTRIBUTES, 0xC));
    }

    @Test
    void onlyProtocolsWithResourcesAreListed() throws Exception {
        start();
        Message list = agent.call(BASE, DISCOVER_LIST_PROTOCOLS, 0);
        assertEquals(1, list.word(1), "sensor only (upstream's set), however empty");
        assertEquals(SENSOR, list.word(2));
        assertStatus(ScmiStatus.NOT_SUPPORTED, agent.callExpecting(4, CLOCK, PROTOCOL_VERSION));
    }

    // ------------------------------------------------------------------ probe: sensors

    @Test
    void sensorProbeAsLinuxDoesIt() throws Exception {
        start("fake,name=accel0");
        assertEquals(SensorProtocol.VERSION, agent.callExpecting(4, SENSOR, PROTOCOL_VERSION).word(1));
        Message attributes = agent.callExpecting(16, SENSOR, PROTOCOL_ATTRIBUTES);
        assertEquals(24, attributes.length(), "Linux sizes it 8 + 16");
        assertEquals(1, attributes.word(1) & 0xFFFF, "one sensor");
        assertEquals(MAX_PENDING_ASYNC, (attributes.word(1) >>> 16) & 0xFF, "async reads may be pending");

        Message description = agent.call(SENSOR, SENSOR_DESCRIPTION_GET, 0);
        assertEquals(OK, description.status());
        assertEquals(1, description.word(1) & 0xFFF, "returned");
        assertEquals(0, description.word(1) >>> 16, "remaining");
        assertEquals(0, description.word(2), "sensor id");
        int low = description.word(3);
        assertTrue((low & 1 << 30) != 0, "continuous update notifications (scmi_iio skips sensors without)");
        assertTrue((low & 1 << 31) != 0, "asynchronous reads");
        assertEquals(TRIP_POINTS, low & 0xFF);
        int high = description.word(4);
        assertEquals(3, (high >>> 16) & 0x3F, "three axes");
        assertTrue((high & 1 << 8) != 0, "axis support");
        assertEquals(SensorUnit.METERS_SEC_SQUARED, high & 0xFF);
        assertEquals("accel0", description.name(5));
        assertEquals(8 + 4 + 28, description.length());

        // Linux asks for the update intervals (optional; we give the segmented min/max/step triplet).
        Message intervals = agent.call(SENSOR, SENSOR_LIST_UPDATE_INTERVALS, 0, 0);
        assertEquals(OK, intervals.status());
        assertEquals(3 | 1 << 12, intervals.word(1));
        assertEquals(1 << 5 | 0x1E, intervals.word(2), "10 ms: 1 s x 10^-2");

        // Then each axis, paged until none remain: 48 bytes each with the extended attributes, so two fit
        // Linux's 128-byte payload and the third comes in a second reply.
        Message axes = agent.call(SENSOR, SENSOR_AXIS_DESCRIPTION_GET, 0, 0);
        assertEquals(OK, axes.status());
        assertEquals(2, axes.word(1) & 0x3F, "returned");
        assertEquals(1, axes.word(1) >>> 26, "remaining");
        Message last = agent.call(SENSOR, SENSOR_AXIS_DESCRIPTION_GET, 0, 2);
        assertEquals(1, last.word(1) & 0x3F);
        assertEquals(0, last.word(1) >>> 26);
        String[] names = {"acc_X", "acc_Y", "acc_Z"};
        for (int a = 0; a < 3; a++) {
            Message page = a < 2 ? axes : last;
            int at = 2 + (a % 2) * 12;
            assertEquals(a, page.word(at));
            assertTrue((page.word(at + 1) & 1 << 8) != 0, "extended attributes");
            assertEquals(SensorUnit.METERS_SEC_SQUARED, page.word(at + 2) & 0xFF);
            assertEquals(names[a], page.name(at + 3));
            assertEquals(Long.MIN_VALUE, page.longAt(at + 8), "range not reported");
        }
        // A smaller buffer pages them one by one.
        Message one = agent.callExpecting(4 + 48, SENSOR, SENSOR_AXIS_DESCRIPTION_GET, 0, 1);
        assertEquals(1, one.word(1) & 0x3F);
        assertEquals(1, one.word(1) >>> 26);
        assertEquals("acc_Y", one.name(2 + 3));
        assertStatus(ScmiStatus.INVALID_PARAMETERS, agent.call(SENSOR, SENSOR_AXIS_DESCRIPTION_GET, 0, 3));
    }

    @Test
    void sensorDescriptionsArePagedToTheAgentsBuffer() throws Exception {
        start("fake,name=a", "fake,name=b", "fake,name=c", "fake,name=d", "fake,name=e", "fake,name=f");
        Message first = agent.call(SENSOR, SENSOR_DESCRIPTION_GET, 0);
        assertEquals(4, first.word(1) & 0xFFF, "(128 - 4) / 28 descriptors fit");
        assertEquals(2, first.word(1) >>> 16);
        Message second = agent.call(SENSOR, SENSOR_DESCRIPTION_GET, 4);
        assertEquals(2, second.word(1) & 0xFFF);
        assertEquals(0, second.word(1) >>> 16);
        assertEquals("e", second.name(2 + 3));
        assertEquals("f", second.name(2 + 7 + 3));
        Message none = agent.call(SENSOR, SENSOR_DESCRIPTION_GET, 6);
        assertEquals(OK, none.status());
        assertEquals(0, none.word(1));
        assertStatus(ScmiStatus.INVALID_PARAMETERS, agent.call(SENSOR, SENSOR_DESCRIPTION_GET, 7));
    }

    @Test
    void aFakeSensorWithoutANameGetsTheDefaultOne() throws Exception {
        start("fake");
        assertEquals(FakeAccelerometer.DEFAULT_NAME, agent.call(SENSOR, SENSOR_DESCRIPTION_GET, 0).name(5));
    }

    // ------------------------------------------------------------------ readings and configuration

    @Test
    void readingsChangeFromOneReadToTheNext() throws Exception {
        start("fake");
        Message first = agent.call(SENSOR, SENSOR_READING_GET, 0, 0);
        assertEquals(OK, first.status());
        assertEquals(8 + 3 * 16, first.length(), "value and timestamp per axis");
        long x = first.longAt(1);
        assertEquals(x + 100, first.longAt(5));
        assertEquals(x + 200, first.longAt(9));
        assertEquals(0, first.longAt(3), "no timestamp");
        Message second = agent.call(SENSOR, SENSOR_READING_GET, 0, 0);
        assertNotEquals(x, second.longAt(1));
    }

    @Test
    void configurationReadsBackAndADisabledSensorIsNotRead() throws Exception {
        start("fake");
        Message config = agent.callExpecting(4, SENSOR, SENSOR_CONFIG_GET, 0);
        assertEquals(1 << 16 | 1, config.word(1), "enabled, 1 s interval");
        // 250 ms = 25 x 10^-2 s, disabled
        assertEquals(OK, agent.call(SENSOR, SENSOR_CONFIG_SET, 0, 25 << 16 | (-2 & 0x1F) << 11).status());
        assertEquals(25 << 16 | (-2 & 0x1F) << 11, agent.callExpecting(4, SENSOR, SENSOR_CONFIG_GET, 0).word(1));
        assertStatus(ScmiStatus.DENIED, agent.call(SENSOR, SENSOR_READING_GET, 0, 0));
        // scmi_iio enables with interval 0: the interval stays
        assertEquals(OK, agent.call(SENSOR, SENSOR_CONFIG_SET, 0, 1).status());
        assertEquals(25 << 16 | (-2 & 0x1F) << 11 | 1, agent.callExpecting(4, SENSOR, SENSOR_CONFIG_GET, 0).word(1));
        assertEquals(OK, agent.call(SENSOR, SENSOR_READING_GET, 0, 0).status());
        // reserved bits, and timestamps no sensor here has
        assertStatus(ScmiStatus.INVALID_PARAMETERS, agent.call(SENSOR, SENSOR_CONFIG_SET, 0, 1 << 4 | 1));
        assertStatus(ScmiStatus.NOT_SUPPORTED, agent.call(SENSOR, SENSOR_CONFIG_SET, 0, 1 << 1 | 1));
        // too short an interval is raised to the 10 ms minimum
        assertEquals(OK, agent.call(SENSOR, SENSOR_CONFIG_SET, 0, 1 << 16 | (-9 & 0x1F) << 11 | 1).status());
        assertEquals(1 << 16 | (-2 & 0x1F) << 11 | 1, agent.callExpecting(4, SENSOR, SENSOR_CONFIG_GET, 0).word(1));
    }

    @Test
    void anUnknownSensorIsNotFound() throws Exception {
        start("fake");
        assertStatus(ScmiStatus.NOT_FOUND, agent.call(SENSOR, SENSOR_READING_GET, 1, 0));
        assertStatus(ScmiStatus.NOT_FOUND, agent.call(SENSOR, SENSOR_CONFIG_GET, -1));
        assertStatus(ScmiStatus.INVALID_PARAMETERS, agent.call(SENSOR, SENSOR_READING_GET, 0, 2));
        assertServed();
    }

    // ------------------------------------------------------------------ the eventq

    @Test
    void anAsynchronousReadAnswersAtOnceThenDeliversTheReadingAsADelayedResponse() throws Exception {
        start("fake");
        agent.postEventBuffers(2);
        int header = ScmiHeader.of(SENSOR, SENSOR_READING_GET, ScmiHeader.TYPE_COMMAND, 77);
        Message immediate = agent.raw(ScmiAgent.request(header, 0, READ_ASYNC), 8 + 128);
        assertEquals(header, immediate.header());
        assertStatus(ScmiStatus.SUCCESS, immediate);

        Message delayed = agent.awaitEvent();
        assertEquals(ScmiHeader.delayedResponse(header), delayed.header(), "same id, protocol and token; type 2");
        assertEquals(ScmiHeader.TYPE_DELAYED_RESPONSE, ScmiHeader.type(delayed.header()));
        assertEquals(77, ScmiHeader.token(delayed.header()));
        assertEquals(OK, delayed.status());
        assertEquals(0, delayed.word(1), "sensor id");
        assertEquals(delayed.longAt(2) + 100, delayed.longAt(6));
        assertEquals(4 + 4 + 4 + 3 * 16, delayed.length());
    }

    @Test
    void aDelayedResponseWaitsForTheAgentToPostABuffer() throws Exception {
        start("fake");
        Message immediate = agent.call(SENSOR, SENSOR_READING_GET, 0, READ_ASYNC);
        assertStatus(ScmiStatus.SUCCESS, immediate);
        assertNull(agent.pollEvent(Duration.ofMillis(200)), "no buffer: nothing can arrive yet");
        agent.postEventBuffers(1);
        Message delayed = agent.awaitEvent();
        assertEquals(ScmiHeader.delayedResponse(immediate.header()), delayed.header());
    }

    @Test
    void continuousUpdatesArriveAtTheConfiguredIntervalAndStopWhenDisabled() throws Exception {
        start("fake,name=accel0");
        agent.postEventBuffers(30);
        int fiftyMs = 5 << 16 | (-2 & 0x1F) << 11 | 1;
        assertEquals(OK, agent.call(SENSOR, SENSOR_CONFIG_SET, 0, fiftyMs).status());
        long start = System.nanoTime();
        assertEquals(OK, agent.call(SENSOR, SENSOR_CONTINUOUS_UPDATE_NOTIFY, 0, 1).status());
        int notifications = 6;
        long previous = Long.MIN_VALUE;
        for (int i = 0; i < notifications; i++) {
            Message update = agent.awaitEvent();
            assertEquals(0x5701, update.header(), "SENSOR_UPDATE: message 1, type 3, protocol 0x15");
            assertEquals(0, update.word(0), "agent id");
            assertEquals(0, update.word(1), "sensor id");
            assertEquals(4 + 8 + 3 * 16, update.length());
            long x = update.longAt(2);
            assertEquals(x + 100, update.longAt(6));
            assertNotEquals(previous, x, "each update is a new reading");
            previous = x;
        }
        long elapsedMs = (System.nanoTime() - start) / 1_000_000;
        // Six 50 ms periods cannot pass in less than 300 ms (the timer never fires early); on a loaded machine
        // they may take longer, but not ten times longer.
        assertTrue(elapsedMs >= 6 * 50 - 5, "6 updates after " + elapsedMs + " ms: faster than the interval");
        assertTrue(elapsedMs < 6 * 50 * 10, "6 updates took " + elapsedMs + " ms");

        assertEquals(OK, agent.call(SENSOR, SENSOR_CONTINUOUS_UPDATE_NOTIFY, 0, 0).status());
        while (agent.pollEvent(Duration.ofMillis(120)) != null) {
            // an update already due when it was disabled may still be in flight
        }
        assertNull(agent.pollEvent(Duration.ofMillis(300)), "no update once disabled");
        assertStatus(ScmiStatus.INVALID_PARAMETERS, agent.call(SENSOR, SENSOR_CONTINUOUS_UPDATE_NOTIFY, 0, 2));
    }

    /**
     * The guest going away is the other way updates stop: its session's timerfd is closed and its worker ends
     * (no fd, no thread left), and the next guest on the socket starts with its own platform, updates off.
     */
    @Test
    void aFrontendGoingAwayWithUpdatesOnClosesTheTimerAndEndsItsWorkerAndTheNextOneStartsWithUpdatesOff()
            throws Exception {
        Path socket = dir.resolve("scmi.sock");
        try (VhostUserServer server = VhostUserServer.start(socket, devices("fake,name=accel0"))) {
            long fdsBefore = openFds();
            long timersBefore = openTimerFds();
            agent = ScmiAgent.connect(socket);
            String worker = socket.getFileName() + "#" + server.connectionsServed() + "-worker";
            assertTrue(threadAlive(worker), "the session's worker " + worker + " runs");
            assertEquals(timersBefore + 1, openTimerFds(), "the device's notification timer");
            agent.postEventBuffers(8);
            assertEquals(OK, agent.call(SENSOR, SENSOR_CONFIG_SET, 0, TWENTY_MS_ENABLED).status());
            assertEquals(OK, agent.call(SENSOR, SENSOR_CONTINUOUS_UPDATE_NOTIFY, 0, 1).status());
            assertEquals(SENSOR_UPDATE_HEADER, agent.awaitEvent().header());

            agent.close(); // the guest goes away with updates on and the timer armed
            agent = null;
            long deadline = System.nanoTime() + ScmiAgent.TIMEOUT.toNanos();
            while ((openTimerFds() > timersBefore || openFds() > fdsBefore || threadAlive(worker))
                    && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertEquals(timersBefore, openTimerFds(), "the device's timerfd is closed");
            assertEquals(fdsBefore, openFds(), "no fd of the session is left");
            assertFalse(threadAlive(worker), worker + " has ended");

            agent = ScmiAgent.connect(socket);
            agent.postEventBuffers(8);
            assertServed();
            // the short interval again, so that updates left on would show within the wait
            assertEquals(OK, agent.call(SENSOR, SENSOR_CONFIG_SET, 0, TWENTY_MS_ENABLED).status());
            assertNull(agent.pollEvent(Duration.ofMillis(300)), "a new guest gets no update before it asks");
            assertEquals(OK, agent.call(SENSOR, SENSOR_CONTINUOUS_UPDATE_NOTIFY, 0, 1).status());
            assertEquals(SENSOR_UPDATE_HEADER, agent.awaitEvent().header(), "and gets them once it does");
            agent.close();
            agent = null;
        }
    }

    private static long openFds() throws Exception {
        try (var list = Files.list(Path.of("/proc/self/fd"))) {
            return list.count() - 1; // the listing's own directory fd
        }
    }

    private static long openTimerFds() throws Exception {
        long count = 0;
        try (var list = Files.list(Path.of("/proc/self/fd"))) {
            for (Path fd : (Iterable<Path>) list::iterator) {
                try {
                    if (Files.readSymbolicLink(fd).toString().equals("anon_inode:[timerfd]")) {
                        count++;
                    }
                } catch (java.io.IOException closedWhileListed) {
                    // not one that stays open
                }
            }
        }
        return count;
    }

    private static boolean threadAlive(String name) {
        return Thread.getAllStackTraces().keySet().stream().anyMatch(t -> t.getName().equals(name) && t.isAlive());
    }

    @Test
    void aTripPointCrossingIsNotified() throws Exception {
        start("fake");
        agent.postEventBuffers(8);
        // the fake's first axis counts up by one per reading: a rising trip point at its next value + 3
        long now = agent.call(SENSOR, SENSOR_READING_GET, 0, 0).longAt(1);
        long threshold = now + 3;
        assertEquals(OK, agent.call(SENSOR, SENSOR_CONFIG_SET, 0, 1 << 16 | (-2 & 0x1F) << 11 | 1).status());
        assertEquals(OK, agent.call(SENSOR, SENSOR_TRIP_POINT_CONFIG, 0, 2 << 4 | 1, (int) threshold, 0).status());
        assertEquals(OK, agent.call(SENSOR, SENSOR_TRIP_POINT_NOTIFY, 0, 1).status());
        Message trip = agent.awaitEvent();
        assertEquals(ScmiHeader.notification(SENSOR, SENSOR_TRIP_POINT_EVENT), trip.header());
        assertEquals(0, trip.word(1), "sensor id");
        assertEquals(2, trip.word(2), "trip point 2, crossed going up");
        assertStatus(ScmiStatus.INVALID_PARAMETERS, agent.call(SENSOR, SENSOR_TRIP_POINT_CONFIG, 0, 4 << 4 | 1, 0, 0));
    }

    @Test
    void withoutTheEventqNothingAsynchronousIsAdvertisedOrAccepted() throws Exception {
        agent = ScmiAgent.start(dir, devices("fake"), false);
        assertEquals(0, agent.call(SENSOR, SENSOR_DESCRIPTION_GET, 0).word(3), "no async, notify or trip points");
        assertEquals(0, (agent.callExpecting(16, SENSOR, PROTOCOL_ATTRIBUTES).word(1) >>> 16) & 0xFF);
        assertStatus(ScmiStatus.NOT_SUPPORTED, agent.call(SENSOR, SENSOR_READING_GET, 0, READ_ASYNC));
        assertStatus(ScmiStatus.NOT_SUPPORTED, agent.call(SENSOR, SENSOR_CONTINUOUS_UPDATE_NOTIFY, 0, 1));
        assertEquals(OK, agent.call(SENSOR, SENSOR_READING_GET, 0, 0).status());
    }

    @Test
    void aReadableOrTooSmallEventBufferIsReturnedEmptyAndTheNextOneIsUsed() throws Exception {
        start("fake");
        long readable = agent.allocate(136);
        agent.eventq.post(Buffer.readable(readable, 136));
        agent.eventq.post(new byte[0], 8);
        agent.eventq.post(new byte[0], ScmiAgent.EVENT_BUFFER);
        agent.eventq.kick();
        agent.call(SENSOR, SENSOR_READING_GET, 0, READ_ASYNC);
        assertEquals(0, agent.awaitEvent().length(), "readable buffer");
        assertEquals(0, agent.awaitEvent().length(), "8 bytes cannot hold the delayed response");
        assertEquals(ScmiHeader.TYPE_DELAYED_RESPONSE, ScmiHeader.type(agent.awaitEvent().header()));
    }

    // ------------------------------------------------------------------ clock, voltage, power

    @Test
    void aClockIsDescribedAndItsRateAndStateSetAndReadBack() throws Exception {
        start("clock,name=uart,rate=24000000,min=1000000,max=48000000,step=1000000");
        assertEquals(ClockProtocol.VERSION, agent.callExpecting(4, CLOCK, PROTOCOL_VERSION).word(1));
        assertEquals(1, agent.callExpecting(4, CLOCK, PROTOCOL_ATTRIBUTES).word(1));
        Message attributes = agent.callExpecting(20, CLOCK, ClockProtocol.CLOCK_ATTRIBUTES, 0);
        assertEquals(1, attributes.word(1), "enabled");
        assertEquals("uart", attributes.name(2));
        Message rates = agent.call(CLOCK, ClockProtocol.CLOCK_DESCRIBE_RATES, 0, 0);
        assertEquals(3 | 1 << 12, rates.word(1), "a (min, max, step) triplet, none remaining");
        assertEquals(1_000_000, rates.longAt(2));
        assertEquals(48_000_000, rates.longAt(4));
        assertEquals(1_000_000, rates.longAt(6));

        assertEquals(OK, agent.call(CLOCK, ClockProtocol.CLOCK_RATE_SET, 0, 0, 12_000_000, 0).status());
        assertEquals(12_000_000, agent.callExpecting(8, CLOCK, ClockProtocol.CLOCK_RATE_GET, 0).longAt(1));
        // 12.4 MHz rounds down by default, up with ROUND_UP
        agent.call(CLOCK, ClockProtocol.CLOCK_RATE_SET, 0, 0, 12_400_000, 0);
        assertEquals(12_000_000, agent.callExpecting(8, CLOCK, ClockProtocol.CLOCK_RATE_GET, 0).longAt(1));
        agent.call(CLOCK, ClockProtocol.CLOCK_RATE_SET, 1 << 2, 0, 12_400_000, 0);
        assertEquals(13_000_000, agent.callExpecting(8, CLOCK, ClockProtocol.CLOCK_RATE_GET, 0).longAt(1));
        assertStatus(ScmiStatus.OUT_OF_RANGE, agent.call(CLOCK, ClockProtocol.CLOCK_RATE_SET, 0, 0, 50_000_000, 0));
        assertStatus(ScmiStatus.NOT_SUPPORTED, agent.call(CLOCK, ClockProtocol.CLOCK_RATE_SET, 1, 0, 12_000_000, 0));

        assertEquals(OK, agent.call(CLOCK, ClockProtocol.CLOCK_CONFIG_SET, 0, 0).status());
        assertEquals(0, agent.callExpecting(20, CLOCK, ClockProtocol.CLOCK_ATTRIBUTES, 0).word(1), "disabled");
        assertStatus(ScmiStatus.INVALID_PARAMETERS, agent.call(CLOCK, ClockProtocol.CLOCK_CONFIG_SET, 0, 2));
        assertStatus(ScmiStatus.NOT_FOUND, agent.call(CLOCK, ClockProtocol.CLOCK_RATE_GET, 1));
    }

    @Test
    void aRegulatorIsDescribedAndItsLevelAndModeSetAndReadBack() throws Exception {
        start("voltage,name=vmmc,level=3300000,min=1800000,max=3300000,step=100000");
        assertEquals(1, agent.callExpecting(4, VOLTAGE, PROTOCOL_ATTRIBUTES).word(1));
        Message attributes = agent.callExpecting(20, VOLTAGE, VoltageProtocol.VOLTAGE_DOMAIN_ATTRIBUTES, 0);
        assertEquals("vmmc", attributes.name(2));
        Message levels = agent.call(VOLTAGE, VoltageProtocol.VOLTAGE_DESCRIBE_LEVELS, 0, 0);
        assertEquals(3 | 1 << 12, levels.word(1), "segmented triplet");
        assertEquals(1_800_000, levels.word(2));
        assertEquals(3_300_000, levels.word(3));
        assertEquals(100_000, levels.word(4));
        assertEquals(3_300_000, agent.callExpecting(4, VOLTAGE, VoltageProtocol.VOLTAGE_LEVEL_GET, 0).word(1));
        assertEquals(OK, agent.call(VOLTAGE, VoltageProtocol.VOLTAGE_LEVEL_SET, 0, 0, 1_800_000).status());
        assertEquals(1_800_000, agent.callExpecting(4, VOLTAGE, VoltageProtocol.VOLTAGE_LEVEL_GET, 0).word(1));
        assertStatus(ScmiStatus.OUT_OF_RANGE, agent.call(VOLTAGE, VoltageProtocol.VOLTAGE_LEVEL_SET, 0, 0, 900_000));
        assertStatus(ScmiStatus.INVALID_PARAMETERS,
                agent.call(VOLTAGE, VoltageProtocol.VOLTAGE_LEVEL_SET, 0, 0, 1_850_000));
        assertEquals(VoltageProtocol.CONFIG_ON, agent.callExpecting(4, VOLTAGE, VoltageProtocol.VOLTAGE_CONFIG_GET, 0)
                .word(1));
        assertEquals(OK, agent.call(VOLTAGE, VoltageProtocol.VOLTAGE_CONFIG_SET, 0, 0).status());
        assertEquals(0, agent.callExpecting(4, VOLTAGE, VoltageProtocol.VOLTAGE_CONFIG_GET, 0).word(1));
        assertStatus(ScmiStatus.INVALID_PARAMETERS, agent.call(VOLTAGE, VoltageProtocol.VOLTAGE_CONFIG_SET, 0, 3));
    }

    @Test
    void aPowerDomainIsDescribedAndItsStateSetAndReadBack() throws Exception {
        start("power,name=gpu,state=off");
        Message attributes = agent.callExpecting(16, POWER, PROTOCOL_ATTRIBUTES);
        assertEquals(1, attributes.word(1) & 0xFFFF);
        Message domain = agent.callExpecting(20, POWER, PowerProtocol.POWER_DOMAIN_ATTRIBUTES, 0);
        assertEquals(1 << 29, domain.word(1), "synchronous state setting only");
        assertEquals("gpu", domain.name(2));
        assertEquals(PowerProtocol.STATE_OFF, agent.callExpecting(4, POWER, PowerProtocol.POWER_STATE_GET, 0).word(1));
        assertEquals(OK, agent.call(POWER, PowerProtocol.POWER_STATE_SET, 0, 0, PowerProtocol.STATE_ON).status());
        assertEquals(PowerProtocol.STATE_ON, agent.callExpecting(4, POWER, PowerProtocol.POWER_STATE_GET, 0).word(1));
        assertStatus(ScmiStatus.NOT_SUPPORTED, agent.call(POWER, PowerProtocol.POWER_STATE_SET, 1, 0, 0));
        assertStatus(ScmiStatus.INVALID_PARAMETERS, agent.call(POWER, PowerProtocol.POWER_STATE_SET, 0, 0, 5));
        assertStatus(ScmiStatus.NOT_FOUND, agent.callExpecting(4, POWER, PowerProtocol.POWER_STATE_GET, 1));
    }

    // ------------------------------------------------------------------ IIO through the device

    @Test
    void anIioAccelerometerIsDescribedAndReadInSiUnits() throws Exception {
        Path iio = dir.resolve("iio:device0");
        Files.createDirectories(iio);
        Files.writeString(iio.resolve("name"), "bmi160\n");
        Files.writeString(iio.resolve("in_accel_x_raw"), "100\n");
        Files.writeString(iio.resolve("in_accel_y_raw"), "-200\n");
        Files.writeString(iio.resolve("in_accel_z_raw"), "1024\n");
        Files.writeString(iio.resolve("in_accel_scale"), "0.009576806\n");
        start("iio,path=" + iio + ",channel=in_accel");
        Message description = agent.call(SENSOR, SENSOR_DESCRIPTION_GET, 0);
        assertEquals("bmi160", description.name(5));
        int high = description.word(4);
        assertEquals(SensorUnit.METERS_SEC_SQUARED, high & 0xFF);
        assertEquals(-3, (high << 16) >> 27, "exponent from the scale: 10^-3 m/s^2");
        assertEquals("accel_X", agent.call(SENSOR, SENSOR_AXIS_DESCRIPTION_GET, 0, 0).name(2 + 3));
        Message reading = agent.call(SENSOR, SENSOR_READING_GET, 0, 0);
        assertEquals(958, reading.longAt(1), "100 x 0.009576806 m/s^2 = 0.958 m/s^2");
        assertEquals(-1915, reading.longAt(5));
        assertEquals(9807, reading.longAt(9));
        Files.writeString(iio.resolve("in_accel_x_raw"), "0\n");
        assertEquals(0, agent.call(SENSOR, SENSOR_READING_GET, 0, 0).longAt(1), "re-read at every reading");
        Files.writeString(iio.resolve("in_accel_x_raw"), "garbage\n");
        assertStatus(ScmiStatus.HARDWARE_ERROR, agent.call(SENSOR, SENSOR_READING_GET, 0, 0));
        assertServed();
    }

    // ------------------------------------------------------------------ bad input, each followed by a served request

    @Test
    void aRequestShorterThanTheHeaderGetsALengthZeroEntry() throws Exception {
        start("fake");
        assertEquals(0, agent.raw(new byte[] {1, 2}, 136).length());
        assertServed();
    }

    @Test
    void aPayloadShorterOrLongerThanTheMessageIsAProtocolError() throws Exception {
        start("fake");
        assertStatus(ScmiStatus.PROTOCOL_ERROR, agent.call(SENSOR, SENSOR_READING_GET, 0));
        assertStatus(ScmiStatus.PROTOCOL_ERROR, agent.call(SENSOR, SENSOR_DESCRIPTION_GET));
        assertStatus(ScmiStatus.PROTOCOL_ERROR, agent.call(BASE, PROTOCOL_VERSION, 0));
        assertStatus(ScmiStatus.PROTOCOL_ERROR, agent.call(BASE, DISCOVER_AGENT, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
        int header = ScmiHeader.of(BASE, PROTOCOL_VERSION, 0, 3);
        Message ragged = agent.raw(new byte[] {(byte) header, (byte) (header >> 8), (byte) (header >> 16),
                (byte) (header >>> 24), 0, 0}, 136);
        assertEquals(header, ragged.header());
        assertStatus(ScmiStatus.PROTOCOL_ERROR, ragged);
        assertServed();
    }

    @Test
    void aResponseBufferTooSmallGetsCommsErrorOrLengthZero() throws Exception {
        start("fake");
        Message cut = agent.callExpecting(8, BASE, DISCOVER_VENDOR);
        assertStatus(ScmiStatus.COMMS_ERROR, cut);
        Message reading = agent.callExpecting(16, SENSOR, SENSOR_READING_GET, 0, 0);
        assertStatus(ScmiStatus.COMMS_ERROR, reading);
        assertEquals(0, agent.raw(ScmiAgent.request(ScmiHeader.of(BASE, 0, 0, 1)), 7).length(),
                "no room for header and status");
        assertServed();
    }

    @Test
    void chainsWithoutAReadableOrAWritablePartGetALengthZeroEntry() throws Exception {
        start("fake");
        long request = agent.allocate(4);
        agent.write(request, ScmiAgent.request(ScmiHeader.of(BASE, 0, 0, 1)));
        assertEquals(0, agent.chain(Buffer.readable(request, 4)).length(), "readable only");
        long response = agent.allocate(64);
        assertEquals(0, agent.chain(Buffer.writable(response, 64)).length(), "writable only");
        assertServed();
    }

    @Test
    void unknownProtocolsMessagesAndTypesAreNotSupported() throws Exception {
        start("fake");
        assertStatus(ScmiStatus.NOT_SUPPORTED, agent.call(0x13, PROTOCOL_VERSION));
        assertStatus(ScmiStatus.NOT_SUPPORTED, agent.call(BASE, 0x8, 1));
        assertStatus(ScmiStatus.NOT_SUPPORTED, agent.call(SENSOR, 0x20));
        int notification = ScmiHeader.of(BASE, PROTOCOL_VERSION, ScmiHeader.TYPE_NOTIFICATION, 5);
        Message m = agent.raw(ScmiAgent.request(notification), 136);
        assertEquals(notification, m.header());
        assertStatus(ScmiStatus.NOT_SUPPORTED, m);
        assertServed();
    }

    @Test
    void aRequestInTwoDescriptorsIsReadAcrossThem() throws Exception {
        start("fake");
        int header = ScmiHeader.of(SENSOR, SENSOR_CONFIG_GET, 0, 9);
        byte[] whole = ScmiAgent.request(header, 0);
        long a = agent.allocate(3);
        long b = agent.allocate(5);
        agent.write(a, java.util.Arrays.copyOfRange(whole, 0, 3));
        agent.write(b, java.util.Arrays.copyOfRange(whole, 3, 8));
        long out = agent.allocate(12);
        Message m = agent.chain(Buffer.readable(a, 3), Buffer.readable(b, 5), Buffer.writable(out, 12));
        assertEquals(header, m.header());
        assertEquals(OK, m.status());
    }
}
