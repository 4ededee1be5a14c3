package dev.vhostdevice.vsock;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * One guest connection to the host: its host socket, credit counters both ways, and what it owes the guest.
 * Owned by its {@link VsockDevice}'s worker; no locking.
 */
final class Connection {
    enum State {
        /** Host-initiated: accepted on the uds-path, waiting for the {@code CONNECT <port>} line. */
        HANDSHAKE,
        /** Host-initiated: REQUEST sent (or due), waiting for the guest's RESPONSE or RST. */
        REQUESTED,
        ESTABLISHED,
        /** Host socket closed; only an RST (if due) is left to deliver. */
        CLOSED
    }

    final int slot;
    int fd;
    State state;
    int type;
    int hostPort;
    int guestPort;

    // Guest -> host: bytes received from the guest, bytes the host socket took, what the guest last heard.
    int rxCnt;
    int fwdCnt;
    int advertisedFwdCnt;
    ByteRing out;
    /** SEQPACKET: lengths of complete messages queued in {@link #out}, oldest first. */
    int[] messageLengths;
    int messageHead;
    int messageCount;
    /** SEQPACKET: bytes of the message being assembled (its fragments so far), at the end of {@link #out}. */
    long assembling;

    // Host -> guest: the guest's buffer and counter (from each of its headers) and the bytes we sent it.
    int peerBufAlloc;
    int peerFwdCnt;
    int txCnt;
    /** SEQPACKET: the host message being delivered in fragments. */
    Arena messageArena;
    MemorySegment message;
    int messageLength;
    int messageOffset;

    /** The host socket may have bytes (or an end of stream) to read: edge seen, not yet drained. */
    boolean hostReadable;
    boolean hostEof;
    /** An edge reported the peer's close (RDHUP/HUP/ERR): read on until the end of stream shows. */
    boolean hostHungUp;
    boolean guestShutRcv;
    boolean guestShutSend;
    /** The guest closed (SHUTDOWN with both flags): RST once the queued bytes reached the host. */
    boolean closeAfterFlush;
    boolean hostShutWr;

    // Packets owed to the guest.
    boolean requestDue;
    boolean responseDue;
    boolean creditUpdateDue;
    boolean creditRequestSent;
    boolean rstDue;

    /** In the device's RX queue of connections with something to send. */
    boolean queued;
    /** Removed from the device; a stale entry in the RX queue is skipped. */
    boolean dead;

    Connection(int slot) {
        this.slot = slot;
    }

    long key() {
        return ConnectionTable.key(hostPort, guestPort);
    }

    /** Bytes from the guest not yet taken by the host socket. */
    int buffered() {
        return rxCnt - fwdCnt;
    }

    /** Bytes the guest can still take from us: its buf_alloc minus what it has not consumed yet. */
    long credit() {
        long inFlight = (txCnt - peerFwdCnt) & 0xFFFF_FFFFL;
        long alloc = peerBufAlloc & 0xFFFF_FFFFL;
        return inFlight >= alloc ? 0 : alloc - inFlight;
    }

    boolean seqpacket() {
        return type == VsockPacket.TYPE_SEQPACKET;
    }

    void release() {
        if (out != null) {
            out.close();
            out = null;
        }
        if (messageArena != null) {
            messageArena.close();
            messageArena = null;
            message = null;
        }
    }

    @Override
    public String toString() {
        return "conn[host:" + Integer.toUnsignedString(hostPort) + " guest:" + Integer.toUnsignedString(guestPort)
                + (seqpacket() ? " seqpacket" : "") + " " + state + "]";
    }
}
