package dev.vhostdevice.scmi;

import dev.vhostdevice.vhostuser.cli.DaemonCommand;
import dev.vhostdevice.vhostuser.cli.Option;
import dev.vhostdevice.vhostuser.cli.ParsedArgs;
import dev.vhostdevice.vhostuser.device.DeviceFactory;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Supplier;

/**
 * {@code vhost-device-scmi}: a drop-in for rust-vmm's daemon of that name ({@code -s}, {@code -d KIND[,KEY=VALUE…]}
 * repeatable, {@code --help-devices}), with the {@code clock}, {@code voltage} and {@code power} providers added.
 * Every mistake in a device spec exits with status 2 and one line (upstream exits 0 or 1). {@code -c N} serves
 * N sockets, each guest with its own platform (upstream serves one).
 */
public final class ScmiCommand extends DaemonCommand {
    static final Option DEVICE = Option.value("-d", "--device", Option.Type.STRING, "SPEC",
            "A device to expose: KIND[,KEY=VALUE...], repeatable (kinds: fake, iio, clock, voltage, power; see"
                    + " --help-devices). Example: -d fake,name=accel0 -d clock,name=uart,rate=24000000")
            .asRepeatable();
    static final Option HELP_DEVICES = Option.flag(null, "--help-devices",
            "List the device kinds and their properties, and exit.");

    private List<DeviceSpec> specs = List.of();
    /** Per socket: the sensors' makers (a fake is made per connection, an IIO channel is opened once). */
    private final List<List<Supplier<Sensor>>> sensorsBySocket = new ArrayList<>();

    public ScmiCommand() {
        super("vhost-device-scmi",
                "virtio-scmi vhost-user back-end: an SCMI platform with sensors (simulated or Linux IIO) and"
                        + " simulated clock, voltage and power domains.",
                DEVICE, HELP_DEVICES);
    }

    @Override
    protected void configure(ParsedArgs args) {
        if (args.isSet(HELP_DEVICES)) {
            throw new IllegalArgumentException("--help-devices cannot be combined with other options");
        }
        List<DeviceSpec> parsed = new ArrayList<>();
        for (String spec : args.strings(DEVICE)) {
            parsed.add(DeviceSpec.parse(spec));
        }
        specs = List.copyOf(parsed);
    }

    List<DeviceSpec> specs() {
        return specs;
    }

    @Override
    protected DeviceFactory deviceFactory(int socketIndex) {
        List<Supplier<Sensor>> sensors = new ArrayList<>();
        List<ClockProtocol.Clock> clocks = new ArrayList<>();
        List<VoltageProtocol.Domain> regulators = new ArrayList<>();
        List<PowerProtocol.Domain> powerDomains = new ArrayList<>();
        for (DeviceSpec spec : specs) {
            String name = spec.property("name");
            switch (spec.kind()) {
                case FAKE -> sensors.add(() -> new FakeAccelerometer(name));
                case IIO -> {
                    IioSensor iio = IioSensor.open(Path.of(spec.property("path")), spec.property("channel"), name);
                    sensors.add(() -> iio);
                }
                case CLOCK -> {
                    long rate = spec.number("rate", 100_000_000L, 0, Long.MAX_VALUE);
                    clocks.add(new ClockProtocol.Clock(name != null ? name : "clk" + clocks.size(), rate,
                            spec.number("min", rate, 0, Long.MAX_VALUE), spec.number("max", rate, 0, Long.MAX_VALUE),
                            spec.number("step", 1, 1, Long.MAX_VALUE), true));
                }
                case VOLTAGE -> {
                    int level = (int) spec.number("level", 1_800_000, Integer.MIN_VALUE, Integer.MAX_VALUE);
                    regulators.add(new VoltageProtocol.Domain(name != null ? name : "vdd" + regulators.size(), level,
                            (int) spec.number("min", level, Integer.MIN_VALUE, Integer.MAX_VALUE),
                            (int) spec.number("max", level, Integer.MIN_VALUE, Integer.MAX_VALUE),
                            (int) spec.number("step", 1, 1, Integer.MAX_VALUE), true));
                }
                case POWER -> {
                    String state = spec.properties().getOrDefault("state", "on");
                    if (!state.equals("on") && !state.equals("off")) {
                        throw new IllegalArgumentException("--device power: state '" + state + "' is not on or off");
                    }
                    powerDomains.add(new PowerProtocol.Domain(name != null ? name : "pd" + powerDomains.size(),
                            state.equals("on")));
                }
                default -> throw new IllegalStateException(spec.kind().toString());
            }
        }
        if (sensors.size() > 0xFFFF) {
            throw new IllegalArgumentException("at most 65535 sensors");
        }
        sensorsBySocket.add(sensors);
        List<ClockProtocol.Clock> clockList = List.copyOf(clocks);
        List<VoltageProtocol.Domain> voltageList = List.copyOf(regulators);
        List<PowerProtocol.Domain> powerList = List.copyOf(powerDomains);
        return () -> new ScmiDevice(platform(sensors, clockList, voltageList, powerList));
    }

    /** A fresh platform for one connection. */
    static ScmiPlatform platform(List<Supplier<Sensor>> sensors, List<ClockProtocol.Clock> clocks,
            List<VoltageProtocol.Domain> regulators, List<PowerProtocol.Domain> powerDomains) {
        List<Sensor> made = sensors.stream().map(Supplier::get).toList();
        return new ScmiPlatform(new SensorProtocol(made, System::nanoTime), List.of(new ClockProtocol(clocks),
                new VoltageProtocol(regulators), new PowerProtocol(powerDomains)));
    }

    /**
     * Runs the daemon: {@code --help-devices} alone prints the device kinds (it needs no socket, so it is
     * answered before the socket options are checked); anything else goes to {@link DaemonCommand#execute}.
     */
    static int run(PrintStream out, String... args) {
        if (Arrays.asList(args).contains(HELP_DEVICES.longName())) {
            if (args.length != 1) {
                System.err.println("vhost-device-scmi: --help-devices cannot be combined with other options");
                System.err.println("Try 'vhost-device-scmi --help' for more information.");
                return EXIT_USAGE;
            }
            out.print(DeviceSpec.help());
            out.flush();
            return 0;
        }
        return DaemonCommand.execute(new ScmiCommand(), args);
    }

    public static void main(String[] args) {
        System.exit(run(System.out, args));
    }
}
