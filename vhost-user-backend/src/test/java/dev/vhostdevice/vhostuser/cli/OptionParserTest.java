package dev.vhostdevice.vhostuser.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.NoSuchElementException;
import org.junit.jupiter.api.Test;

class OptionParserTest {
    static final Option PATH = Option.value("-s", "--socket-path", Option.Type.PATH, "PATH", "Socket.").asRequired();
    static final Option COUNT = Option.value("-c", "--socket-count", Option.Type.INT, "N", "Sockets.")
            .withDefault("1");
    static final Option BYTES = Option.value("-m", "--max-bytes", Option.Type.LONG, "BYTES", "Budget.");
    static final Option NAME = Option.value(null, "--name", Option.Type.STRING, "NAME", "A name.");
    static final Option QUIET = Option.flag("-q", "--quiet", "Say less.");

    private final OptionParser parser = new OptionParser("vhost-device-test", "A test command.",
            List.of(PATH, COUNT, BYTES, NAME, QUIET));

    private String error(String... args) {
        return assertThrows(UsageException.class, () -> parser.parse(args)).getMessage();
    }

    @Test
    void shortLongAndEqualsFormsAllTakeAValue() {
        ParsedArgs args = parser.parse("-s", "/a", "--socket-count", "3", "--max-bytes=7", "--name=x=y", "-q");
        assertEquals(Path.of("/a"), args.path(PATH));
        assertEquals(3, args.intValue(COUNT));
        assertEquals(7L, args.longValue(BYTES));
        assertEquals("x=y", args.string(NAME));
        assertTrue(args.isSet(QUIET));
        assertEquals(Path.of("/b"), parser.parse("--socket-path=/b").path(PATH));
        assertEquals(Path.of("/c"), parser.parse("-s=/c").path(PATH));
        assertEquals("", parser.parse("-s", "/a", "--name=").string(NAME));
    }

    @Test
    void absentOptionsReadAsTheirDefaults() {
        ParsedArgs args = parser.parse("-s", "/a");
        assertEquals(1, args.intValue(COUNT));
        assertFalse(args.isSet(COUNT));
        assertFalse(args.isSet(BYTES));
        assertFalse(args.isSet(QUIET));
        assertNull(args.string(NAME));
        assertThrows(NoSuchElementException.class, () -> args.longValue(BYTES));
    }

    @Test
    void aNegativeNumberIsAValueNotAnOption() {
        assertEquals(-5, parser.parse("-s", "/a", "-c", "-5").intValue(COUNT));
    }

    @Test
    void everyErrorIsOneLineNamingTheOption() {
        assertEquals("Unknown option: '--bogus'", error("-s", "/a", "--bogus"));
        assertEquals("Unknown option: '-x'", error("-s", "/a", "-x"));
        assertEquals("Unknown option: '--bogus=1'", error("--bogus=1"));
        assertEquals("Unmatched argument at index 2: 'extra'", error("-s", "/a", "extra"));
        assertEquals("Missing required parameter for option '--socket-path' (PATH)", error("-s"));
        assertEquals("Missing required parameter for option '--socket-count' (N)", error("-c", "-s", "/a"));
        assertEquals("Missing required parameter for option '--socket-count' (N)", error("-c", "--socket-path=/a"));
        assertEquals("Missing required option: '--socket-path=PATH'", error());
        assertEquals("Missing required option: '--socket-path=PATH'", error("-c", "2"));
        assertEquals("Invalid value for option '--socket-count': 'x' is not an int", error("-s", "/a", "-c", "x"));
        assertEquals("Invalid value for option '--socket-count': '99999999999' is not an int",
                error("-s", "/a", "-c", "99999999999"));
        assertEquals("Invalid value for option '--max-bytes': '1x' is not a long", error("-s", "/a", "-m=1x"));
        assertEquals("Invalid value for option '--socket-path': 'a\0b' is not a path", error("-s", "a\0b"));
        assertEquals("option '--socket-count' (N) should be specified only once", error("-s", "/a", "-c", "1", "-c", "2"));
        assertEquals("option '--quiet' (flag) should be specified only once", error("-s", "/a", "-q", "--quiet"));
        assertEquals("Option '--quiet' takes no value", error("-s", "/a", "--quiet=yes"));
    }

    @Test
    void twoMissingRequiredOptionsAreNamedTogether() {
        Option list = Option.value("-l", "--device-list", Option.Type.STRING, "LIST", "Devices.").asRequired();
        OptionParser two = new OptionParser("t", "T.", List.of(PATH, list));
        UsageException e = assertThrows(UsageException.class, two::parse);
        assertEquals("Missing required options: '--socket-path=PATH', '--device-list=LIST'", e.getMessage());
    }

