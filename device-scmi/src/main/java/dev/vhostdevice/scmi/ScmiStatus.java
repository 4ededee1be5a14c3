package dev.vhostdevice.scmi;

/** SCMI status codes (DEN0056 §4.1.4), carried as a signed 32-bit integer after the header of every response. */
public enum ScmiStatus {
    SUCCESS(0),
    NOT_SUPPORTED(-1),
    INVALID_PARAMETERS(-2),
    DENIED(-3),
    NOT_FOUND(-4),
    OUT_OF_RANGE(-5),
    BUSY(-6),
    COMMS_ERROR(-7),
    GENERIC_ERROR(-8),
    HARDWARE_ERROR(-9),
    PROTOCOL_ERROR(-10);

    public final int code;

    ScmiStatus(int code) {
        this.code = code;
    }
}
