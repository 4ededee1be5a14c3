package dev.vhostdevice.scmi;

/**
 * One SCMI protocol of the platform. The three messages every protocol has (PROTOCOL_VERSION,
 * PROTOCOL_ATTRIBUTES, PROTOCOL_MESSAGE_ATTRIBUTES) and the length check are here; a protocol declares which
 * message ids it implements with how many parameters, and answers the rest in {@link #handle}.
 *
 * <p>Every handler writes the status first and the return values after it, and checks its parameters before
 * writing anything, so a refusal is always exactly header + status.
 */
public abstract class ScmiProtocol {
    public static final int PROTOCOL_VERSION = 0x0;
    public static final int PROTOCOL_ATTRIBUTES = 0x1;
    public static final int PROTOCOL_MESSAGE_ATTRIBUTES = 0x2;
    /** Marks a message id the protocol does not implement in {@link #parameterCount}. */
    protected static final int NOT_IMPLEMENTED = -1;

    private final int id;
    private final int version;
    /** How many resources (sensors, clocks, domains) it has; one with none is not listed. */
    private final int resources;

    /**
     * @param id        the protocol id (0x10 base, 0x11 power, 0x14 clock, 0x15 sensor, 0x17 voltage)
     * @param version   PROTOCOL_VERSION's value: major in bits 31:16, minor in 15:0
     * @param resources its sensors, clocks or domains (-1: listed whatever it has, as base and sensor)
     */
    protected ScmiProtocol(int id, int version, int resources) {
        this.id = id;
        this.version = version;
        this.resources = resources;
    }

    public final int id() {
        return id;
    }

    public final int version() {
        return version;
    }

    /** How many 32-bit parameters message {@code messageId} takes, or {@link #NOT_IMPLEMENTED}. */
    protected abstract int parameterCount(int messageId);

    /** PROTOCOL_ATTRIBUTES' return values (after the status). */
    protected abstract void protocolAttributes(ScmiResponse response);

    /** Any implemented message but the three common ones: status, then return values. */
    protected abstract void handle(ScmiRequest request, ScmiResponse response);

    /** PROTOCOL_MESSAGE_ATTRIBUTES' attributes word of an implemented message (0: nothing to report). */
    protected int messageAttributes(int messageId) {
        return 0;
    }

    /** Whether DISCOVER_LIST_PROTOCOLS names it (and the platform routes to it): it has resources for the agent. */
    public final boolean listed() {
        return resources != 0;
    }

    /** The 16-byte wire names of {@code names}, prepared once. */
    protected static byte[][] wireNames(java.util.List<String> names) {
        return names.stream().map(ScmiResponse::name).toArray(byte[][]::new);
    }

    /** Back to the state at start-up (a device reset or a new guest). */
    public void reset() {
    }

    /** Answers one command of this protocol (the header is in the response already). */
    final void dispatch(ScmiRequest request, ScmiResponse response) {
        int messageId = request.messageId();
        int parameters = parameterCount(messageId);
        if (parameters == NOT_IMPLEMENTED) {
            response.status(ScmiStatus.NOT_SUPPORTED);
            return;
        }
        if (request.parameterCount() != parameters) {
            response.status(ScmiStatus.PROTOCOL_ERROR);
            return;
        }
        switch (messageId) {
            case PROTOCOL_VERSION -> response.status(ScmiStatus.SUCCESS).putInt(version());
            case PROTOCOL_ATTRIBUTES -> {
                response.status(ScmiStatus.SUCCESS);
                protocolAttributes(response);
            }
            case PROTOCOL_MESSAGE_ATTRIBUTES -> {
                int asked = request.parameter(0);
                if (asked < 0 || asked > 0xFF || parameterCount(asked) == NOT_IMPLEMENTED) {
                    response.status(ScmiStatus.NOT_FOUND);
                } else {
                    response.status(ScmiStatus.SUCCESS).putInt(messageAttributes(asked));
                }
            }
            default -> handle(request, response);
        }
    }

    /** Parameter counts of the three common messages; protocols start their tables from it. */
    protected static int commonParameterCount(int messageId) {
        return switch (messageId) {
            case PROTOCOL_VERSION, PROTOCOL_ATTRIBUTES -> 0;
            case PROTOCOL_MESSAGE_ATTRIBUTES -> 1;
            default -> NOT_IMPLEMENTED;
        };
    }
}
