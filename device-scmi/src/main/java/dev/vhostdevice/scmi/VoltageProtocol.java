package dev.vhostdevice.scmi;

import java.util.List;

/**
 * The Voltage domain management protocol (0x17), version 1.0 (DEN0056 v3.0 §4.9), over simulated regulators:
 * each has a level range in microvolts (min, max, step, reported as one segmented triplet), a level and a mode
 * (off or on) the agent sets and reads back. Every message of the version is implemented; asynchronous level
 * setting is not offered (its flag answers NOT_SUPPORTED).
 */
public final class VoltageProtocol extends ScmiProtocol {
    public static final int ID = 0x17;
    public static final int VERSION = 0x1_0000;
    public static final int VOLTAGE_DOMAIN_ATTRIBUTES = 0x3;
    public static final int VOLTAGE_DESCRIBE_LEVELS = 0x4;
    public static final int VOLTAGE_CONFIG_SET = 0x5;
    public static final int VOLTAGE_CONFIG_GET = 0x6;
    public static final int VOLTAGE_LEVEL_SET = 0x7;
    public static final int VOLTAGE_LEVEL_GET = 0x8;
    /** Architectural modes (config bits 3:0): off and on. */
    public static final int CONFIG_OFF = 0x0;
    public static final int CONFIG_ON = 0x7;
    static final int LEVEL_SET_ASYNC = 1;
    static final int LEVELS_SEGMENTED = 1 << 12;

    /** A simulated regulator: levels {@code min} to {@code max} µV in steps of {@code step}, starting at {@code level}. */
    public record Domain(String name, int level, int min, int max, int step, boolean on) {
        public Domain {
            if (max < min || step < 1 || level < min || level > max || ((long) level - min) % step != 0) {
                throw new IllegalArgumentException("voltage " + name + ": need min <= level <= max, step >= 1 and"
                        + " level - min a multiple of step (min=" + min + ", level=" + level + ", max=" + max
                        + ", step=" + step + ")");
            }
        }
    }

    private final Domain[] initial;
    private final byte[][] names;
    private final int[] level;
    private final int[] config;

    public VoltageProtocol(List<Domain> domains) {
        super(ID, VERSION, domains.size());
        initial = domains.toArray(Domain[]::new);
        names = wireNames(domains.stream().map(Domain::name).toList());
        level = new int[initial.length];
        config = new int[initial.length];
        reset();
    }

    @Override
    public void reset() {
        for (int i = 0; i < initial.length; i++) {
            level[i] = initial[i].level();
            config[i] = initial[i].on() ? CONFIG_ON : CONFIG_OFF;
        }
    }

    @Override
    protected int parameterCount(int messageId) {
        return switch (messageId) {
            case VOLTAGE_DOMAIN_ATTRIBUTES, VOLTAGE_CONFIG_GET, VOLTAGE_LEVEL_GET -> 1;
            case VOLTAGE_DESCRIBE_LEVELS, VOLTAGE_CONFIG_SET -> 2;
            case VOLTAGE_LEVEL_SET -> 3;
            default -> commonParameterCount(messageId);
        };
    }

    @Override
    protected void protocolAttributes(ScmiResponse response) {
        response.putInt(initial.length); // domains 15:0
    }

    @Override
    protected void handle(ScmiRequest request, ScmiResponse response) {
        int id = request.parameter(0);
        if (id < 0 || id >= initial.length) {
            response.status(ScmiStatus.NOT_FOUND);
            return;
        }
        Domain d = initial[id];
        switch (request.messageId()) {
            case VOLTAGE_DOMAIN_ATTRIBUTES -> response.status(ScmiStatus.SUCCESS).putInt(0).putName(names[id]);
            case VOLTAGE_DESCRIBE_LEVELS -> {
                if (request.parameter(1) != 0) {
                    response.status(ScmiStatus.INVALID_PARAMETERS); // one triplet, all at index 0
                    return;
                }
                response.status(ScmiStatus.SUCCESS).putInt(3 | LEVELS_SEGMENTED)
                        .putInt(d.min()).putInt(d.max()).putInt(d.step());
            }
            case VOLTAGE_CONFIG_SET -> {
                int mode = request.parameter(1);
                if (mode != CONFIG_OFF && mode != CONFIG_ON) {
                    response.status(ScmiStatus.INVALID_PARAMETERS);
                    return;
                }
                config[id] = mode;
                response.status(ScmiStatus.SUCCESS);
            }
            case VOLTAGE_CONFIG_GET -> response.status(ScmiStatus.SUCCESS).putInt(config[id]);
            case VOLTAGE_LEVEL_SET -> {
                int flags = request.parameter(1);
                int wanted = request.parameter(2);
                if ((flags & ~LEVEL_SET_ASYNC) != 0) {
                    response.status(ScmiStatus.INVALID_PARAMETERS);
                } else if (flags != 0) {
                    response.status(ScmiStatus.NOT_SUPPORTED);
                } else if (wanted < d.min() || wanted > d.max()) {
                    response.status(ScmiStatus.OUT_OF_RANGE);
                } else if (((long) wanted - d.min()) % d.step() != 0) {
                    response.status(ScmiStatus.INVALID_PARAMETERS);
                } else {
                    level[id] = wanted;
                    response.status(ScmiStatus.SUCCESS);
                }
            }
            case VOLTAGE_LEVEL_GET -> response.status(ScmiStatus.SUCCESS).putInt(level[id]);
            default -> response.status(ScmiStatus.NOT_SUPPORTED);
        }
    }
}
