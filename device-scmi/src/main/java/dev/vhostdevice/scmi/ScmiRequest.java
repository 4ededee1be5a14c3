package dev.vhostdevice.scmi;

/**
 * One command as the agent sent it: the header and its 32-bit little-endian parameters. Reused for every
 * request (no allocation); a command longer than {@link #MAX_PARAMETERS} words fits no message of any protocol
 * and is refused before it reaches one.
 */
public final class ScmiRequest {
    /** More than the longest command of every protocol here (CLOCK_RATE_SET and SENSOR_TRIP_POINT_CONFIG: 4). */
    public static final int MAX_PARAMETERS = 8;

    private int header;
    private final int[] parameters = new int[MAX_PARAMETERS];
    private int count;

    /** Starts a new request with {@code header} and no parameters. */
    public ScmiRequest reset(int newHeader) {
        header = newHeader;
        count = 0;
        return this;
    }

    /** Appends a parameter; false when there is no room (the request is too long for any message). */
    public boolean add(int value) {
        if (count == MAX_PARAMETERS) {
            return false;
        }
        parameters[count++] = value;
        return true;
    }

    public int header() {
        return header;
    }

    public int messageId() {
        return ScmiHeader.messageId(header);
    }

    public int protocolId() {
        return ScmiHeader.protocolId(header);
    }

    public int parameterCount() {
        return count;
    }

    /** Parameter {@code index} (0-based); the caller checked the count. */
    public int parameter(int index) {
        if (index >= count) {
            throw new IndexOutOfBoundsException("parameter " + index + " of " + count);
        }
        return parameters[index];
    }
}
