package dev.vhostdevice.scmi;

/**
 * A simulated 3-axis accelerometer, as upstream's {@code fake} device: unit m/s², axes {@code acc_X},
 * {@code acc_Y}, {@code acc_Z}, readings v, v + 100, v + 200 where v counts the readings modulo 256, so every
 * reading differs from the one before. Upstream panics when its fake device has no name: this one defaults to
 * {@link #DEFAULT_NAME}.
 */
public final class FakeAccelerometer implements Sensor {
    public static final String DEFAULT_NAME = "fake";
    private static final String[] AXES = {"acc_X", "acc_Y", "acc_Z"};

    private final String name;
    private int counter;

    public FakeAccelerometer(String name) {
        this.name = name == null ? DEFAULT_NAME : name;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public int axisCount() {
        return AXES.length;
    }

    @Override
    public int unit() {
        return SensorUnit.METERS_SEC_SQUARED;
    }

    @Override
    public int exponent() {
        return 0;
    }

    @Override
    public String axisName(int axis) {
        return AXES[axis];
    }

    @Override
    public void read(long[] values) {
        int v = counter;
        counter = (counter + 1) & 0xFF;
        values[0] = v;
        values[1] = v + 100;
        values[2] = v + 200;
    }
}
