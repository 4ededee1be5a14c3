package dev.vhostdevice.vsock;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * One guest's settings, as {@code --vm}, the flat options or a {@code --config} entry give them.
 *
 * @param guestCid     the guest's CID (config space), 3 to 2^32-2
 * @param socket       the vhost-user socket
 * @param udsPath      the hybrid-vsock Unix socket: host programs connect here, guest connections go to PATH_port
 * @param txBufferSize bytes per connection buffered towards the host, the buf_alloc advertised to the guest
 * @param queueSize    largest ring size accepted
 * @param groups       sibling groups: guests sharing one can connect to each other by CID
 */
public record VmConfig(long guestCid, Path socket, Path udsPath, int txBufferSize, int queueSize, Set<String> groups) {
    public static final long DEFAULT_GUEST_CID = 3;
    /** Upstream's default is 64 KiB; a quarter of a MiB matches what Linux guests advertise and halves the rounds. */
    public static final int DEFAULT_TX_BUFFER_SIZE = 256 * 1024;
    public static final int DEFAULT_QUEUE_SIZE = 1024;
    public static final String DEFAULT_GROUP = "default";
    /** CIDs 0-2 are reserved (hypervisor, loopback, host); 2^32-1 is VMADDR_CID_ANY. */
    static final long MIN_GUEST_CID = 3;
    static final long MAX_GUEST_CID = 0xFFFF_FFFEL;
    static final int MIN_TX_BUFFER_SIZE = 4096;
    static final int MAX_TX_BUFFER_SIZE = 64 << 20;
    static final int MAX_QUEUE_SIZE = 32768;

    /** The keys of a {@code --vm} list and of a config entry (spelled with '_'; '-' is accepted too). */
    static final List<String> KEYS = List.of("guest_cid", "socket", "uds_path", "tx_buffer_size", "queue_size", "groups");

    public VmConfig {
        if (guestCid < MIN_GUEST_CID || guestCid > MAX_GUEST_CID) {
            throw new IllegalArgumentException("guest-cid must be " + MIN_GUEST_CID + " to " + MAX_GUEST_CID
                    + " (0-2 are reserved), got " + guestCid);
        }
        if (txBufferSize < MIN_TX_BUFFER_SIZE || txBufferSize > MAX_TX_BUFFER_SIZE) {
            throw new IllegalArgumentException("tx-buffer-size must be " + MIN_TX_BUFFER_SIZE + " to "
                    + MAX_TX_BUFFER_SIZE + ", got " + txBufferSize);
        }
        if (queueSize < 1 || queueSize > MAX_QUEUE_SIZE || Integer.bitCount(queueSize) != 1) {
            throw new IllegalArgumentException("queue-size must be a power of two up to " + MAX_QUEUE_SIZE + ", got "
                    + queueSize);
        }
        if (groups.isEmpty()) {
            throw new IllegalArgumentException("groups must name at least one group");
        }
        groups = Set.copyOf(groups);
    }

    /** Whether this guest and {@code other} share a group (sibling connections allowed). */
    boolean sharesGroupWith(VmConfig other) {
        for (String group : groups) {
            if (other.groups.contains(group)) {
                return true;
            }
        }
        return false;
    }

    /** Parses {@code --vm guest-cid=C,socket=S,uds-path=U[,...]}; IllegalArgumentException with one line. */
    static VmConfig parseList(String list) {
        Map<String, String> values = new LinkedHashMap<>();
        for (String item : list.split(",", -1)) {
            int equals = item.indexOf('=');
            if (equals <= 0) {
                throw new IllegalArgumentException("--vm: '" + item + "' is not key=value (in '" + list + "')");
            }
            String key = item.substring(0, equals).replace('-', '_');
            if (values.put(key, item.substring(equals + 1)) != null) {
                throw new IllegalArgumentException("--vm: key " + key + " given twice (in '" + list + "')");
            }
        }
        return fromMap(values, "--vm");
    }

    /** Builds a config from key/value strings (the --vm list, a YAML entry, the flat options). */
    static VmConfig fromMap(Map<String, String> values, String where) {
        for (String key : values.keySet()) {
            if (!KEYS.contains(key)) {
                if (key.equals("forward_cid") || key.equals("forward_listen")) {
                    throw new IllegalArgumentException(where + ": " + key.replace('_', '-')
                            + " (the AF_VSOCK back-end) is not supported; use uds-path");
                }
                throw new IllegalArgumentException(where + ": unknown key '" + key + "' (known: "
                        + String.join(", ", KEYS) + ")");
            }
        }
        String socket = values.get("socket");
        if (socket == null || socket.isEmpty()) {
            throw new IllegalArgumentException(where + ": socket is required");
        }
        String uds = values.get("uds_path");
        if (uds == null || uds.isEmpty()) {
            throw new IllegalArgumentException(where + ": uds-path is required");
        }
        long cid = number(values, "guest_cid", DEFAULT_GUEST_CID, where);
        long tx = number(values, "tx_buffer_size", DEFAULT_TX_BUFFER_SIZE, where);
        long queue = number(values, "queue_size", DEFAULT_QUEUE_SIZE, where);
        Set<String> groups = new TreeSet<>();
        for (String group : values.getOrDefault("groups", DEFAULT_GROUP).split("\\+", -1)) {
            if (group.isEmpty()) {
                throw new IllegalArgumentException(where + ": empty group name in groups '" + values.get("groups") + "'");
            }
            groups.add(group);
        }
        try {
            return new VmConfig(cid, Path.of(socket), Path.of(uds), (int) Math.min(tx, Integer.MAX_VALUE),
                    (int) Math.min(queue, Integer.MAX_VALUE), groups);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(where + ": " + e.getMessage());
        }
    }

    private static long number(Map<String, String> values, String key, long fallback, String where) {
        String text = values.get(key);
        if (text == null) {
            return fallback;
        }
        try {
            long value = Long.parseLong(text.strip());
            if (value < 0) {
                throw new NumberFormatException();
            }
            return value;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(where + ": " + key.replace('_', '-') + " '" + text
                    + "' is not a non-negative number");
        }
    }

    /** Refuses duplicate CIDs, sockets and uds paths across guests, with one line. */
    static void checkDistinct(List<VmConfig> vms) {
        for (int i = 0; i < vms.size(); i++) {
            for (int j = 0; j < i; j++) {
                VmConfig a = vms.get(j);
                VmConfig b = vms.get(i);
                if (a.guestCid == b.guestCid) {
                    throw new IllegalArgumentException("guest CID " + a.guestCid + " is used by two guests");
                }
                if (a.socket.equals(b.socket)) {
                    throw new IllegalArgumentException("socket " + a.socket + " is used by two guests");
                }
                if (a.udsPath.equals(b.udsPath)) {
                    throw new IllegalArgumentException("uds-path " + a.udsPath + " is used by two guests");
                }
            }
        }
    }
}
