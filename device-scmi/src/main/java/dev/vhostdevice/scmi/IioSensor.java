package dev.vhostdevice.scmi;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * A Linux IIO channel read from sysfs ({@code /sys/bus/iio/devices/iio:deviceN}), as the IIO ABI lays it out:
 * {@code <channel>_raw} for a scalar channel or {@code <channel>_<axis>_raw} for each axis (sorted by name),
 * with an optional {@code _offset} and {@code _scale} per axis or for the channel. A reading is
 * {@code (raw + offset) × scale} in the channel type's IIO unit ({@link SensorUnit#ofIioType}), reported as an
 * integer times 10 to the {@link #exponent()}, which is chosen at start-up from the scale so the integer keeps
 * the scale's resolution.
 *
 * <p>Every file is opened once and re-read from offset 0 each reading (sysfs regenerates an attribute on a read
 * at 0), into one buffer: readings allocate nothing.
 */
public final class IioSensor implements Sensor, AutoCloseable {
    /** SCMI's unit exponent is a signed 5-bit field. */
    static final int MIN_EXPONENT = -16;
    static final int MAX_EXPONENT = 15;
    private static final String RAW = "_raw";

    private final String name;
    private final SensorUnit unit;
    private final int exponent;
    private final String[] axisNames;
    private final FileChannel[] raw;
    private final FileChannel[] offset;
    private final FileChannel[] scale;
    private final Path[] rawPaths;
    /** 10^(IIO unit exponent - reported exponent): turns (raw + offset) × scale into the reported integer. */
    private final double factor;
    private final ByteBuffer buffer = ByteBuffer.allocateDirect(64);

    private IioSensor(String name, SensorUnit unit, int exponent, String[] axisNames, FileChannel[] raw,
            FileChannel[] offset, FileChannel[] scale, Path[] rawPaths) {
        this.name = name;
        this.unit = unit;
        this.exponent = exponent;
        this.axisNames = axisNames;
        this.raw = raw;
        this.offset = offset;
        this.scale = scale;
        this.rawPaths = rawPaths;
        this.factor = Math.pow(10, unit.exponent() - exponent);
    }

    /**
     * Opens channel {@code channel} (e.g. {@code in_accel}) of the IIO device at {@code dir}. The name is
     * {@code name}, else the device's {@code name} file, else "iio". Throws IllegalArgumentException with one
     * line for anything missing or unreadable.
     */
    public static IioSensor open(Path dir, String channel, String name) {
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException("iio: " + dir + " is not a directory");
        }
        if (channel.isEmpty() || channel.indexOf('/') >= 0) {
            throw new IllegalArgumentException("iio: channel '" + channel + "' is not a channel name such as in_accel");
        }
        List<String> axes = new ArrayList<>();
        boolean scalar = Files.isRegularFile(dir.resolve(channel + RAW));
        if (!scalar) {
            try (Stream<Path> files = Files.list(dir)) {
                files.map(p -> p.getFileName().toString())
                        .filter(f -> f.startsWith(channel + "_") && f.endsWith(RAW)
                                && f.length() > channel.length() + 1 + RAW.length())
                        .map(f -> f.substring(channel.length() + 1, f.length() - RAW.length()))
                        .filter(axis -> axis.indexOf('_') < 0)
                        .sorted()
                        .forEach(axes::add);
            } catch (IOException e) {
                throw new IllegalArgumentException("iio: cannot list " + dir + ": " + e.getMessage());
            }
            if (axes.isEmpty()) {
                throw new IllegalArgumentException("iio: " + dir + " has no " + channel + "_raw nor "
                        + channel + "_<axis>_raw");
            }
            if (axes.size() > SensorProtocol.MAX_AXES) {
                throw new IllegalArgumentException("iio: " + channel + " has " + axes.size() + " axes, at most "
                        + SensorProtocol.MAX_AXES + " are supported");
            }
        }
        String type = channelType(channel);
        SensorUnit unit = SensorUnit.ofIioType(type);
        int count = scalar ? 1 : axes.size();
        FileChannel[] raw = new FileChannel[count];
        FileChannel[] offset = new FileChannel[count];
        FileChannel[] scale = new FileChannel[count];
        Path[] rawPaths = new Path[count];
        String[] axisNames = new String[scalar ? 0 : count];
        try {
            for (int i = 0; i < count; i++) {
                String prefix = scalar ? channel : channel + "_" + axes.get(i);
                rawPaths[i] = dir.resolve(prefix + RAW);
                raw[i] = openRequired(rawPaths[i]);
                offset[i] = openFirst(dir.resolve(prefix + "_offset"), dir.resolve(channel + "_offset"));
                scale[i] = openFirst(dir.resolve(prefix + "_scale"), dir.resolve(channel + "_scale"));
                if (!scalar) {
                    axisNames[i] = type + "_" + axes.get(i).toUpperCase(java.util.Locale.ROOT);
                }
            }
        } catch (IllegalArgumentException e) {
            closeAll(raw, offset, scale);
            throw e;
        }
        IioSensor probe = new IioSensor(name, unit, 0, axisNames, raw, offset, scale, rawPaths);
        int exponent;
        try {
            exponent = exponentFor(probe.readScale(0), unit.exponent());
        } catch (IOException e) {
            closeAll(raw, offset, scale);
            throw new IllegalArgumentException("iio: cannot read the scale of " + rawPaths[0] + ": " + e.getMessage());
        }
        String sensorName = name != null ? name : deviceName(dir);
        return new IioSensor(sensorName, unit, exponent, axisNames, raw, offset, scale, rawPaths);
    }

    /** {@code in_voltage0} → {@code voltage}: without the direction and the index. */
    static String channelType(String channel) {
        String type = channel.startsWith("in_") ? channel.substring(3) : channel.startsWith("out_")
                ? channel.substring(4) : channel;
        int end = type.length();
        while (end > 0 && Character.isDigit(type.charAt(end - 1))) {
            end--;
        }
        return type.substring(0, end);
    }

    /** The reported exponent: the unit's, lowered by the scale's order of magnitude, within SCMI's 5 bits. */
    static int exponentFor(double scale, int unitExponent) {
        int e = unitExponent;
        if (scale > 0 && Double.isFinite(scale)) {
            e += (int) Math.floor(Math.log10(scale));
        }
        return Math.max(MIN_EXPONENT, Math.min(MAX_EXPONENT, e));
    }

    private static String deviceName(Path dir) {
        try {
            String n = Files.readString(dir.resolve("name"), StandardCharsets.US_ASCII).strip();
            return n.isEmpty() ? "iio" : n;
        } catch (IOException | UncheckedIOException e) {
            return "iio";
        }
    }

    private static FileChannel openRequired(Path file) {
        try {
            return FileChannel.open(file, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException("iio: " + file + " does not exist");
        } catch (IOException e) {
            throw new IllegalArgumentException("iio: cannot open " + file + ": " + e.getMessage());
        }
    }

    private static FileChannel openFirst(Path first, Path second) {
        for (Path p : new Path[] {first, second}) {
            if (Files.isRegularFile(p)) {
                return openRequired(p);
            }
        }
        return null;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public int axisCount() {
        return axisNames.length;
    }

    @Override
    public int unit() {
        return unit.type();
    }

    @Override
    public int exponent() {
        return exponent;
    }

    @Override
    public String axisName(int axis) {
        return axisNames[axis];
    }

    @Override
    public void read(long[] values) throws IOException {
        for (int i = 0; i < raw.length; i++) {
            double rawValue = readNumber(raw[i], rawPaths[i]);
            double off = offset[i] == null ? 0 : readNumber(offset[i], rawPaths[i]);
            double physical = (rawValue + off) * readScale(i);
            values[i] = Math.round(physical * factor);
        }
    }

    private double readScale(int axis) throws IOException {
        return scale[axis] == null ? 1.0 : readNumber(scale[axis], rawPaths[axis]);
    }

    /** The decimal number in {@code file} (sign, digits, optional fraction, surrounding whitespace). */
    private double readNumber(FileChannel file, Path context) throws IOException {
        buffer.clear();
        int n = 0;
        int r;
        while (buffer.hasRemaining() && (r = file.read(buffer, n)) > 0) {
            n += r;
        }
        return parseDecimal(buffer, n, context);
    }

    static double parseDecimal(ByteBuffer bytes, int length, Path context) throws IOException {
        int i = 0;
        while (i < length && isSpace(bytes.get(i))) {
            i++;
        }
        boolean negative = false;
        if (i < length && (bytes.get(i) == '-' || bytes.get(i) == '+')) {
            negative = bytes.get(i) == '-';
            i++;
        }
        long mantissa = 0;
        int digits = 0;
        int fraction = -1;
        for (; i < length; i++) {
            byte b = bytes.get(i);
            if (b >= '0' && b <= '9') {
                if (mantissa < Long.MAX_VALUE / 10 - 9) {
                    mantissa = mantissa * 10 + (b - '0');
                    if (fraction >= 0) {
                        fraction++;
                    }
                } else if (fraction < 0) {
                    throw new IOException(context + ": number too large");
                }
                digits++;
            } else if (b == '.' && fraction < 0) {
                fraction = 0;
            } else {
                break;
            }
        }
        while (i < length && isSpace(bytes.get(i))) {
            i++;
        }
        if (digits == 0 || i != length) {
            throw new IOException("not a decimal number in the file read with " + context);
        }
        double value = fraction > 0 ? mantissa / Math.pow(10, fraction) : mantissa;
        return negative ? -value : value;
    }

    private static boolean isSpace(byte b) {
        return b == ' ' || b == '\n' || b == '\t' || b == '\r';
    }

    @Override
    public void close() {
        closeAll(raw, offset, scale);
    }

    private static void closeAll(FileChannel[]... groups) {
        for (FileChannel[] group : groups) {
            for (FileChannel c : group) {
                if (c != null) {
                    try {
                        c.close();
                    } catch (IOException ignored) {
                        // read-only: nothing is lost
                    }
                }
            }
        }
    }
}
