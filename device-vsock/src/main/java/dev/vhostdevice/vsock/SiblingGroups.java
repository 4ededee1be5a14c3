package dev.vhostdevice.vsock;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** The daemon's guests by CID, for sibling connections: a guest reaches another only if they share a group. */
final class SiblingGroups {
    private final Map<Long, VsockGuest> byCid = new ConcurrentHashMap<>();

    void add(VsockGuest guest) {
        if (byCid.putIfAbsent(guest.cid(), guest) != null) {
            throw new IllegalArgumentException("guest CID " + guest.cid() + " is used by two guests");
        }
    }

    /** The guest {@code from} may reach at {@code cid}, or null (unknown CID, or no common group). */
    VsockGuest reachable(VsockGuest from, long cid) {
        VsockGuest to = byCid.get(cid);
        return to != null && to != from && from.config.sharesGroupWith(to.config) ? to : null;
    }
}