    @Test
    void helpAndVersionNeedNoRequiredOptions() {
        assertTrue(parser.parse("--help").isSet(OptionParser.HELP));
        assertTrue(parser.parse("-h").isSet(OptionParser.HELP));
        assertTrue(parser.parse("--version").isSet(OptionParser.VERSION));
        assertTrue(parser.parse("-V").isSet(OptionParser.VERSION));
        assertEquals("Unknown option: '--bogus'", error("--help", "--bogus"));
    }

    @Test
    void helpListsTheOptionsSortedAlignedAndWithDefaults() {
        assertEquals("""
                Usage: vhost-device-test [-hqV] [-c=N] [-m=BYTES] [--name=NAME] -s=PATH
                A test command.
                  -c, --socket-count=N     Sockets (default: 1).
                  -h, --help               Show this help message and exit.
                  -m, --max-bytes=BYTES    Budget.
                      --name=NAME          A name.
                  -q, --quiet              Say less.
                  -s, --socket-path=PATH   Socket.
                  -V, --version            Print version information and exit.
                """, parser.help());
    }

    @Test
    void longTextWrapsForAnEightyColumnTerminalUnderItsDescription() {
        Option wordy = Option.value("-w", "--wordy", Option.Type.STRING, "W", "word ".repeat(30).strip() + ".");
        String help = new OptionParser("t", "description ".repeat(10).strip(), List.of(wordy)).help();
        for (String line : help.split("\n")) {
            assertTrue(line.length() < 80, line);
        }
        assertTrue(help.contains("\n  -w, --wordy=W   word word"), help);
        assertTrue(help.contains("\n" + " ".repeat(20) + "word word"), help);
        assertTrue(help.contains("description\ndescription"), help);
    }

    @Test
    void badDeclarationsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> Option.flag("s", "--s", "x"));
        assertThrows(IllegalArgumentException.class, () -> Option.flag("-s", "-s", "x"));
        assertThrows(IllegalArgumentException.class, () -> Option.flag("--", "--ab", "x"));
        assertThrows(IllegalArgumentException.class, () -> new Option("-a", "--ab", Option.Type.INT, null, "x", null, false));
        assertThrows(IllegalArgumentException.class, () -> Option.flag("-a", "--ab", "x").asRequired());
        assertThrows(IllegalArgumentException.class,
                () -> new OptionParser("t", "T.", List.of(Option.flag("-h", "--hello", "x"))));
        assertThrows(IllegalArgumentException.class,
                () -> new OptionParser("t", "T.", List.of(PATH, Option.flag("-z", "--socket-path", "x"))));
    }

    @Test
    void readingAnUndeclaredOptionOrTheWrongTypeIsAProgrammingError() {
        ParsedArgs args = parser.parse("-s", "/a");
        Option other = Option.value("-o", "--other", Option.Type.INT, "N", "x");
        assertThrows(IllegalArgumentException.class, () -> args.intValue(other));
        assertThrows(IllegalArgumentException.class, () -> args.string(COUNT));
    }

    @Test
    void executePrintsUsageErrorsAsOneLineAndAHintWithStatusTwo() {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrintStream savedErr = System.err;
        PrintStream savedOut = System.out;
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        try {
            DaemonCommandTest.EchoCommand command = new DaemonCommandTest.EchoCommand();
            assertEquals(DaemonCommand.EXIT_USAGE, DaemonCommand.execute(command, "-s", "/a", "-c", "x"));
            assertEquals(0, DaemonCommand.execute(new DaemonCommandTest.EchoCommand(), "--help"));
            assertEquals(0, DaemonCommand.execute(new DaemonCommandTest.EchoCommand(), "-V"));
        } finally {
            System.setErr(savedErr);
            System.setOut(savedOut);
        }
        assertEquals("""
                vhost-device-echo: Invalid value for option '--socket-count': 'x' is not an int
                Try 'vhost-device-echo --help' for more information.
                """, err.toString(StandardCharsets.UTF_8));
        String printed = out.toString(StandardCharsets.UTF_8);
        assertTrue(printed.startsWith("Usage: vhost-device-echo [-hV] [-c=N] [--device-state] -s=PATH\nEcho test device.\n"), printed);
        assertTrue(printed.contains("vhost-device-echo (development build)\nJava "), printed);
    }

    @Test
    void aRepeatableOptionKeepsEveryValueInOrderAndOthersStayOnce() {
        Option device = Option.value("-d", "--device", Option.Type.STRING, "SPEC", "A device.").asRepeatable();
        OptionParser withRepeat = new OptionParser("vhost-device-test", "A test command.", List.of(PATH, device));
        ParsedArgs args = withRepeat.parse("-s", "/a", "-d", "fake", "--device=iio,path=/x", "-d", "fake,name=b");
        assertEquals(List.of("fake", "iio,path=/x", "fake,name=b"), args.strings(device));
        assertEquals(List.of(), withRepeat.parse("-s", "/a").strings(device));
        assertThrows(UsageException.class, () -> withRepeat.parse("-s", "/a", "-s", "/b"));
    }
}
