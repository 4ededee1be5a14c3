package dev.vhostdevice.scmi;

/**
 * The 32-bit SCMI message header (DEN0056 §4.1.2): message id bits 7:0, message type 9:8, protocol id 17:10,
 * token 27:18, bits 31:28 reserved. A response echoes its command's header unchanged.
 */
public final class ScmiHeader {
    public static final int TYPE_COMMAND = 0;
    public static final int TYPE_DELAYED_RESPONSE = 2;
    public static final int TYPE_NOTIFICATION = 3;

    private ScmiHeader() {
    }

    public static int messageId(int header) {
        return header & 0xFF;
    }

    public static int type(int header) {
        return (header >>> 8) & 0x3;
    }

    public static int protocolId(int header) {
        return (header >>> 10) & 0xFF;
    }

    public static int token(int header) {
        return (header >>> 18) & 0x3FF;
    }

    public static int of(int protocolId, int messageId, int type, int token) {
        return (messageId & 0xFF) | (type & 0x3) << 8 | (protocolId & 0xFF) << 10 | (token & 0x3FF) << 18;
    }

    /** The header of a notification: token 0 (the spec leaves it to the platform; Linux ignores it). */
    public static int notification(int protocolId, int messageId) {
        return of(protocolId, messageId, TYPE_NOTIFICATION, 0);
    }

    /** The delayed response to {@code command}: same id, protocol and token, type 2. */
    public static int delayedResponse(int command) {
        return (command & ~(0x3 << 8)) | TYPE_DELAYED_RESPONSE << 8;
    }
}
