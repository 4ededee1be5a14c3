package dev.vhostdevice.vhostuser.protocol;

/**
 * A message the engine refuses. {@link #isFraming()} errors leave the stream untrustworthy and close the
 * connection; the others are answered (a failure reply where the spec has one) and the connection stays.
 */
public class ProtocolException extends Exception {
    private final boolean framing;

    public ProtocolException(String message, boolean framing) {
        super(message);
        this.framing = framing;
    }

    public static ProtocolException framing(String message) {
        return new ProtocolException(message, true);
    }

    public static ProtocolException invalid(String message) {
        return new ProtocolException(message, false);
    }

    public boolean isFraming() {
        return framing;
    }
}
