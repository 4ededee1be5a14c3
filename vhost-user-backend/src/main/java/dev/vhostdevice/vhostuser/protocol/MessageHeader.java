package dev.vhostdevice.vhostuser.protocol;

/**
 * The 12-byte header of every vhost-user message: request code, flags (version 1 in bits 0-1, REPLY, NEED_REPLY)
 * and payload size.
 */
public record MessageHeader(int request, int flags, int size) {
    public static final int SIZE = 12;
    public static final int VERSION = 0x1;
    public static final int VERSION_MASK = 0x3;
    public static final int REPLY = 0x4;
    public static final int NEED_REPLY = 0x8;
    /** Largest payload accepted (rust-vmm MAX_MSG_SIZE); anything larger closes the connection. */
    public static final int MAX_PAYLOAD = 4096;
    /**
     * Most fds one message may carry: rust-vmm's MAX_ATTACHED_FD_ENTRIES. QEMU sends at most 8
     * (VHOST_MEMORY_BASELINE_NREGIONS); the Xen bridge sends 7, 13 or 19 grant regions for 1-3 queues.
     */
    public static final int MAX_FDS = 32;

    public int version() {
        return flags & VERSION_MASK;
    }

    public boolean isReply() {
        return (flags & REPLY) != 0;
    }

    public boolean needsReply() {
        return (flags & NEED_REPLY) != 0;
    }

    /** Reserved flag bits (4-31) set. */
    public boolean hasReservedFlags() {
        return (flags & ~(VERSION_MASK | REPLY | NEED_REPLY)) != 0;
    }
}
