package dev.vhostdevice.vhostuser.cli;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * A small command-line parser: options only (no positional arguments), each given as {@code -x VALUE},
 * {@code --name VALUE}, {@code -x=VALUE} or {@code --name=VALUE}, at most once unless the option is repeatable;
 * flags take no value.
 * {@link #HELP} and {@link #VERSION} are always accepted, and while either is given required options are not
 * checked. Every error is a {@link UsageException} with a one-line message naming the option.
 *
 * <p>Written for start-up time: it loads a handful of classes where a general-purpose library loads hundreds.
 */
public final class OptionParser {
    public static final Option HELP = Option.flag("-h", "--help", "Show this help message and exit.");
    public static final Option VERSION = Option.flag("-V", "--version", "Print version information and exit.");

    /** Help lines are at most this long: an 80-column terminal never wraps them. */
    private static final int WIDTH = 79;
    /** A given flag's value in {@link ParsedArgs}. */
    static final String FLAG_SET = "";

    private final String name;
    private final String description;
    /** HELP, VERSION, then the command's options in declaration order. */
    private final Option[] options;

    public OptionParser(String name, String description, List<Option> options) {
        this.name = name;
        this.description = description;
        this.options = new Option[options.size() + 2];
        this.options[0] = HELP;
        this.options[1] = VERSION;
        for (int i = 0; i < options.size(); i++) {
            Option option = options.get(i);
            for (int j = 0; j < i + 2; j++) {
                Option other = this.options[j];
                if (option.isNamed(other.longName()) || (other.shortName() != null && option.isNamed(other.shortName()))) {
                    throw new IllegalArgumentException(name + ": options " + other.longName() + " and "
                            + option.longName() + " share a name");
                }
            }
            this.options[i + 2] = option;
        }
    }

    public String name() {
        return name;
    }

    /** Parses {@code args}; throws {@link UsageException} for anything but well-formed options. */
    public ParsedArgs parse(String... args) {
        String[] values = new String[options.length];
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (arg.length() < 2 || arg.charAt(0) != '-') {
                throw new UsageException("Unmatched argument at index " + i + ": '" + arg + "'");
            }
            int equals = arg.indexOf('=');
            int index = indexOf(equals < 0 ? arg : arg.substring(0, equals));
            if (index < 0) {
                throw new UsageException("Unknown option: '" + arg + "'");
            }
            Option option = options[index];
            String value;
            if (option.type() == Option.Type.FLAG) {
                if (equals >= 0) {
                    throw new UsageException("Option '" + option.longName() + "' takes no value");
                }
                value = FLAG_SET;
            } else if (equals >= 0) {
                value = arg.substring(equals + 1);
            } else if (i + 1 < args.length && !namesAnOption(args[i + 1])) {
                value = args[++i];
            } else {
                throw new UsageException("Missing required parameter for option '" + option.longName() + "' ("
                        + option.label() + ")");
            }
            if (values[index] != null && option.repeatable()) {
                option.type().check(option, value);
                values[index] = values[index] + ParsedArgs.REPEAT_SEPARATOR + value;
                continue;
            }
            if (values[index] != null) {
                throw new UsageException("option '" + option.longName() + "' (" + (option.label() != null
                        ? option.label() : "flag") + ") should be specified only once");
            }
            option.type().check(option, value);
            values[index] = value;
        }
        if (values[0] == null && values[1] == null) {
            checkRequired(values);
        }
        return new ParsedArgs(options, values);
    }

    private void checkRequired(String[] values) {
        List<String> missing = null;
        for (int i = 0; i < options.length; i++) {
            if (options[i].required() && values[i] == null) {
                if (missing == null) {
                    missing = new ArrayList<>(2);
                }
                missing.add("'" + options[i].synopsis(options[i].longName()) + "'");
            }
        }
        if (missing != null) {
            throw new UsageException((missing.size() == 1 ? "Missing required option: " : "Missing required options: ")
                    + String.join(", ", missing));
        }
    }

    private int indexOf(String optionName) {
        for (int i = 0; i < options.length; i++) {
            if (options[i].isNamed(optionName)) {
                return i;
            }
        }
        return -1;
    }

    /** Whether {@code arg} is an option rather than a value ({@code -5} is a value: no option is named so). */
    private boolean namesAnOption(String arg) {
        if (arg.length() < 2 || arg.charAt(0) != '-') {
            return false;
        }
        int equals = arg.indexOf('=');
        return indexOf(equals < 0 ? arg : arg.substring(0, equals)) >= 0;
    }

    /**
     * The {@code --help} text: a usage line, the description, and the options sorted by name, each with its
     * default, wrapped for an 80-column terminal.
     */
    public String help() {
        Option[] sorted = options.clone();
        Arrays.sort(sorted, Comparator.comparing(OptionParser::sortKey));
        StringBuilder out = new StringBuilder(1024);

        StringBuilder usage = new StringBuilder("Usage: ").append(name).append(" [-");
        for (Option option : sorted) {
            if (option.type() == Option.Type.FLAG && option.shortName() != null) {
                usage.append(option.shortName().charAt(1));
            }
        }
        usage.append(']');
        for (Option option : sorted) {
            if (option.type() == Option.Type.FLAG && option.shortName() != null) {
                continue;
            }
            String synopsis = option.synopsis(option.shortName() != null ? option.shortName() : option.longName());
            usage.append(' ').append(option.required() ? synopsis : "[" + synopsis + "]");
        }
        wrap(out, usage.toString(), 0, 7 + name.length() + 1);
        wrap(out, description, 0, 0);

        String[] names = new String[sorted.length];
        int column = 0;
        for (int i = 0; i < sorted.length; i++) {
            Option option = sorted[i];
            names[i] = "  " + (option.shortName() != null ? option.shortName() + ", " : "    ")
                    + option.synopsis(option.longName());
            column = Math.max(column, names[i].length());
        }
        column += 3;
        for (int i = 0; i < sorted.length; i++) {
            StringBuilder line = new StringBuilder(names[i]);
            line.repeat(' ', column - line.length()).append(withDefault(sorted[i]));
            wrap(out, line.toString(), column, column + 2);
        }
        return out.toString();
    }

    /** Options sort by short name, case-insensitively, as {@code -c -f -h -m -p -s -V}; long-only by long name. */
    private static String sortKey(Option option) {
        String key = option.shortName() != null ? option.shortName().substring(1) : option.longName().substring(2);
        return key.toLowerCase(java.util.Locale.ROOT) + key;
    }

    /** The description with {@code (default: X)} before its final period. */
    private static String withDefault(Option option) {
        String text = option.description();
        if (option.defaultValue() == null) {
            return text;
        }
        String shown = "(default: " + option.defaultValue() + ")";
        return text.endsWith(".") ? text.substring(0, text.length() - 1) + " " + shown + "." : text + " " + shown;
    }

    /**
     * Appends {@code text} and a newline, broken at spaces into lines of at most {@link #WIDTH} columns (a word
     * longer than that stays whole). The first line is never broken before column {@code start} (the option
     * names); continuation lines are indented by {@code indent}.
     */
    static void wrap(StringBuilder out, String text, int start, int indent) {
        int lineStart = 0;
        int width = WIDTH;
        int noBreakBefore = start;
        while (text.length() - lineStart > width) {
            int cut = text.lastIndexOf(' ', lineStart + width);
            if (cut <= lineStart + noBreakBefore) {
                cut = text.indexOf(' ', lineStart + width);
                if (cut < 0) {
                    break;
                }
            }
            out.append(text, lineStart, cut).append('\n').repeat(' ', indent);
            lineStart = cut + 1;
            width = WIDTH - indent;
            noBreakBefore = 0;
        }
        out.append(text, lineStart, text.length()).append('\n');
    }
}
