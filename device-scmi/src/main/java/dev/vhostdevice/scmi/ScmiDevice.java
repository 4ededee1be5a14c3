package dev.vhostdevice.scmi;

import dev.vhostdevice.vhostuser.device.DeviceContext;
import dev.vhostdevice.vhostuser.device.DeviceQueue;
import dev.vhostdevice.vhostuser.device.VirtioDevice;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.Chain;
import dev.vhostdevice.virtqueue.ChainReader;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.io.UncheckedIOException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * virtio-scmi (virtio 1.2 §5.17, device id 32): the cmdq (queue 0) carries the agent's commands, each a chain
 * of a readable request (header + 32-bit parameters) and a writable buffer for the response (header, status,
 * return values); the eventq (queue 1), present with VIRTIO_SCMI_F_P2A_CHANNELS, takes writable buffers the
 * device fills with notifications and delayed responses. No config space.
 *
 * <p>Bad input never stops the device: a chain the walker refused, one with no writable byte, a request shorter
 * than a header, or a response buffer too small for header and status completes with length 0; everything else
 * gets a response with a status ({@link ScmiPlatform}). Eventq buffers that are readable or too small for the
 * message are returned with length 0 and the message goes into the next one.
 *
 * <p>Timing (notification intervals, delayed responses) runs on one timerfd watched by the worker, re-armed for
 * the earliest deadline: no thread of its own. Allocates nothing per request.
 */
public final class ScmiDevice implements VirtioDevice, EventChannel {
    public static final int VIRTIO_ID_SCMI = 32;
    public static final int VIRTIO_SCMI_F_P2A_CHANNELS = 0;
    public static final int CMDQ = 0;
    public static final int EVENTQ = 1;
    /** As upstream: a virtio-mmio transport wants room for Linux's 1024-entry default. */
    public static final int MAX_QUEUE_SIZE = 1024;
    private static final int HEADER_BYTES = 4;
    private static final int TIMER_TOKEN = 1;
    private static final Logger LOG = LoggerFactory.getLogger(ScmiDevice.class);

    private final ScmiPlatform platform;
    private final Linux linux;
    private final java.util.function.LongSupplier clock;
    private final Chain command = new Chain();
    private final Chain event = new Chain();
    private final ScmiRequest request = new ScmiRequest();
    private final ScmiResponse response = new ScmiResponse();
    private final ScmiResponse eventMessage = new ScmiResponse();
    private DeviceContext context;
    private int timerFd = -1;
    /** The deadline the timer is armed for; Long.MAX_VALUE when disarmed or already fired. */
    private long armedFor = Long.MAX_VALUE;
    private long refused;

    public ScmiDevice(ScmiPlatform platform) {
        this(platform, Linux.system(), System::nanoTime);
    }

    ScmiDevice(ScmiPlatform platform, Linux linux, java.util.function.LongSupplier clock) {
        this.platform = platform;
        this.linux = linux;
        this.clock = clock;
    }

    @Override
    public int queueCount() {
        return 2;
    }

    @Override
    public int maxQueueSize() {
        return MAX_QUEUE_SIZE;
    }

    @Override
    public long deviceFeatures() {
        return 1L << VIRTIO_SCMI_F_P2A_CHANNELS;
    }

    @Override
    public void attach(DeviceContext deviceContext) {
        context = deviceContext;
        try {
            timerFd = linux.timerfd();
        } catch (ErrnoException e) {
            throw new UncheckedIOException("scmi: cannot create the notification timer", e);
        }
        context.watchFd(timerFd, Linux.EPOLLIN, TIMER_TOKEN);
    }

    @Override
    public void featuresAcked(long features) {
        platform.setEventsAvailable((features & (1L << VIRTIO_SCMI_F_P2A_CHANNELS)) != 0);
    }

