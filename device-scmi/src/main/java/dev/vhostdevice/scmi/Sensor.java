package dev.vhostdevice.scmi;

import java.io.IOException;

/**
 * A sensor the platform exposes through the Sensor protocol: the host seam of this device ({@link
 * FakeAccelerometer} simulated, {@link IioSensor} a Linux IIO channel).
 *
 * <p>Readings are integers in the sensor's unit times 10 to the {@link #exponent()}: the SCMI representation,
 * so no conversion happens per reading in the protocol. Called on the device's worker only.
 */
public interface Sensor {
    /** Up to 15 ASCII characters (longer names are cut). */
    String name();

    /** 0 for a scalar sensor, else the number of axes (up to {@link SensorProtocol#MAX_AXES}). */
    int axisCount();

    /** The SCMI sensor type (unit), e.g. {@link SensorUnit#METERS_SEC_SQUARED}. */
    int unit();

    /** The power of ten of the unit, -16 to 15. */
    int exponent();

    /** Axis {@code axis}'s name: Linux's scmi_iio wants names ending in X, Y and Z. */
    String axisName(int axis);

    /** Fills {@code values[0 .. max(1, axisCount) - 1]} with the current readings. */
    void read(long[] values) throws IOException;
}
