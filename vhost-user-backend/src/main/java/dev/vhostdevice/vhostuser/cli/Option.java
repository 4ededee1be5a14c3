package dev.vhostdevice.vhostuser.cli;

import java.nio.file.InvalidPathException;
import java.nio.file.Path;

/**
 * One command-line option: {@code -s PATH}, {@code --socket-path PATH}, {@code --socket-path=PATH}, or a flag.
 * Declared in code as a constant of the command that reads it, e.g.
 * {@code Option.value("-p", "--period", Type.INT, "MS", "Rate-limit period.").withDefault("65536")}.
 *
 * @param shortName    {@code -x}, or null
 * @param longName     {@code --name}
 * @param type         how the value is checked and read; {@link Type#FLAG} takes no value
 * @param label        the value's name in help ({@code PATH}); null for a flag
 * @param description  one sentence or a few for {@code --help}
 * @param defaultValue the value when the option is absent, shown in help; null for none
 * @param required     whether the option must be given
 * @param repeatable   whether the option may be given more than once ({@link ParsedArgs#strings} reads all values)
 */
public record Option(String shortName, String longName, Type type, String label, String description,
        String defaultValue, boolean required, boolean repeatable) {

    /** What an option's value is; checked while parsing, so a malformed number is a usage error naming it. */
    public enum Type {
        FLAG, STRING, INT, LONG, PATH;

        /** Throws {@link UsageException} if {@code value} is not one of these, naming the option. */
        void check(Option option, String value) {
            try {
                switch (this) {
                    case INT -> Integer.parseInt(value);
                    case LONG -> Long.parseLong(value);
                    case PATH -> Path.of(value);
                    default -> { }
                }
            } catch (NumberFormatException | InvalidPathException e) {
                throw new UsageException("Invalid value for option '" + option.longName + "': '" + value
                        + "' is not " + (this == INT ? "an int" : this == LONG ? "a long" : "a path"));
            }
        }
    }

    public Option {
        if (shortName != null && (shortName.length() != 2 || shortName.charAt(0) != '-' || shortName.charAt(1) == '-')) {
            throw new IllegalArgumentException("short option name must be -x: " + shortName);
        }
        if (longName == null || longName.length() < 3 || !longName.startsWith("--") || longName.indexOf('=') >= 0) {
            throw new IllegalArgumentException("long option name must be --name: " + longName);
        }
        if ((type == Type.FLAG) != (label == null)) {
            throw new IllegalArgumentException(longName + ": a flag has no value label, any other option has one");
        }
        if (type == Type.FLAG && (defaultValue != null || required || repeatable)) {
            throw new IllegalArgumentException(longName + ": a flag has no default and is never required or repeated");
        }
    }

    /** An option given at most once. */
    public Option(String shortName, String longName, Type type, String label, String description,
            String defaultValue, boolean required) {
        this(shortName, longName, type, label, description, defaultValue, required, false);
    }

    /** A flag: present or not. */
    public static Option flag(String shortName, String longName, String description) {
        return new Option(shortName, longName, Type.FLAG, null, description, null, false);
    }

    /** An optional option taking a value of {@code type}, no default. */
    public static Option value(String shortName, String longName, Type type, String label, String description) {
        return new Option(shortName, longName, type, label, description, null, false);
    }

    /** This option with a default value (used when absent, shown in help). */
    public Option withDefault(String value) {
        return new Option(shortName, longName, type, label, description, value, required, repeatable);
    }

    /** This option, which must be given. */
    public Option asRequired() {
        return new Option(shortName, longName, type, label, description, defaultValue, true, repeatable);
    }

    /** This option, which may be given any number of times ({@code -d a -d b}). */
    public Option asRepeatable() {
        return new Option(shortName, longName, type, label, description, defaultValue, required, true);
    }

    /** Whether {@code name} ({@code -x} or {@code --name}) names this option. */
    boolean isNamed(String name) {
        return name.equals(longName) || name.equals(shortName);
    }

    /** {@code --name=LABEL} or {@code --name}, as errors and the usage line show it. */
    String synopsis(String name) {
        return label == null ? name : name + "=" + label;
    }
}
