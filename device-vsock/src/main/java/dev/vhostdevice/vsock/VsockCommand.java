package dev.vhostdevice.vsock;

import dev.vhostdevice.vhostuser.cli.DaemonCommand;
import dev.vhostdevice.vhostuser.cli.Option;
import dev.vhostdevice.vhostuser.cli.ParsedArgs;
import dev.vhostdevice.vhostuser.cli.UsageException;
import dev.vhostdevice.vhostuser.device.DeviceFactory;
import dev.vhostdevice.vhostuser.sys.Linux;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code vhost-device-vsock}: a drop-in for rust-vmm's daemon of that name (hybrid vsock over Unix sockets).
 * Guests come from {@code --vm} lists (repeatable), the flat options (one guest) or {@code --config FILE}; each
 * has its own vhost-user socket, CID and uds-path, and guests sharing a group reach each other by CID.
 * Differences from upstream: bad values exit with status 2 and one line (upstream panics or exits 0), unknown
 * config keys are refused, {@code OK} carries the host-side port (as Firecracker), the AF_VSOCK back-end
 * ({@code --forward-cid}, {@code --forward-listen}) is not implemented.
 */
public final class VsockCommand extends DaemonCommand {
    static final Option VM = Option.value(null, "--vm", Option.Type.STRING, "LIST",
            "One guest: guest-cid=C,socket=S,uds-path=U[,tx-buffer-size=N][,queue-size=N][,groups=a+b]"
                    + " ('_' or '-' in keys). Repeat for more guests.").asRepeatable();
    static final Option CONFIG = Option.value(null, "--config", Option.Type.PATH, "FILE",
            "YAML file with a 'vms:' list of maps with the --vm keys (guest_cid, socket, uds_path, ...).");
    static final Option GUEST_CID = Option.value(null, "--guest-cid", Option.Type.STRING, "CID",
            "Flat form, one guest: its CID.").withDefault(Long.toString(VmConfig.DEFAULT_GUEST_CID));
    static final Option SOCKET = Option.value(null, "--socket", Option.Type.STRING, "PATH",
            "Flat form: the vhost-user socket to listen on.");
    static final Option UDS_PATH = Option.value(null, "--uds-path", Option.Type.STRING, "PATH",
            "Flat form: the hybrid-vsock Unix socket (guest connections to port P go to PATH_P).");
    static final Option TX_BUFFER_SIZE = Option.value(null, "--tx-buffer-size", Option.Type.STRING, "N",
            "Flat form: per-connection buffer towards the host, the buf_alloc the guest sees.")
            .withDefault(Integer.toString(VmConfig.DEFAULT_TX_BUFFER_SIZE));
    static final Option QUEUE_SIZE = Option.value(null, "--queue-size", Option.Type.STRING, "N",
            "Flat form: largest virtqueue size.").withDefault(Integer.toString(VmConfig.DEFAULT_QUEUE_SIZE));
    static final Option GROUPS = Option.value(null, "--groups", Option.Type.STRING, "G1+G2",
            "Flat form: sibling groups.").withDefault(VmConfig.DEFAULT_GROUP);
    static final Option FORWARD_CID = Option.value(null, "--forward-cid", Option.Type.STRING, "CID",
            "Not supported (AF_VSOCK back-end): refused with a message.");
    static final Option FORWARD_LISTEN = Option.value(null, "--forward-listen", Option.Type.STRING, "P1+P2",
            "Not supported (AF_VSOCK back-end): refused with a message.");
    private static final Option[] FLAT = {SOCKET, UDS_PATH, TX_BUFFER_SIZE, QUEUE_SIZE, GROUPS};

    private final HostSockets sockets;
    private final Linux linux;
    private List<VmConfig> vms = List.of();
    private final List<VsockGuest> guests = new ArrayList<>();
    private SiblingGroups siblings;

    public VsockCommand() {
        this(HostSockets.system(), Linux.system());
    }

    VsockCommand(HostSockets sockets, Linux linux) {
        super("vhost-device-vsock", "virtio-vsock vhost-user back-end: hybrid vsock over Unix sockets, stream and"
                + " seqpacket, sibling guests.", false, VM, CONFIG, GUEST_CID, SOCKET, UDS_PATH, TX_BUFFER_SIZE,
                QUEUE_SIZE, GROUPS, FORWARD_CID, FORWARD_LISTEN);
        this.sockets = sockets;
        this.linux = linux;
    }

    @Override
    protected void configure(ParsedArgs args) {
        if (args.isSet(FORWARD_CID) || args.isSet(FORWARD_LISTEN)) {
            throw new UsageException("--forward-cid/--forward-listen (the AF_VSOCK back-end) is not supported;"
                    + " use --uds-path");
        }
        boolean flat = args.isSet(GUEST_CID);
        for (Option option : FLAT) {
            flat |= args.isSet(option);
        }
        int forms = (args.isSet(CONFIG) ? 1 : 0) + (args.strings(VM).isEmpty() ? 0 : 1) + (flat ? 1 : 0);
        if (forms == 0) {
            throw new UsageException("no guest given: use --vm, --config or --socket with --uds-path");
        }
        if (forms > 1) {
            throw new UsageException("--config, --vm and the flat options (--socket, --uds-path ...) exclude each other");
        }
        List<VmConfig> parsed = new ArrayList<>();
        if (args.isSet(CONFIG)) {
            parsed.addAll(ConfigFile.read(args.path(CONFIG))); // SnakeYAML is loaded only here
        } else if (!flat) {
            for (String list : args.strings(VM)) {
                parsed.add(VmConfig.parseList(list));
            }
        } else {
            Map<String, String> values = new LinkedHashMap<>();
            values.put("guest_cid", args.string(GUEST_CID));
            putIfSet(values, "socket", args, SOCKET);
            putIfSet(values, "uds_path", args, UDS_PATH);
            values.put("tx_buffer_size", args.string(TX_BUFFER_SIZE));
            values.put("queue_size", args.string(QUEUE_SIZE));
            values.put("groups", args.string(GROUPS));
            parsed.add(VmConfig.fromMap(values, "options"));
        }
        VmConfig.checkDistinct(parsed);
        vms = List.copyOf(parsed);
    }

    private static void putIfSet(Map<String, String> values, String key, ParsedArgs args, Option option) {
        if (args.isSet(option)) {
            values.put(key, args.string(option));
        }
    }

    /** The guests as configured (tests). */
    List<VmConfig> vms() {
        return vms;
    }

    @Override
    protected List<Path> socketPaths() {
        List<Path> paths = new ArrayList<>(vms.size());
        for (VmConfig vm : vms) {
            paths.add(vm.socket());
        }
        return paths;
    }

    @Override
    protected DeviceFactory deviceFactory(int socketIndex) throws Exception {
        if (siblings == null) {
            siblings = new SiblingGroups();
        }
        VsockGuest guest = new VsockGuest(vms.get(socketIndex), siblings, sockets, linux);
        synchronized (guests) {
            guests.add(guest);
        }
        siblings.add(guest);
        return () -> new VsockDevice(guest);
    }

    @Override
    public void stop() {
        super.stop();
        synchronized (guests) {
            for (VsockGuest guest : guests) {
                guest.close();
            }
            guests.clear();
        }
    }

    public static void main(String[] args) {
        System.exit(DaemonCommand.execute(new VsockCommand(), args));
    }
}
