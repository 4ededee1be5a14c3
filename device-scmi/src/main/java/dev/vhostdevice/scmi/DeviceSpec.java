package dev.vhostdevice.scmi;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One {@code -d/--device KIND[,KEY=VALUE…]} argument, checked against its kind's properties: a drop-in for
 * upstream's {@code fake} and {@code iio}, plus the simulated {@code clock}, {@code voltage} and {@code power}
 * providers. Every mistake is an IllegalArgumentException with one line naming it.
 */
public record DeviceSpec(Kind kind, Map<String, String> properties) {

    /** The device kinds, their properties (required ones first) and what they mean, for --help-devices. */
    public enum Kind {
        FAKE("fake", "a simulated 3-axis accelerometer (m/s^2) whose readings change at every read",
                List.of(), List.of("name")),
        IIO("iio", "a Linux IIO channel read from sysfs", List.of("path", "channel"), List.of("name")),
        CLOCK("clock", "a simulated clock (Clock protocol) with a settable rate and enable state",
                List.of(), List.of("name", "rate", "min", "max", "step")),
        VOLTAGE("voltage", "a simulated regulator (Voltage protocol) with a settable level (uV) and mode",
                List.of(), List.of("name", "level", "min", "max", "step")),
        POWER("power", "a simulated power domain (Power protocol), on or off", List.of(), List.of("name", "state"));

        public final String label;
        final String description;
        final List<String> required;
        final List<String> optional;

        Kind(String label, String description, List<String> required, List<String> optional) {
            this.label = label;
            this.description = description;
            this.required = required;
            this.optional = optional;
        }

        boolean knows(String property) {
            return required.contains(property) || optional.contains(property);
        }

        static Kind of(String label) {
            for (Kind k : values()) {
                if (k.label.equals(label)) {
                    return k;
                }
            }
            return null;
        }
    }

    /** Longest name: SCMI names are 16 bytes with the NUL. */
    public static final int MAX_NAME = 15;

    public DeviceSpec {
        properties = Map.copyOf(properties);
    }

    /** Parses {@code KIND[,KEY=VALUE…]}. */
    public static DeviceSpec parse(String spec) {
        String[] parts = spec.split(",", -1);
        Kind kind = Kind.of(parts[0]);
        if (kind == null) {
            throw new IllegalArgumentException("--device " + spec + ": unknown device kind '" + parts[0]
                    + "' (known: fake, iio, clock, voltage, power; see --help-devices)");
        }
        Map<String, String> properties = new LinkedHashMap<>();
        for (int i = 1; i < parts.length; i++) {
            String part = parts[i];
            int equals = part.indexOf('=');
            if (equals <= 0) {
                throw new IllegalArgumentException("--device " + spec + ": '" + part + "' is not KEY=VALUE");
            }
            String key = part.substring(0, equals);
            if (!kind.knows(key)) {
                throw new IllegalArgumentException("--device " + spec + ": " + kind.label + " has no property '" + key
                        + "' (it takes " + String.join(", ", kind.required.isEmpty() ? kind.optional
                        : concat(kind.required, kind.optional)) + ")");
            }
            if (properties.put(key, part.substring(equals + 1)) != null) {
                throw new IllegalArgumentException("--device " + spec + ": property '" + key + "' given twice");
            }
        }
        for (String key : kind.required) {
            if (!properties.containsKey(key)) {
                throw new IllegalArgumentException("--device " + spec + ": " + kind.label + " needs property '" + key
                        + "'");
            }
        }
        String name = properties.get("name");
        if (name != null && (name.isEmpty() || name.length() > MAX_NAME || !name.chars().allMatch(c -> c > 0x20 && c < 0x7F))) {
            throw new IllegalArgumentException("--device " + spec + ": name '" + name + "' must be 1 to " + MAX_NAME
                    + " printable ASCII characters");
        }
        return new DeviceSpec(kind, properties);
    }

    private static List<String> concat(List<String> a, List<String> b) {
        return java.util.stream.Stream.concat(a.stream(), b.stream()).toList();
    }

    public String property(String key) {
        return properties.get(key);
    }

    /** A whole number property, {@code fallback} when absent. */
    public long number(String key, long fallback, long min, long max) {
        String value = properties.get(key);
        if (value == null) {
            return fallback;
        }
        long n;
        try {
            n = Long.parseLong(value);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--device " + kind.label + ": " + key + " '" + value
                    + "' is not a whole number");
        }
        if (n < min || n > max) {
            throw new IllegalArgumentException("--device " + kind.label + ": " + key + " " + n + " is outside " + min
                    + " to " + max);
        }
        return n;
    }

    /** The --help-devices text. */
    public static String help() {
        StringBuilder out = new StringBuilder("Devices (-d KIND[,KEY=VALUE...], repeatable):\n");
        for (Kind k : Kind.values()) {
            out.append("  ").append(k.label).append(": ").append(k.description).append('\n');
            for (String key : k.required) {
                out.append("      ").append(key).append(" (required): ").append(propertyHelp(k, key)).append('\n');
            }
            for (String key : k.optional) {
                out.append("      ").append(key).append(": ").append(propertyHelp(k, key)).append('\n');
            }
        }
        return out.toString();
    }

    private static String propertyHelp(Kind kind, String key) {
        return switch (kind.label + "." + key) {
            case "fake.name" -> "sensor name, at most 15 characters (default: fake)";
            case "iio.path" -> "the IIO device's sysfs directory, e.g. /sys/bus/iio/devices/iio:device0";
            case "iio.channel" -> "the channel prefix, e.g. in_accel (files in_accel_x_raw ...) or in_temp";
            case "iio.name" -> "sensor name (default: the device's name file, else iio)";
            case "clock.name" -> "clock name (default: clkN)";
            case "clock.rate" -> "initial rate in Hz (default: 100000000)";
            case "clock.min" -> "lowest settable rate in Hz (default: the rate)";
            case "clock.max" -> "highest settable rate in Hz (default: the rate)";
            case "clock.step" -> "rate step in Hz (default: 1)";
            case "voltage.name" -> "regulator name (default: vddN)";
            case "voltage.level" -> "initial level in microvolts (default: 1800000)";
            case "voltage.min" -> "lowest settable level in microvolts (default: the level)";
            case "voltage.max" -> "highest settable level in microvolts (default: the level)";
            case "voltage.step" -> "level step in microvolts (default: 1)";
            case "power.name" -> "domain name (default: pdN)";
            case "power.state" -> "initial state, on or off (default: on)";
            default -> "";
        };
    }
}
