package dev.vhostdevice.scmi;

/**
 * SCMI sensor types (DEN0056 table "Sensor type enumeration") used here, and the unit each Linux IIO channel
 * type reports after its scale is applied (Documentation/ABI/testing/sysfs-bus-iio).
 *
 * @param type     the SCMI sensor type
 * @param exponent the power of ten of IIO's unit relative to the SCMI unit (IIO temperatures are milli °C: -3)
 */
public record SensorUnit(int type, int exponent) {
    public static final int UNSPECIFIED = 0x01;
    public static final int DEGREES_C = 0x02;
    public static final int VOLTS = 0x05;
    public static final int AMPS = 0x06;
    public static final int WATTS = 0x07;
    public static final int LUX = 0x0D;
    public static final int GAUSS = 0x2D;
    public static final int PERCENTAGE = 0x41;
    public static final int PASCALS = 0x42;
    public static final int RADIANS_SEC = 0x57;
    public static final int METERS_SEC_SQUARED = 0x59;

    /**
     * The unit of IIO channel type {@code channelType} (the channel without {@code in_} and its index: {@code
     * accel}, {@code temp}, {@code voltage}); unknown types are UNSPECIFIED.
     */
    public static SensorUnit ofIioType(String channelType) {
        return switch (channelType) {
            case "accel" -> new SensorUnit(METERS_SEC_SQUARED, 0);
            case "anglvel" -> new SensorUnit(RADIANS_SEC, 0);
            case "magn" -> new SensorUnit(GAUSS, 0);
            case "temp" -> new SensorUnit(DEGREES_C, -3);
            case "voltage" -> new SensorUnit(VOLTS, -3);
            case "current" -> new SensorUnit(AMPS, -3);
            case "power" -> new SensorUnit(WATTS, -3);
            case "pressure" -> new SensorUnit(PASCALS, 3);
            case "humidityrelative" -> new SensorUnit(PERCENTAGE, -3);
            case "illuminance" -> new SensorUnit(LUX, 0);
            default -> new SensorUnit(UNSPECIFIED, 0);
        };
    }
}
