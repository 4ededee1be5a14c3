package dev.vhostdevice.gpio;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The {@code --device-list} argument, upstream's grammar: {@code <chip>[:<chip>…]}, one entry per socket (entry
 * i serves socket i). A chip is a decimal number N ({@code /dev/gpiochipN}) or {@code sN}, a simulated chip of N
 * lines. A host chip may be listed once (two guests cannot share its lines); simulated ones any number of times.
 */
public record ChipList(List<Entry> entries) {
    /** One socket's chip. */
    public sealed interface Entry permits HostEntry, SimulatedEntry {
    }

    /** {@code /dev/gpiochipN}. */
    public record HostEntry(int number) implements Entry {
        public String path() {
            return "/dev/gpiochip" + number;
        }
    }

    /** {@code sN}: a simulated chip of N lines. */
    public record SimulatedEntry(int lines) implements Entry {
    }

    public ChipList {
        entries = List.copyOf(entries);
    }

    /** Parses and validates {@code text} for {@code sockets} sockets; IllegalArgumentException with one line. */
    public static ChipList parse(String text, int sockets) {
        if (text == null || text.isBlank()) {
            throw new IllegalArgumentException("--device-list is empty");
        }
        List<Entry> entries = new ArrayList<>();
        Set<Integer> hostChips = new HashSet<>();
        for (String item : text.trim().split(":", -1)) {
            String chip = item.trim();
            Entry entry;
            if (chip.startsWith("s")) {
                int lines = number(chip.substring(1), chip);
                if (lines < 1 || lines > SimulatedChip.MAX_LINES) {
                    throw new IllegalArgumentException("--device-list: simulated chip '" + chip + "' must have 1 to "
                            + SimulatedChip.MAX_LINES + " lines");
                }
                entry = new SimulatedEntry(lines);
            } else {
                int number = number(chip, chip);
                if (!hostChips.add(number)) {
                    throw new IllegalArgumentException("--device-list: /dev/gpiochip" + number
                            + " is listed twice (a host chip serves one guest)");
                }
                entry = new HostEntry(number);
            }
            entries.add(entry);
        }
        if (entries.size() != sockets) {
            throw new IllegalArgumentException("--device-list has " + entries.size() + " chip(s) but --socket-count is "
                    + sockets + ": give one chip per socket");
        }
        return new ChipList(entries);
    }

    private static int number(String digits, String chip) {
        if (digits.isEmpty() || digits.length() > 9 || !digits.chars().allMatch(c -> c >= '0' && c <= '9')) {
            throw new IllegalArgumentException("--device-list: '" + chip + "' is neither a chip number N"
                    + " (/dev/gpiochipN) nor sN (a simulated chip of N lines)");
        }
        return Integer.parseInt(digits);
    }
}
