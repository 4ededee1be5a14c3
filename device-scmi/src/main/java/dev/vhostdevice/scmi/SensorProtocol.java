package dev.vhostdevice.scmi;

import java.io.IOException;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Sensor management protocol (0x15), version 3.0 (DEN0056 v3.x §4.7): descriptions with paging, axis
 * descriptions, readings (synchronous, and asynchronous with the SENSOR_READING_COMPLETE delayed response on
 * the event channel), configuration with the update interval, trip points, and continuous update
 * notifications (SENSOR_UPDATE) at each sensor's interval.
 *
 * <p>Asynchronous reads, notifications and trip points need the event channel: they are advertised (sensor
 * attributes) and accepted only while the driver negotiated it; otherwise the messages answer NOT_SUPPORTED.
 *
 * <p>Timing has no thread: {@link #nextDeadline()} tells the device when its timer must next fire and
 * {@link #emitDue} sends what is due. Sensors start enabled with a 1 s interval and every notification off.
 * Trip points watch the first axis (or the scalar value), sampled at the sensor's update interval.
 */
public final class SensorProtocol extends ScmiProtocol {
    public static final int ID = 0x15;
    public static final int VERSION = 0x3_0000;
    public static final int SENSOR_DESCRIPTION_GET = 0x3;
    public static final int SENSOR_TRIP_POINT_NOTIFY = 0x4;
    public static final int SENSOR_TRIP_POINT_CONFIG = 0x5;
    public static final int SENSOR_READING_GET = 0x6;
    public static final int SENSOR_AXIS_DESCRIPTION_GET = 0x7;
    public static final int SENSOR_LIST_UPDATE_INTERVALS = 0x8;
    public static final int SENSOR_CONFIG_GET = 0x9;
    public static final int SENSOR_CONFIG_SET = 0xA;
    public static final int SENSOR_CONTINUOUS_UPDATE_NOTIFY = 0xB;
    /** Notification message ids. */
    public static final int SENSOR_TRIP_POINT_EVENT = 0x0;
    public static final int SENSOR_UPDATE = 0x1;

    public static final int MAX_AXES = 63;
    public static final int TRIP_POINTS = 4;
    /** Asynchronous reads in flight at most (PROTOCOL_ATTRIBUTES' max pending); one more answers BUSY. */
    public static final int MAX_PENDING_ASYNC = 16;
    public static final int READ_ASYNC = 1;

    // sensor attributes_low / attributes_high (SENSOR_DESCRIPTION_GET)
    static final int ATTR_ASYNC_READ = 1 << 31;
    static final int ATTR_CONTINUOUS_UPDATE_NOTIFY = 1 << 30;
    static final int ATTR_EXTENDED = 1 << 8;
    static final int ATTR_AXIS_SUPPORT = 1 << 8;
    static final int DESCRIPTOR_BYTES = 28;
    static final int AXIS_DESCRIPTOR_BYTES = 48;

    // sensor_config (SENSOR_CONFIG_GET/SET): interval seconds 31:16, exponent 15:11, rounding 10:9, timestamp 1,
    // enabled 0; bits 8:2 reserved.
    static final int CONFIG_ENABLED = 1;
    static final int CONFIG_TIMESTAMP = 1 << 1;
    static final int CONFIG_RESERVED = 0x1FC;
    static final int CONFIG_ROUND_SHIFT = 9;

    /** Update intervals supported: 10 ms to an hour, in 10 ms steps (the segmented triplet we advertise). */
    static final long MIN_INTERVAL_NANOS = 10_000_000L;
    static final long MAX_INTERVAL_NANOS = 3_600_000_000_000L;
    static final int DEFAULT_INTERVAL_SECONDS = 1;
    static final int DEFAULT_INTERVAL_EXPONENT = 0;

    private static final Logger LOG = LoggerFactory.getLogger(SensorProtocol.class);

    /** One sensor and what the agent configured for it. */
    private static final class Channel {
        final Sensor sensor;
        final byte[] name;
        final byte[][] axisNames;
        final int readings;
        boolean enabled;
        int intervalSeconds;
        int intervalExponent;
        long intervalNanos;
        boolean updateNotify;
        boolean tripNotify;
        final int[] tripControl = new int[TRIP_POINTS];
        final long[] tripValue = new long[TRIP_POINTS];
        boolean haveLast;
        long lastValue;
        long nextDue = Long.MAX_VALUE;
        String lastError;

        Channel(Sensor sensor) {
            this.sensor = sensor;
            this.name = ScmiResponse.name(sensor.name());
            this.axisNames = new byte[sensor.axisCount()][];
            for (int i = 0; i < axisNames.length; i++) {
                axisNames[i] = ScmiResponse.name(sensor.axisName(i));
            }
            this.readings = Math.max(1, sensor.axisCount());
        }

        boolean anyTripPoint() {
            for (int control : tripControl) {
                if (control != 0) {
                    return true;
                }
            }
            return false;
        }
    }

    private final Channel[] channels;
    private final java.util.function.LongSupplier clock;
    private final long[] values = new long[MAX_AXES];
    private boolean eventsAvailable;
    /** Pending asynchronous reads: a FIFO of command headers and sensor ids. */
    private final int[] pendingHeader = new int[MAX_PENDING_ASYNC];
    private final int[] pendingSensor = new int[MAX_PENDING_ASYNC];
    private int pendingFirst;
    private int pendingCount;
    private long pendingSince;
    /** The last delayed response found no buffer: wait for the agent to post some instead of polling. */
    private boolean waitingForBuffer;
    private long droppedNotifications;

    public SensorProtocol(List<Sensor> sensors, java.util.function.LongSupplier clock) {
        super(ID, VERSION, -1); // listed even with no sensor, as upstream
        if (sensors.size() > 0xFFFF) {
            throw new IllegalArgumentException("at most 65535 sensors");
        }
        channels = new Channel[sensors.size()];
        for (int i = 0; i < channels.length; i++) {
            channels[i] = new Channel(sensors.get(i));
        }
        this.clock = clock;
        reset();
    }

    @Override
    public void reset() {
        for (Channel c : channels) {
            c.enabled = true;
            c.intervalSeconds = DEFAULT_INTERVAL_SECONDS;
            c.intervalExponent = DEFAULT_INTERVAL_EXPONENT;
            c.intervalNanos = intervalNanos(DEFAULT_INTERVAL_SECONDS, DEFAULT_INTERVAL_EXPONENT);
            c.updateNotify = false;
            c.tripNotify = false;
            java.util.Arrays.fill(c.tripControl, 0);
            c.haveLast = false;
            c.nextDue = Long.MAX_VALUE;
        }
        pendingCount = 0;
        pendingFirst = 0;
        waitingForBuffer = false;
    }

    /** Whether the agent has the event channel (VIRTIO_SCMI_F_P2A_CHANNELS negotiated). */
    public void setEventsAvailable(boolean available) {
        eventsAvailable = available;
        if (!available) {
            for (Channel c : channels) {
                c.updateNotify = false;
                c.tripNotify = false;
                c.nextDue = Long.MAX_VALUE;
            }
            pendingCount = 0;
        }
    }

    @Override
    protected int parameterCount(int messageId) {
        return switch (messageId) {
            case SENSOR_DESCRIPTION_GET, SENSOR_CONFIG_GET -> 1;
            case SENSOR_TRIP_POINT_NOTIFY, SENSOR_READING_GET, SENSOR_AXIS_DESCRIPTION_GET,
                    SENSOR_LIST_UPDATE_INTERVALS, SENSOR_CONFIG_SET, SENSOR_CONTINUOUS_UPDATE_NOTIFY -> 2;
            case SENSOR_TRIP_POINT_CONFIG -> 4;
            default -> commonParameterCount(messageId);
        };
    }

    @Override
    protected void protocolAttributes(ScmiResponse response) {
        // num_sensors 15:0, max pending asynchronous commands 23:16; then the (absent) shared-memory statistics
        response.putInt(channels.length | (eventsAvailable ? MAX_PENDING_ASYNC : 0) << 16)
                .putInt(0).putInt(0).putInt(0);
    }

    @Override
    protected void handle(ScmiRequest request, ScmiResponse response) {
        int messageId = request.messageId();
        if (messageId == SENSOR_DESCRIPTION_GET) {
            describe(Integer.toUnsignedLong(request.parameter(0)), response);
            return;
        }
        int id = request.parameter(0);
        if (id < 0 || id >= channels.length) {
            response.status(ScmiStatus.NOT_FOUND);
            return;
        }
        Channel c = channels[id];
        switch (messageId) {
            case SENSOR_AXIS_DESCRIPTION_GET -> describeAxes(c, Integer.toUnsignedLong(request.parameter(1)), response);
            case SENSOR_READING_GET -> readingGet(request, id, c, response);
            case SENSOR_LIST_UPDATE_INTERVALS -> listIntervals(request.parameter(1), response);
            case SENSOR_CONFIG_GET -> response.status(ScmiStatus.SUCCESS).putInt(config(c));
            case SENSOR_CONFIG_SET -> configSet(c, request.parameter(1), response);
            case SENSOR_TRIP_POINT_NOTIFY, SENSOR_CONTINUOUS_UPDATE_NOTIFY ->
                    notifySet(c, messageId, request.parameter(1), response);
            case SENSOR_TRIP_POINT_CONFIG -> tripPointConfig(c, request, response);
            default -> response.status(ScmiStatus.NOT_SUPPORTED);
        }
    }

    private void describe(long index, ScmiResponse response) {
        if (index > channels.length) {
            response.status(ScmiStatus.INVALID_PARAMETERS);
            return;
        }
        int remaining = channels.length - (int) index;
        int count = Math.min(remaining, Math.max(1, (response.room() - 8) / DESCRIPTOR_BYTES));
        response.status(ScmiStatus.SUCCESS).putInt(count | (remaining - count) << 16);
        for (int i = (int) index; i < index + count; i++) {
            Channel c = channels[i];
            Sensor s = c.sensor;
            int low = eventsAvailable ? ATTR_ASYNC_READ | ATTR_CONTINUOUS_UPDATE_NOTIFY | TRIP_POINTS : 0;
            int high = (s.axisCount() > 0 ? s.axisCount() << 16 | ATTR_AXIS_SUPPORT : 0)
                    | (s.exponent() & 0x1F) << 11 | (s.unit() & 0xFF);
            response.putInt(i).putInt(low).putInt(high).putName(c.name);
        }
    }

    private static void describeAxes(Channel c, long index, ScmiResponse response) {
        int axes = c.sensor.axisCount();
        if (index >= axes) {
            response.status(ScmiStatus.INVALID_PARAMETERS);
            return;
        }
        int remaining = axes - (int) index;
        int count = Math.min(remaining, Math.max(1, (response.room() - 8) / AXIS_DESCRIPTOR_BYTES));
        response.status(ScmiStatus.SUCCESS).putInt(count | (remaining - count) << 26);
        Sensor s = c.sensor;
        for (int i = (int) index; i < index + count; i++) {
            response.putInt(i).putInt(ATTR_EXTENDED).putInt((s.exponent() & 0x1F) << 11 | (s.unit() & 0xFF))
                    .putName(c.axisNames[i])
                    .putInt(1 | (s.exponent() & 0x1F) << 27) // resolution 1 in the reading's unit
                    .putLong(Long.MIN_VALUE).putLong(Long.MAX_VALUE); // range: not reported
        }
    }

    private void readingGet(ScmiRequest request, int id, Channel c, ScmiResponse response) {
        int flags = request.parameter(1);
        if ((flags & ~READ_ASYNC) != 0) {
            response.status(ScmiStatus.INVALID_PARAMETERS);
            return;
        }
        if (!c.enabled) {
            response.status(ScmiStatus.DENIED);
            return;
        }
        if ((flags & READ_ASYNC) != 0) {
            if (!eventsAvailable) {
                response.status(ScmiStatus.NOT_SUPPORTED);
            } else if (pendingCount == MAX_PENDING_ASYNC) {
                response.status(ScmiStatus.BUSY);
            } else {
                int slot = (pendingFirst + pendingCount) % MAX_PENDING_ASYNC;
                pendingHeader[slot] = request.header();
                pendingSensor[slot] = id;
                if (pendingCount++ == 0) {
                    pendingSince = clock.getAsLong();
                }
                response.status(ScmiStatus.SUCCESS);
            }
            return;
        }
        if (!read(c)) {
            response.status(ScmiStatus.HARDWARE_ERROR);
            return;
        }
        if (response.room() < 4 + 16 * c.readings) {
            throw ScmiResponse.Overflow.INSTANCE;
        }
        response.status(ScmiStatus.SUCCESS);
        putReadings(c, response);
    }

    private static void listIntervals(int index, ScmiResponse response) {
        if (index != 0) {
            response.status(ScmiStatus.INVALID_PARAMETERS);
            return;
        }
        // 3 returned, segmented (bit 12), none remaining; then min, max, step as seconds 20:5 and exponent 4:0.
        response.status(ScmiStatus.SUCCESS).putInt(3 | 1 << 12)
                .putInt(1 << 5 | (-2 & 0x1F))
                .putInt(3600 << 5)
                .putInt(1 << 5 | (-2 & 0x1F));
    }

    private static int config(Channel c) {
        return c.intervalSeconds << 16 | (c.intervalExponent & 0x1F) << 11 | (c.enabled ? CONFIG_ENABLED : 0);
    }

    private void configSet(Channel c, int config, ScmiResponse response) {
        int round = (config >>> CONFIG_ROUND_SHIFT) & 0x3;
        if ((config & CONFIG_RESERVED) != 0 || round == 3) {
            response.status(ScmiStatus.INVALID_PARAMETERS);
            return;
        }
        if ((config & CONFIG_TIMESTAMP) != 0) {
            response.status(ScmiStatus.NOT_SUPPORTED); // no sensor here is timestamped
            return;
        }
        int seconds = config >>> 16;
        if (seconds != 0) { // 0 keeps the current interval (Linux's scmi_iio enables with 0)
            int exponent = (config << 16) >> 27; // bits 15:11, sign-extended
            long nanos = intervalNanos(seconds, exponent);
            if (nanos < MIN_INTERVAL_NANOS) {
                seconds = 1;
                exponent = -2;
            } else if (nanos > MAX_INTERVAL_NANOS) {
                seconds = 3600;
                exponent = 0;
            }
            c.intervalSeconds = seconds;
            c.intervalExponent = exponent;
            c.intervalNanos = intervalNanos(seconds, exponent);
        }
        c.enabled = (config & CONFIG_ENABLED) != 0;
        reschedule(c);
        response.status(ScmiStatus.SUCCESS);
    }

    private void notifySet(Channel c, int messageId, int control, ScmiResponse response) {
        if ((control & ~1) != 0) {
            response.status(ScmiStatus.INVALID_PARAMETERS);
            return;
        }
        if (!eventsAvailable) {
            response.status(ScmiStatus.NOT_SUPPORTED);
            return;
        }
        if (messageId == SENSOR_CONTINUOUS_UPDATE_NOTIFY) {
            c.updateNotify = control == 1;
        } else {
            c.tripNotify = control == 1;
        }
        reschedule(c);
        response.status(ScmiStatus.SUCCESS);
    }

    private void tripPointConfig(Channel c, ScmiRequest request, ScmiResponse response) {
        int control = request.parameter(1);
        int tripId = (control >>> 4) & 0xFF;
        if (!eventsAvailable) {
            response.status(ScmiStatus.NOT_SUPPORTED);
            return;
        }
        if (tripId >= TRIP_POINTS || (control & 0xC) != 0) {
            response.status(ScmiStatus.INVALID_PARAMETERS);
            return;
        }
        c.tripControl[tripId] = control & 0x3; // 0 off, 1 rising, 2 falling, 3 both
        c.tripValue[tripId] = Integer.toUnsignedLong(request.parameter(2)) | (long) request.parameter(3) << 32;
        reschedule(c);
        response.status(ScmiStatus.SUCCESS);
    }

    private void reschedule(Channel c) {
        boolean active = eventsAvailable && c.enabled && (c.updateNotify || (c.tripNotify && c.anyTripPoint()));
        if (!active) {
            c.nextDue = Long.MAX_VALUE;
            c.haveLast = false;
        } else {
            c.nextDue = clock.getAsLong() + c.intervalNanos;
        }
    }

    /** secs × 10^exponent seconds, in nanoseconds, saturated. */
    static long intervalNanos(int seconds, int exponent) {
        double nanos = seconds * Math.pow(10, exponent + 9);
        return nanos >= Long.MAX_VALUE ? Long.MAX_VALUE : (long) nanos;
    }

    private boolean read(Channel c) {
        try {
            c.sensor.read(values);
            c.lastError = null;
            return true;
        } catch (IOException | RuntimeException e) {
            String error = e.toString();
            if (!error.equals(c.lastError)) {
                c.lastError = error;
                LOG.error("scmi: sensor {} cannot be read (HARDWARE_ERROR until it can): {}", c.sensor.name(), error);
            }
            return false;
        }
    }

    /** value_low, value_high and a zero timestamp (no sensor is timestamped) per axis. */
    private void putReadings(Channel c, ScmiResponse response) {
        for (int i = 0; i < c.readings; i++) {
            response.putLong(values[i]).putLong(0);
        }
    }

    /** When something is next due (System.nanoTime scale), or Long.MAX_VALUE for nothing. */
    public long nextDeadline() {
        long next = pendingCount > 0 && !waitingForBuffer ? pendingSince : Long.MAX_VALUE;
        for (Channel c : channels) {
            next = Math.min(next, c.nextDue);
        }
        return next;
    }

    /** The agent posted event buffers: retry the delayed responses that found none. */
    public void eventBuffersPosted() {
        waitingForBuffer = false;
    }

    /** Sends the delayed responses pending, then the notifications due by {@code now}. */
    public void emitDue(long now, EventChannel events) {
        while (pendingCount > 0 && !waitingForBuffer) {
            int header = pendingHeader[pendingFirst];
            int id = pendingSensor[pendingFirst];
            Channel c = channels[id];
            ScmiResponse message = events.begin(ScmiHeader.delayedResponse(header));
            if (read(c)) {
                message.status(ScmiStatus.SUCCESS).putInt(id);
                putReadings(c, message);
            } else {
                message.status(ScmiStatus.HARDWARE_ERROR);
            }
            if (!events.send()) {
                waitingForBuffer = true;
                break;
            }
            pendingFirst = (pendingFirst + 1) % MAX_PENDING_ASYNC;
            pendingCount--;
            pendingSince = now;
        }
        for (int id = 0; id < channels.length; id++) {
            Channel c = channels[id];
            if (c.nextDue > now) {
                continue;
            }
            c.nextDue += c.intervalNanos;
            if (c.nextDue <= now) {
                c.nextDue = now + c.intervalNanos; // missed ticks are skipped, not caught up
            }
            if (!read(c)) {
                continue;
            }
            if (c.updateNotify) {
                ScmiResponse message = events.begin(ScmiHeader.notification(ID, SENSOR_UPDATE));
                message.putInt(BaseProtocol.PLATFORM_AGENT_ID).putInt(id);
                putReadings(c, message);
                sendNotification(events);
            }
            if (c.tripNotify) {
                checkTripPoints(id, c, events);
            }
        }
    }

    private void checkTripPoints(int id, Channel c, EventChannel events) {
        long value = values[0];
        if (c.haveLast) {
            for (int t = 0; t < TRIP_POINTS; t++) {
                long threshold = c.tripValue[t];
                boolean rising = c.lastValue < threshold && value >= threshold;
                boolean falling = c.lastValue > threshold && value <= threshold;
                if ((rising && (c.tripControl[t] & 1) != 0) || (falling && (c.tripControl[t] & 2) != 0)) {
                    // trip_point_desc: trip id 7:0, direction bit 16 (1 = crossed going down)
                    events.begin(ScmiHeader.notification(ID, SENSOR_TRIP_POINT_EVENT))
                            .putInt(BaseProtocol.PLATFORM_AGENT_ID).putInt(id).putInt(t | (falling ? 1 << 16 : 0));
                    sendNotification(events);
                }
            }
        }
        c.haveLast = true;
        c.lastValue = value;
    }

    private void sendNotification(EventChannel events) {
        if (!events.send()) {
            droppedNotifications++;
            if (droppedNotifications == 1 || (droppedNotifications & 1023) == 0) {
                LOG.warn("scmi: no event buffer posted, {} notification(s) dropped so far", droppedNotifications);
            }
        }
    }

    public int sensorCount() {
        return channels.length;
    }
}
