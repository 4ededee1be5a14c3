package dev.vhostdevice.i2c;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * The bus the guest sees: client addresses mapped to the adapters behind them. Built once at start-up from the
 * device list and shared by every socket's device. Named adapters are looked up in sysfs
 * ({@code /sys/bus/i2c/devices/i2c-N/name}); the name must match exactly one adapter.
 */
public final class I2cBus implements AutoCloseable {
    public static final Path SYSFS_DEVICES = Path.of("/sys/bus/i2c/devices");
    private static final Pattern ADAPTER_DIR = Pattern.compile("i2c-(\\d+)");

    private final I2cAdapter[] byAddress = new I2cAdapter[DeviceList.MAX_ADDRESS + 1];
    private final List<I2cAdapter> adapters;

    private I2cBus(List<I2cAdapter> adapters, List<int[]> addresses) {
        this.adapters = List.copyOf(adapters);
        for (int i = 0; i < adapters.size(); i++) {
            for (int address : addresses.get(i)) {
                byAddress[address] = adapters.get(i);
            }
        }
    }

    /** A bus of already opened adapters, {@code addresses[i]} on {@code adapters[i]} (tests, embedding). */
    public static I2cBus of(List<I2cAdapter> adapters, List<int[]> addresses) {
        return new I2cBus(adapters, addresses);
    }

    /** Opens every adapter of {@code list}; IllegalArgumentException with a one-line reason. */
    public static I2cBus open(DeviceList list, I2cHost host, Path sysfsDevices) {
        List<I2cAdapter> opened = new ArrayList<>();
        List<int[]> addresses = new ArrayList<>();
        List<Integer> numbers = new ArrayList<>();
        try {
            for (DeviceList.Entry entry : list.entries()) {
                int[] own = entry.addressArray();
                I2cAdapter adapter = switch (entry.adapter()) {
                    case DeviceList.Simulated s -> new SimulatedAdapter(own);
                    case DeviceList.Numbered n -> openHost(host, n.number(), null, own, numbers);
                    case DeviceList.Named n -> openHost(host, resolve(n.name(), sysfsDevices), n.name(), own, numbers);
                };
                opened.add(adapter);
                addresses.add(own);
            }
        } catch (RuntimeException e) {
            opened.forEach(I2cAdapter::close);
            throw e;
        }
        return new I2cBus(opened, addresses);
    }

    private static HostAdapter openHost(I2cHost host, int number, String name, int[] own, List<Integer> numbers) {
        if (numbers.contains(number)) {
            throw new IllegalArgumentException("--device-list: adapter i2c-" + number + " is listed twice"
                    + (name != null ? " (as '" + name + "' too)" : ""));
        }
        numbers.add(number);
        return HostAdapter.open(host, number, name, own);
    }

    /** The bus number of the one adapter named {@code name} in sysfs. */
    static int resolve(String name, Path sysfsDevices) {
        TreeMap<Integer, String> matches = new TreeMap<>();
        try (DirectoryStream<Path> dirs = Files.newDirectoryStream(sysfsDevices)) {
            for (Path dir : dirs) {
                var m = ADAPTER_DIR.matcher(dir.getFileName().toString());
                if (!m.matches()) {
                    continue; // a client device (0-0050), not an adapter
                }
                String adapterName;
                try {
                    adapterName = Files.readString(dir.resolve("name")).trim();
                } catch (IOException | RuntimeException e) {
                    continue; // unreadable: not the one we look for (upstream fails the whole lookup here)
                }
                if (adapterName.equals(name)) {
                    matches.put(Integer.parseInt(m.group(1)), dir.getFileName().toString());
                }
            }
        } catch (IOException e) {
            throw new IllegalArgumentException("--device-list: cannot look up adapter '" + name + "': " + sysfsDevices
                    + " is not readable (" + e.getClass().getSimpleName() + ")");
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--device-list: adapter '" + name + "': bus number out of range");
        }
        if (matches.isEmpty()) {
            throw new IllegalArgumentException("--device-list: no I2C adapter is named '" + name + "'");
        }
        if (matches.size() > 1) {
            throw new IllegalArgumentException("--device-list: adapters " + String.join(", ", matches.values())
                    + " share the name '" + name + "'");
        }
        return matches.firstKey();
    }

    /** The adapter serving {@code address}, or null (unlisted or out of range). */
    public I2cAdapter adapterFor(int address) {
        return address >= 0 && address < byAddress.length ? byAddress[address] : null;
    }

    @Override
    public void close() {
        adapters.forEach(I2cAdapter::close);
    }
}
