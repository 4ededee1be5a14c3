package dev.vhostdevice.gpio;

import dev.vhostdevice.vhostuser.cli.DaemonCommand;
import dev.vhostdevice.vhostuser.cli.Option;
import dev.vhostdevice.vhostuser.cli.ParsedArgs;
import dev.vhostdevice.vhostuser.device.DeviceFactory;
import dev.vhostdevice.vhostuser.sys.Linux;

/**
 * {@code vhost-device-gpio}: a drop-in for rust-vmm's daemon of that name. Differences: with
 * {@code --socket-count 1} (the default) the socket is exactly {@code --socket-path}; {@code sN} (a simulated
 * chip with wired line pairs) is always available, not only in a special build. Each connection opens its chip
 * afresh (host lines released when it ends, a simulated chip back to its initial state).
 */
public final class GpioCommand extends DaemonCommand {
    static final Option DEVICE_LIST = Option.value("-l", "--device-list", Option.Type.STRING, "LIST",
            "Chips, one per socket: <chip>[:<chip>...], entry i for socket i. A chip is N for /dev/gpiochipN or sN"
                    + " for a simulated chip of N lines (1 to 256, wired in pairs 0-1, 2-3, ...: an input reads its"
                    + " partner output). Example: -c 2 -l 0:s8").asRequired();

    String deviceList;

    private final GpioHost host;
    private ChipList chips;

    public GpioCommand() {
        this(GpioHost.system());
    }

    GpioCommand(GpioHost host) {
        super("vhost-device-gpio",
                "virtio-gpio vhost-user back-end: gives each guest the lines of a host GPIO chip or a simulated one.",
                DEVICE_LIST);
        this.host = host;
    }

    @Override
    protected void configure(ParsedArgs args) {
        deviceList = args.string(DEVICE_LIST);
    }

    @Override
    protected DeviceFactory deviceFactory(int socketIndex) {
        if (chips == null) {
            chips = ChipList.parse(deviceList, sockets.socketCount());
            for (ChipList.Entry entry : chips.entries()) {
                if (entry instanceof ChipList.HostEntry h) {
                    HostChip.open(host, h.path()).close(); // refuse a chip that cannot be used now, at start-up
                }
            }
        }
        return switch (chips.entries().get(socketIndex)) {
            case ChipList.SimulatedEntry s -> () -> new GpioDevice(new SimulatedChip(s.lines(), Linux.system()));
            case ChipList.HostEntry h -> () -> new GpioDevice(HostChip.open(host, h.path()));
        };
    }

    public static void main(String[] args) {
        System.exit(DaemonCommand.execute(new GpioCommand(), args));
    }
}
