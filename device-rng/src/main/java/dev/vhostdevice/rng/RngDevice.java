package dev.vhostdevice.rng;

import dev.vhostdevice.vhostuser.device.DeviceContext;
import dev.vhostdevice.vhostuser.device.DeviceQueue;
import dev.vhostdevice.vhostuser.device.VirtioDevice;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.Chain;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.io.IOException;
import java.io.UncheckedIOException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * virtio-rng (virtio 1.2 §5.4, device id 4): one request queue; each chain's writable buffers, however many and
 * whether direct or indirect, are filled from the entropy source, and the used length is the bytes written.
 *
 * <p>A chain with readable buffers is refused (completed with length 0), as is any chain the walker refused.
 * The rate limiter never sleeps: past the period's budget, requests stay in the ring and a timer resumes them
 * when the period rolls over, so control messages and other queues are never held up. A failing source or one
 * at end of file is reported once and the guest's requests are still answered (with 0 bytes).
 */
public final class RngDevice implements VirtioDevice {
    public static final int VIRTIO_ID_RNG = 4;
    public static final int MAX_QUEUE_SIZE = 1024;
    /**
     * The most one request gets: a guest may offer gigabytes in one chain, and filling them would hold the worker
     * (and the control messages queued behind it) for seconds. A short answer is valid virtio-rng; the driver
     * asks again.
     */
    public static final long MAX_BYTES_PER_REQUEST = 1 << 20;
    private static final Logger LOG = LoggerFactory.getLogger(RngDevice.class);
    private static final int REQUEST_QUEUE = 0;
    private static final int TIMER_TOKEN = 1;

    private final EntropySource source;
    private final RateLimiter limiter;
    private final Linux linux;
    private final Chain chain = new Chain();
    private DeviceContext context;
    private int timerFd = -1;
    /** Budget spent: waiting for the timer, requests stay in the ring. */
    private boolean throttled;
    private boolean endOfSourceReported;
    private String lastSourceError;
    private long refusedChains;
    /** Requests completed since the last mid-batch notification check. */
    private int completedSinceCheck;

    /**
     * A device reading {@code source}, serving at most {@code maxBytes} per {@code periodMillis}
     * ({@link RateLimiter#UNLIMITED} for no limit).
     */
    public RngDevice(EntropySource source, long maxBytes, int periodMillis) {
        this(source, new RateLimiter(maxBytes, periodMillis * 1_000_000L, System::nanoTime), Linux.system());
    }

    RngDevice(EntropySource source, RateLimiter limiter, Linux linux) {
        this.source = source;
        this.limiter = limiter;
        this.linux = linux;
    }

    @Override
    public int queueCount() {
        return 1;
    }

    @Override
    public int maxQueueSize() {
        return MAX_QUEUE_SIZE;
    }

    @Override
    public long deviceFeatures() {
        return 0; // virtio-rng defines no feature bits
    }

    @Override
    public void attach(DeviceContext deviceContext) {
        context = deviceContext;
        if (!limiter.isUnlimited()) {
            try {
                timerFd = linux.timerfd();
            } catch (ErrnoException e) {
                throw new UncheckedIOException("rng: cannot create the rate-limit timer", e);
            }
            context.watchFd(timerFd, Linux.EPOLLIN, TIMER_TOKEN);
        }
    }

    @Override
    public void handleQueue(DeviceQueue queue) {
        while (!throttled) {
            long budget = limiter.allowance(MAX_BYTES_PER_REQUEST);
            if (budget == 0) {
                throttle();
                continue; // throttled ends the loop; a timer that could not be armed suspended the limit instead
            }
            if (!queue.pop(chain)) {
                return;
            }
            serve(chain, budget);
            queue.complete(chain);
            if (++completedSinceCheck >= halfRing(queue)) {
                // Half a ring served in this batch: tell the driver now if it asked (EVENT_IDX's used_event, or no
                // NO_INTERRUPT), so a driver that re-posts what comes back refills the ring while the other half is
                // read, instead of after the batch, when the ring has run dry and the device sleeps until its kick.
                // At most one more call per half ring than once per batch; a call per request would cost more
                // than the stall it avoids.
                completedSinceCheck = 0;
                queue.notifyIfNeeded();
            }
        }
    }

    private static int halfRing(DeviceQueue queue) {
        return Math.max(1, queue.splitQueue().size() / 2);
    }

    /** Fills at most {@code budget} bytes of the request's writable buffers. */
    private void serve(Chain request, long budget) {
        if (!request.isValid()) {
            return; // the walker logged why; the request completes with 0 bytes
        }
        if (request.readableBytes() > 0) {
            refusedChains++;
            if (refusedChains == 1 || (refusedChains & 1023) == 0) {
                LOG.warn("rng: request with {} device-readable bytes refused (length 0); {} so far",
                        request.readableBytes(), refusedChains);
            }
            return;
        }
        try {
            long written = request.writer().writeFrom(source, budget);
            if (written < 0) {
                reportEndOfSource();
                return;
            }
            limiter.consume(written);
            lastSourceError = null;
        } catch (IOException e) {
            reportSourceError(e);
        }
    }

    private void reportEndOfSource() {
        if (!endOfSourceReported) {
            endOfSourceReported = true;
            LOG.error("rng: source {} reached end of file; requests are answered with 0 bytes", source.name());
        }
    }

    private void reportSourceError(IOException e) {
        String error = e.toString();
        if (!error.equals(lastSourceError)) {
            lastSourceError = error;
            LOG.error("rng: reading source {} failed; requests are answered with 0 bytes until it works: {}",
                    source.name(), error);
        }
    }

    private void throttle() {
        throttled = true;
        try {
            linux.armTimer(timerFd, limiter.nanosUntilRefill());
        } catch (ErrnoException e) {
            // Without a timer the ring would stall for good: serve on rather than starve the guest.
            LOG.error("rng: cannot arm the rate-limit timer, limit suspended for this period: {}", e.toString());
            limiter.suspendForPeriod();
            throttled = false;
        }
    }

    @Override
    public void handleHostFd(int token, int readyEvents) {
        if (token != TIMER_TOKEN) {
            return;
        }
        try {
            linux.readEventfd(timerFd); // a timerfd reads like an eventfd: the expiration count
        } catch (ErrnoException e) {
            LOG.warn("rng: reading the rate-limit timer: {}", e.toString());
        }
        throttled = false;
        DeviceQueue queue = context.queue(REQUEST_QUEUE);
        if (queue.isReady()) {
            queue.service(this);
        }
    }

    @Override
    public void reset() {
        throttled = false;
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
