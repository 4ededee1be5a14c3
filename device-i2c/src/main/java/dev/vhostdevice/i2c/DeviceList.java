package dev.vhostdevice.i2c;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The {@code --device-list} argument, upstream's grammar: {@code <adapter>:<addr>[:<addr>…][,…]}. An adapter
 * is a decimal bus number ({@code /dev/i2c-N}), {@code sim} (the simulated EEPROM adapter) or a sysfs adapter
 * name; addresses are decimal 7-bit client addresses. Validated as upstream does, minus its off-by-one that
 * accepted 128: an address appears once in the whole list (the guest sees one bus), an adapter once.
 */
public record DeviceList(List<Entry> entries) {
    public static final int MAX_ADDRESS = 127;

    /** How an entry names its adapter. */
    public sealed interface AdapterId permits Numbered, Named, Simulated {
    }

    public record Numbered(int number) implements AdapterId {
    }

    public record Named(String name) implements AdapterId {
    }

    public record Simulated() implements AdapterId {
    }

    public record Entry(AdapterId adapter, List<Integer> addresses) {
        public Entry {
            addresses = List.copyOf(addresses);
        }

        public int[] addressArray() {
            return addresses.stream().mapToInt(Integer::intValue).toArray();
        }
    }

    public DeviceList {
        entries = List.copyOf(entries);
    }

    /** Parses and validates {@code text}; IllegalArgumentException with a one-line reason. */
    public static DeviceList parse(String text) {
        if (text == null || text.isBlank()) {
            throw new IllegalArgumentException("--device-list is empty");
        }
        List<Entry> entries = new ArrayList<>();
        Set<AdapterId> adapters = new HashSet<>();
        Set<Integer> addresses = new HashSet<>();
        for (String item : text.trim().split(",", -1)) {
            String[] parts = item.split(":", -1);
            String adapterText = parts[0].trim();
            if (adapterText.isEmpty()) {
                throw new IllegalArgumentException("--device-list: entry '" + item.trim() + "' names no adapter");
            }
            AdapterId adapter = adapterId(adapterText);
            if (!adapters.add(adapter)) {
                throw new IllegalArgumentException("--device-list: adapter " + adapterText + " is listed twice");
            }
            List<Integer> own = new ArrayList<>();
            for (int i = 1; i < parts.length; i++) {
                int address = address(parts[i].trim(), adapterText);
                if (!addresses.add(address)) {
                    throw new IllegalArgumentException("--device-list: address " + address + " is listed twice"
                            + " (the guest sees one bus: an address can be on one adapter only)");
                }
                own.add(address);
            }
            entries.add(new Entry(adapter, own));
        }
        return new DeviceList(entries);
    }

    private static AdapterId adapterId(String text) {
        if (text.equals(SimulatedAdapter.NAME)) {
            return new Simulated();
        }
        if (text.chars().allMatch(c -> c >= '0' && c <= '9')) {
            try {
                return new Numbered(Integer.parseInt(text));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--device-list: adapter number " + text + " is out of range");
            }
        }
        return new Named(text);
    }

    private static int address(String text, String adapter) {
        if (text.isEmpty() || !text.chars().allMatch(c -> c >= '0' && c <= '9') || text.length() > 3) {
            throw new IllegalArgumentException("--device-list: adapter " + adapter + ": address '" + text
                    + "' is not a decimal number from 0 to " + MAX_ADDRESS);
        }
        int address = Integer.parseInt(text);
        if (address > MAX_ADDRESS) {
            throw new IllegalArgumentException("--device-list: adapter " + adapter + ": address " + address
                    + " is out of the 7-bit range 0 to " + MAX_ADDRESS);
        }
        return address;
    }
}
