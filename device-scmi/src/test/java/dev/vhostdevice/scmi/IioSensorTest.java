package dev.vhostdevice.scmi;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** IIO channels from a sysfs-like tree the test writes: files, units, exponents and (raw + offset) × scale. */
class IioSensorTest {
    @TempDir
    Path dir;

    private void write(String file, String content) throws IOException {
        Files.writeString(dir.resolve(file), content);
    }

    private long[] read(IioSensor sensor) throws IOException {
        long[] values = new long[Math.max(1, sensor.axisCount())];
        sensor.read(values);
        return values;
    }

    @Test
    void aScalarTemperatureInMilliDegreesWithOffsetAndScale() throws IOException {
        write("in_temp_raw", "1000\n");
        write("in_temp_offset", "-500\n");
        write("in_temp_scale", "125\n");
        try (IioSensor temp = IioSensor.open(dir, "in_temp", "board")) {
            assertEquals(0, temp.axisCount());
            assertEquals(SensorUnit.DEGREES_C, temp.unit());
            assertEquals(-1, temp.exponent(), "milli °C (-3) times a scale of 10^2");
            assertEquals("board", temp.name());
            assertArrayEquals(new long[] {625}, read(temp), "(1000 - 500) x 125 m°C = 62.5 °C = 625 x 10^-1");
        }
    }

    @Test
    void axesAreSortedAndEachMayHaveItsOwnScale() throws IOException {
        write("in_anglvel_z_raw", "3");
        write("in_anglvel_x_raw", "1");
        write("in_anglvel_y_raw", "2");
        write("in_anglvel_scale", "0.5");
        write("in_anglvel_y_scale", "2");
        write("name", "gyro0\n");
        try (IioSensor gyro = IioSensor.open(dir, "in_anglvel", null)) {
            assertEquals(3, gyro.axisCount());
            assertEquals("anglvel_X", gyro.axisName(0));
            assertEquals("anglvel_Z", gyro.axisName(2));
            assertEquals(SensorUnit.RADIANS_SEC, gyro.unit());
            assertEquals("gyro0", gyro.name(), "from the device's name file");
            assertEquals(-1, gyro.exponent());
            assertArrayEquals(new long[] {5, 40, 15}, read(gyro));
        }
    }

    @Test
    void withoutScaleOrOffsetTheRawValueIsTheReading() throws IOException {
        write("in_voltage0_raw", " 42 \n");
        try (IioSensor v = IioSensor.open(dir, "in_voltage0", null)) {
            assertEquals(SensorUnit.VOLTS, v.unit());
            assertEquals(-3, v.exponent());
            assertEquals("iio", v.name());
            assertArrayEquals(new long[] {42}, read(v));
        }
    }

    @Test
    void anUnparseableValueIsAnIoErrorNotACrash() throws IOException {
        write("in_accel_raw", "12abc");
        try (IioSensor a = IioSensor.open(dir, "in_accel", "a")) {
            assertThrows(IOException.class, () -> read(a));
        }
    }

    @Test
    void channelTypesDropDirectionAndIndex() {
        assertEquals("voltage", IioSensor.channelType("in_voltage12"));
        assertEquals("accel", IioSensor.channelType("in_accel"));
        assertEquals(15, IioSensor.exponentFor(1e30, 0), "clamped to the 5-bit field");
        assertEquals(-16, IioSensor.exponentFor(1e-30, 0));
    }
}
