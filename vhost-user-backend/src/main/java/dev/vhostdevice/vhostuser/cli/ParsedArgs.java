package dev.vhostdevice.vhostuser.cli;

import java.nio.file.Path;
import java.util.List;
import java.util.NoSuchElementException;

/**
 * The options of one command line, read by type. A value is the one given or else the option's default; values
 * were checked while parsing, so reading them cannot fail for bad input. Reading an option the command did not
 * declare, or as another type, is a programming error ({@link IllegalArgumentException}).
 */
public final class ParsedArgs {
    /** Joins the values of a repeated option: a NUL cannot occur in a command-line argument. */
    static final char REPEAT_SEPARATOR = '\0';

    private final Option[] options;
    private final String[] values;

    ParsedArgs(Option[] options, String[] values) {
        this.options = options;
        this.values = values;
    }

    /** Whether {@code option} was given on the command line (a default does not count). */
    public boolean isSet(Option option) {
        return values[indexOf(option, null)] != null;
    }

    /** The value as given, or the default; null if neither. */
    public String string(Option option) {
        return valueOrDefault(option, Option.Type.STRING);
    }

    /**
     * Every value of a repeatable option in command-line order; the default alone if none was given; empty if
     * neither.
     */
    public java.util.List<String> strings(Option option) {
        String value = valueOrDefault(option, Option.Type.STRING);
        if (value == null) {
            return java.util.List.of();
        }
        return java.util.List.of(value.split(String.valueOf(REPEAT_SEPARATOR), -1));
    }

    /** The value or the default, as a path; null if neither. */
    public Path path(Option option) {
        String value = valueOrDefault(option, Option.Type.PATH);
        return value != null ? Path.of(value) : null;
    }

    /** The value or the default; {@link NoSuchElementException} if neither (check {@link #isSet} first). */
    public int intValue(Option option) {
        return Integer.parseInt(required(option, Option.Type.INT));
    }

    /** The value or the default; {@link NoSuchElementException} if neither (check {@link #isSet} first). */
    public long longValue(Option option) {
        return Long.parseLong(required(option, Option.Type.LONG));
    }

    private String required(Option option, Option.Type type) {
        String value = valueOrDefault(option, type);
        if (value == null) {
            throw new NoSuchElementException(option.longName() + " was not given and has no default");
        }
        return value;
    }

    private String valueOrDefault(Option option, Option.Type type) {
        String value = values[indexOf(option, type)];
        return value != null ? value : option.defaultValue();
    }

    private int indexOf(Option option, Option.Type type) {
        for (int i = 0; i < options.length; i++) {
            if (options[i] == option) {
                if (type != null && option.type() != type) {
                    throw new IllegalArgumentException(option.longName() + " is " + option.type() + ", not " + type);
                }
                return i;
            }
        }
        throw new IllegalArgumentException(option.longName() + " is not an option of this command");
    }
}