    @Override
    public void handleQueue(DeviceQueue queue) {
        if (queue.index() == CMDQ) {
            while (queue.pop(command)) {
                serve(command);
                queue.complete(command);
            }
            // A delayed response is due at once, yet goes out from the timer: after the command's own response
            // has been published and signalled.
            rearm(false);
        } else {
            platform.sensors().eventBuffersPosted(); // what waited for a buffer may go now
            rearm(true);
        }
    }

    /** Answers one command chain; the used length is what the writer wrote (0 for a refused chain). */
    private void serve(Chain chain) {
        if (!chain.isValid()) {
            return; // the walker logged why
        }
        long writable = chain.writableBytes();
        if (chain.readableBytes() < HEADER_BYTES || writable < 2 * HEADER_BYTES) {
            refuse(chain, chain.readableBytes() < HEADER_BYTES ? "request shorter than the 4-byte header"
                    : "response buffer shorter than header and status");
            return;
        }
        ChainReader reader = chain.reader();
        int header = reader.readInt();
        request.reset(header);
        response.begin(header, writable);
        long payload = chain.readableBytes() - HEADER_BYTES;
        if (payload % 4 != 0 || payload > 4L * ScmiRequest.MAX_PARAMETERS) {
            response.status(ScmiStatus.PROTOCOL_ERROR);
        } else {
            for (long i = 0; i < payload; i += 4) {
                request.add(reader.readInt());
            }
            platform.process(request, response);
        }
        chain.writer().write(response.buffer(), 0, response.length());
    }

    private void refuse(Chain chain, String why) {
        refused++;
        if (refused <= 16 || (refused & 1023) == 0) {
            LOG.warn("scmi: command at head {} answered with length 0: {} ({} so far; the device carries on)",
                    chain.head(), why, refused);
        }
    }

    // ------------------------------------------------------------------ the event channel (eventq)

    @Override
    public ScmiResponse begin(int header) {
        return eventMessage.begin(header, ScmiResponse.CAPACITY);
    }

    @Override
    public boolean send() {
        DeviceQueue eventq = context.queue(EVENTQ);
        if (!eventq.isReady()) {
            return false;
        }
        while (eventq.pop(event)) {
            if (event.isValid() && event.readableBytes() == 0 && event.writableBytes() >= eventMessage.length()) {
                event.writer().write(eventMessage.buffer(), 0, eventMessage.length());
                eventq.complete(event);
                return true;
            }
            if (event.isValid()) {
                refuse(event, "event buffer readable or shorter than the " + eventMessage.length() + "-byte message");
            }
            eventq.complete(event); // length 0; the message goes into the next buffer
        }
        return false;
    }

    @Override
    public void handleHostFd(int token, int readyEvents) {
        if (token != TIMER_TOKEN) {
            return;
        }
        try {
            linux.readEventfd(timerFd); // the expiration count; a timerfd reads like an eventfd
        } catch (ErrnoException e) {
            LOG.warn("scmi: reading the notification timer: {}", e.toString());
        }
        armedFor = Long.MAX_VALUE;
        rearm(true);
    }

    /**
     * Sends what is due (if {@code emit}), then arms the timer for the next deadline if it is earlier than the
     * one armed.
     */
    private void rearm(boolean emit) {
        long now = clock.getAsLong();
        SensorProtocol sensors = platform.sensors();
        if (emit && sensors.nextDeadline() <= now) {
            sensors.emitDue(now, this);
        }
        long next = sensors.nextDeadline();
        if (next == Long.MAX_VALUE || next >= armedFor) {
            return;
        }
        try {
            linux.armTimer(timerFd, Math.max(1, next - now));
            armedFor = next;
        } catch (ErrnoException e) {
            LOG.error("scmi: cannot arm the notification timer; notifications wait for the next command: {}",
                    e.toString());
        }
    }

    @Override
    public void reset() {
        platform.reset();
    }

    @Override
    public void close() {
        if (timerFd >= 0) {
            context.unwatchFd(timerFd);
            linux.close(timerFd);
            timerFd = -1;
        }
    }
}
