package dev.vhostdevice.scmi;

import java.util.List;

/**
 * The Clock management protocol (0x14), version 1.0 (DEN0056 v2.0 §4.6), over simulated clocks: each has a
 * rate range (min, max, step) the agent can set within, and an enabled state; the rate and state read back
 * as set. Every mandatory message is implemented; the optional notifications are not, and no request is
 * asynchronous (max pending 0, the async flag answers NOT_SUPPORTED).
 */
public final class ClockProtocol extends ScmiProtocol {
    public static final int ID = 0x14;
    public static final int VERSION = 0x1_0000;
    public static final int CLOCK_ATTRIBUTES = 0x3;
    public static final int CLOCK_DESCRIBE_RATES = 0x4;
    public static final int CLOCK_RATE_SET = 0x5;
    public static final int CLOCK_RATE_GET = 0x6;
    public static final int CLOCK_CONFIG_SET = 0x7;
    static final int RATE_SET_ASYNC = 1;
    static final int RATE_SET_IGNORE_DELAYED = 1 << 1;
    static final int RATE_SET_ROUND_UP = 1 << 2;
    static final int RATE_SET_ROUND_AUTO = 1 << 3;
    static final int CONFIG_ENABLE = 1;
    /** CLOCK_DESCRIBE_RATES' flag for the (min, max, step) triplet format. */
    static final int RATES_RANGE_FORMAT = 1 << 12;

    /** A simulated clock: rates from {@code min} to {@code max} in steps of {@code step} Hz, starting at {@code rate}. */
    public record Clock(String name, long rate, long min, long max, long step, boolean enabled) {
        public Clock {
            if (min < 0 || max < min || step < 1 || rate < min || rate > max || (rate - min) % step != 0) {
                throw new IllegalArgumentException("clock " + name + ": need 0 <= min <= rate <= max, step >= 1 and"
                        + " rate - min a multiple of step (min=" + min + ", rate=" + rate + ", max=" + max + ", step="
                        + step + ")");
            }
        }
    }

    private final Clock[] initial;
    private final byte[][] names;
    private final long[] rate;
    private final boolean[] enabled;

    public ClockProtocol(List<Clock> clocks) {
        super(ID, VERSION, clocks.size());
        initial = clocks.toArray(Clock[]::new);
        names = wireNames(clocks.stream().map(Clock::name).toList());
        rate = new long[initial.length];
        enabled = new boolean[initial.length];
        reset();
    }

    @Override
    public void reset() {
        for (int i = 0; i < initial.length; i++) {
            rate[i] = initial[i].rate();
            enabled[i] = initial[i].enabled();
        }
    }

    @Override
    protected int parameterCount(int messageId) {
        return switch (messageId) {
            case CLOCK_ATTRIBUTES, CLOCK_RATE_GET -> 1;
            case CLOCK_DESCRIBE_RATES, CLOCK_CONFIG_SET -> 2;
            case CLOCK_RATE_SET -> 4;
            default -> commonParameterCount(messageId);
        };
    }

    @Override
    protected void protocolAttributes(ScmiResponse response) {
        response.putInt(initial.length); // clocks 15:0, max pending asynchronous 23:16 = 0
    }

    @Override
    protected void handle(ScmiRequest request, ScmiResponse response) {
        int messageId = request.messageId();
        int id = request.parameter(messageId == CLOCK_RATE_SET ? 1 : 0);
        if (id < 0 || id >= initial.length) {
            response.status(ScmiStatus.NOT_FOUND);
            return;
        }
        Clock clock = initial[id];
        switch (messageId) {
            case CLOCK_ATTRIBUTES -> response.status(ScmiStatus.SUCCESS).putInt(enabled[id] ? 1 : 0).putName(names[id]);
            case CLOCK_DESCRIBE_RATES -> {
                if (request.parameter(1) != 0) {
                    response.status(ScmiStatus.INVALID_PARAMETERS); // one triplet, all at index 0
                    return;
                }
                response.status(ScmiStatus.SUCCESS).putInt(3 | RATES_RANGE_FORMAT)
                        .putLong(clock.min()).putLong(clock.max()).putLong(clock.step());
            }
            case CLOCK_RATE_SET -> rateSet(id, clock, request, response);
            case CLOCK_RATE_GET -> response.status(ScmiStatus.SUCCESS).putLong(rate[id]);
            case CLOCK_CONFIG_SET -> {
                int attributes = request.parameter(1);
                if ((attributes & ~CONFIG_ENABLE) != 0) {
                    response.status(ScmiStatus.INVALID_PARAMETERS);
                    return;
                }
                enabled[id] = attributes == CONFIG_ENABLE;
                response.status(ScmiStatus.SUCCESS);
            }
            default -> response.status(ScmiStatus.NOT_SUPPORTED);
        }
    }

    private void rateSet(int id, Clock clock, ScmiRequest request, ScmiResponse response) {
        int flags = request.parameter(0);
        if ((flags & ~(RATE_SET_ASYNC | RATE_SET_IGNORE_DELAYED | RATE_SET_ROUND_UP | RATE_SET_ROUND_AUTO)) != 0) {
            response.status(ScmiStatus.INVALID_PARAMETERS);
            return;
        }
        if ((flags & RATE_SET_ASYNC) != 0) {
            response.status(ScmiStatus.NOT_SUPPORTED);
            return;
        }
        long wanted = Integer.toUnsignedLong(request.parameter(2)) | (long) request.parameter(3) << 32;
        if (wanted < clock.min() || wanted > clock.max() || wanted < 0) {
            response.status(ScmiStatus.OUT_OF_RANGE);
            return;
        }
        long below = clock.min() + (wanted - clock.min()) / clock.step() * clock.step();
        long above = below == wanted || below + clock.step() > clock.max() ? below : below + clock.step();
        long chosen;
        if ((flags & RATE_SET_ROUND_AUTO) != 0) {
            chosen = wanted - below <= above - wanted ? below : above;
        } else if ((flags & RATE_SET_ROUND_UP) != 0) {
            chosen = above;
        } else {
            chosen = below;
        }
        rate[id] = chosen;
        response.status(ScmiStatus.SUCCESS);
    }
}
