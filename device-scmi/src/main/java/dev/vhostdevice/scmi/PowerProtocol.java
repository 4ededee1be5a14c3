package dev.vhostdevice.scmi;

import java.util.List;

/**
 * The Power domain management protocol (0x11), version 1.0 (DEN0056 v2.0 §4.3), over simulated domains that
 * take the generic states on (0) and off (bit 30 set, the rest 0), synchronously; the state reads back as set.
 * Every mandatory message is implemented; the optional POWER_STATE_NOTIFY is not, and the asynchronous flag
 * answers NOT_SUPPORTED (the domain attributes advertise synchronous setting only).
 */
public final class PowerProtocol extends ScmiProtocol {
    public static final int ID = 0x11;
    public static final int VERSION = 0x1_0000;
    public static final int POWER_DOMAIN_ATTRIBUTES = 0x3;
    public static final int POWER_STATE_SET = 0x4;
    public static final int POWER_STATE_GET = 0x5;
    public static final int STATE_ON = 0;
    public static final int STATE_OFF = 1 << 30;
    static final int STATE_SET_ASYNC = 1;
    /** POWER_DOMAIN_ATTRIBUTES: synchronous state setting supported. */
    static final int ATTR_SYNC = 1 << 29;

    /** A simulated power domain. */
    public record Domain(String name, boolean on) {
    }

    private final Domain[] initial;
    private final byte[][] names;
    private final int[] state;

    public PowerProtocol(List<Domain> domains) {
        super(ID, VERSION, domains.size());
        initial = domains.toArray(Domain[]::new);
        names = wireNames(domains.stream().map(Domain::name).toList());
        state = new int[initial.length];
        reset();
    }

    @Override
    public void reset() {
        for (int i = 0; i < initial.length; i++) {
            state[i] = initial[i].on() ? STATE_ON : STATE_OFF;
        }
    }

    @Override
    protected int parameterCount(int messageId) {
        return switch (messageId) {
            case POWER_DOMAIN_ATTRIBUTES, POWER_STATE_GET -> 1;
            case POWER_STATE_SET -> 3;
            default -> commonParameterCount(messageId);
        };
    }

    @Override
    protected void protocolAttributes(ScmiResponse response) {
        // domains 15:0; no statistics shared memory (address low, high, length)
        response.putInt(initial.length).putInt(0).putInt(0).putInt(0);
    }

    @Override
    protected void handle(ScmiRequest request, ScmiResponse response) {
        int messageId = request.messageId();
        int id = request.parameter(messageId == POWER_STATE_SET ? 1 : 0);
        if (id < 0 || id >= initial.length) {
            response.status(ScmiStatus.NOT_FOUND);
            return;
        }
        switch (messageId) {
            case POWER_DOMAIN_ATTRIBUTES -> response.status(ScmiStatus.SUCCESS).putInt(ATTR_SYNC).putName(names[id]);
            case POWER_STATE_SET -> {
                int flags = request.parameter(0);
                int wanted = request.parameter(2);
                if ((flags & ~STATE_SET_ASYNC) != 0 || (wanted != STATE_ON && wanted != STATE_OFF)) {
                    response.status(ScmiStatus.INVALID_PARAMETERS);
                } else if (flags != 0) {
                    response.status(ScmiStatus.NOT_SUPPORTED);
                } else {
                    state[id] = wanted;
                    response.status(ScmiStatus.SUCCESS);
                }
            }
            case POWER_STATE_GET -> response.status(ScmiStatus.SUCCESS).putInt(state[id]);
            default -> response.status(ScmiStatus.NOT_SUPPORTED);
        }
    }
}
