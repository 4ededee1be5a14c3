package dev.vhostdevice.rng;

import java.util.function.LongSupplier;

/**
 * A byte budget per period: at most {@code maxBytes} bytes in each period of {@code periodNanos}. A period
 * starts with the first request after the previous one ended. The limiter never waits: it says how much may be
 * served now and when the budget comes back.
 */
final class RateLimiter {
    /** No limit: {@code --max-bytes} not given. */
    static final long UNLIMITED = Long.MAX_VALUE;

    private final long maxBytes;
    private final long periodNanos;
    private final LongSupplier clock;
    private long periodStart;
    private long remaining;
    private boolean started;

    RateLimiter(long maxBytes, long periodNanos, LongSupplier clock) {
        if (maxBytes < 0 || periodNanos <= 0) {
            throw new IllegalArgumentException("bad rate limit: " + maxBytes + " bytes per " + periodNanos + " ns");
        }
        this.maxBytes = maxBytes;
        this.periodNanos = periodNanos;
        this.clock = clock;
    }

    boolean isUnlimited() {
        return maxBytes == UNLIMITED;
    }

    /** How many of {@code wanted} bytes may be served now; the caller then {@link #consume}s what it served. */
    long allowance(long wanted) {
        if (isUnlimited()) {
            return wanted;
        }
        long now = clock.getAsLong();
        if (!started || now - periodStart >= periodNanos) {
            started = true;
            periodStart = now;
            remaining = maxBytes;
        }
        return Math.min(wanted, remaining);
    }

    void consume(long bytes) {
        if (!isUnlimited()) {
            remaining -= bytes;
        }
    }

    /** Lifts the limit until the current period ends (when nothing could wake a throttled queue). */
    void suspendForPeriod() {
        remaining = Long.MAX_VALUE;
    }

    /** Nanoseconds until the current period ends and the budget is full again (at least 1). */
    long nanosUntilRefill() {
        return Math.max(1, periodStart + periodNanos - clock.getAsLong());
    }
}
