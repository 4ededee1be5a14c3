package dev.vhostdevice.i2c;

import dev.vhostdevice.vhostuser.cli.DaemonCommand;
import dev.vhostdevice.vhostuser.cli.Option;
import dev.vhostdevice.vhostuser.cli.ParsedArgs;
import dev.vhostdevice.vhostuser.device.DeviceFactory;
import java.nio.file.Path;

/**
 * {@code vhost-device-i2c}: a drop-in for rust-vmm's daemon of that name. Differences: with
 * {@code --socket-count 1} (the default) the socket is exactly {@code --socket-path}; address 128 is refused
 * (upstream accepts it); {@code sim} names a simulated EEPROM adapter. All sockets share the adapters, as
 * upstream's do.
 */
public final class I2cCommand extends DaemonCommand {
    static final Option DEVICE_LIST = Option.value("-l", "--device-list", Option.Type.STRING, "LIST",
            "Adapters and client addresses: <adapter>:<addr>[:<addr>...][,...]. An adapter is a bus"
                    + " number (/dev/i2c-N), an adapter name from /sys/bus/i2c/devices/i2c-N/name, or 'sim' (256-byte"
                    + " 24C02-like EEPROMs at the listed addresses); addresses are decimal, 0 to 127."
                    + " Example: -l 6:32:41,sim:80").asRequired();

    String deviceList;

    private final I2cHost host;
    private final Path sysfsDevices;
    private I2cBus bus;

    public I2cCommand() {
        this(I2cHost.system(), I2cBus.SYSFS_DEVICES);
    }

    I2cCommand(I2cHost host, Path sysfsDevices) {
        super("vhost-device-i2c",
                "virtio-i2c vhost-user back-end: passes the guest's I2C transfers to host adapters.", DEVICE_LIST);
        this.host = host;
        this.sysfsDevices = sysfsDevices;
    }

    @Override
    protected void configure(ParsedArgs args) {
        deviceList = args.string(DEVICE_LIST);
    }

    @Override
    protected DeviceFactory deviceFactory(int socketIndex) {
        if (bus == null) {
            bus = I2cBus.open(DeviceList.parse(deviceList), host, sysfsDevices);
        }
        I2cBus shared = bus;
        return () -> new I2cDevice(shared);
    }

    /** The bus once the first factory was asked for (tests). */
    I2cBus bus() {
        return bus;
    }

    public static void main(String[] args) {
        System.exit(DaemonCommand.execute(new I2cCommand(), args));
    }
}
