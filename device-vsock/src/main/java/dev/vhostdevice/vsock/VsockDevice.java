package dev.vhostdevice.vsock;

import static dev.vhostdevice.vsock.VsockPacket.HEADER_SIZE;
import static dev.vhostdevice.vsock.VsockPacket.MAX_PAYLOAD;
import static dev.vhostdevice.vsock.VsockPacket.OP_CREDIT_REQUEST;
import static dev.vhostdevice.vsock.VsockPacket.OP_CREDIT_UPDATE;
import static dev.vhostdevice.vsock.VsockPacket.OP_REQUEST;
import static dev.vhostdevice.vsock.VsockPacket.OP_RESPONSE;
import static dev.vhostdevice.vsock.VsockPacket.OP_RST;
import static dev.vhostdevice.vsock.VsockPacket.OP_RW;
import static dev.vhostdevice.vsock.VsockPacket.OP_SHUTDOWN;
import static dev.vhostdevice.vsock.VsockPacket.SEQ_EOM;
import static dev.vhostdevice.vsock.VsockPacket.SEQ_EOR;
import static dev.vhostdevice.vsock.VsockPacket.SHUTDOWN_RCV;
import static dev.vhostdevice.vsock.VsockPacket.SHUTDOWN_SEND;
import static dev.vhostdevice.vsock.VsockPacket.TYPE_SEQPACKET;
import static dev.vhostdevice.vsock.VsockPacket.TYPE_STREAM;
import static dev.vhostdevice.vsock.VsockPacket.VMADDR_CID_HOST;

import dev.vhostdevice.vhostuser.device.DeviceContext;
import dev.vhostdevice.vhostuser.device.DeviceQueue;
import dev.vhostdevice.vhostuser.device.VirtioDevice;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.Chain;
import dev.vhostdevice.virtqueue.ChainReader;
import dev.vhostdevice.virtqueue.ChainWriter;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.EnumSet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * virtio-vsock (virtio 1.2 §5.10, device id 19) with hybrid-vsock host sockets (Firecracker's scheme): queues
 * rx 0, tx 1, event 2; config {@code le64 guest_cid}; STREAM and SEQPACKET.
 *
 * <p>Guest to host: a guest REQUEST to CID 2 port P connects a non-blocking AF_UNIX socket (of the packet's type)
 * to {@code <uds-path>_P}; RESPONSE if it connects, RST at once if not. Host to guest: a program connects to
 * {@code <uds-path>} and writes {@code CONNECT <port>\n}; the device sends REQUEST, and on the guest's RESPONSE
 * writes {@code OK <host port>\n} (on RST it closes the socket). The line is peeked, then exactly its bytes
 * consumed, so data sent right after it stays in the socket for the connection. Half-close maps both ways
 * (SHUTDOWN SEND becomes shutdown(SHUT_WR) once queued bytes are written; end of stream becomes SHUTDOWN SEND).
 *
 * <p>Credit, exactly per spec: the device never sends the guest more than its buf_alloc minus the bytes it has
 * not consumed; it advertises its own buf_alloc (tx-buffer-size) and fwd_cnt (bytes the host socket took) in every
 * header, sends CREDIT_UPDATE once a quarter of the buffer was forwarded since the guest last heard, and answers
 * CREDIT_REQUEST. A slow host reader therefore stops the guest's sender through credit: the bytes it cannot take
 * wait in a per-connection ring (allocated only then) that a guest within its credit cannot overflow. A guest that
 * exceeds its credit gets RST for that connection.
 *
 * <p>Sibling guests (a common group) reach each other by CID: their packets are passed verbatim through the
 * receiver's {@link SiblingInbox}; a CID outside the groups gets RST. Every header field is checked: a wrong
 * src_cid is dropped, unknown types, ops, lengths beyond the buffers and packets for unknown connections are
 * answered with RST (an RST is never answered); each kind is logged once.
 *
 * <p>Host sockets are non-blocking, edge-triggered in the worker's epoll set (watched once, never re-armed): the
 * device remembers what an edge announced and reads until a short read. Bytes move between guest memory and the
 * sockets with sendmsg/recvmsg over the chain's own pieces, no copy. Nothing is allocated per packet.
 */
public final class VsockDevice implements VirtioDevice {
    public static final int VIRTIO_ID_VSOCK = 19;
    static final int RX_QUEUE = 0;
    static final int TX_QUEUE = 1;
    static final int EVENT_QUEUE = 2;
    static final int CONFIG_SIZE = 8;
    /** Connections per guest; more get RST. */
    static final int MAX_CONNECTIONS = 4096;
    /** Host ports for host-initiated connections start here (as Firecracker's), away from well-known ports. */
    static final int FIRST_HOST_PORT = 1 << 30;
    /** The longest CONNECT line accepted, newline included. */
    static final int MAX_CONNECT_LINE = 64;
    /** SEQPACKET messages queued towards the host per connection. */
    static final int MAX_QUEUED_MESSAGES = 256;

    static final int TOKEN_LISTENER = 0;
    static final int TOKEN_WAKE = 1;
    private static final int TOKEN_FIRST_CONNECTION = 2;
    private static final int EPOLLRDHUP = 0x2000;
    private static final int EPOLLET = 1 << 31;
    private static final int CONNECTION_EVENTS = Linux.EPOLLIN | Linux.EPOLLOUT | EPOLLRDHUP | EPOLLET;

    private static final ValueLayout.OfInt INT_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final Logger LOG = LoggerFactory.getLogger(VsockDevice.class);

    /** Guest misbehaviour, each logged once per device and counted. */
    enum Complaint {
        SHORT_HEADER("a TX packet shorter than the 44-byte header"),
        SPOOFED_SRC_CID("a packet whose src_cid is not the guest's CID (dropped)"),
        BAD_TYPE("a packet of an unknown or unnegotiated type"),
        BAD_OP("a packet with an unknown op"),
        BAD_LENGTH("a packet whose len exceeds its buffers or 64 KiB"),
        UNKNOWN_CONNECTION("a packet for a connection that does not exist"),
        OVER_CREDIT("more bytes than the credit it was given"),
        NOT_REACHABLE("a packet for a CID it may not reach"),
        SMALL_RX_BUFFER("an RX buffer smaller than the header"),
        TOO_MANY_CONNECTIONS("more than " + MAX_CONNECTIONS + " connections"),
        BAD_CONNECT_LINE("a host program sent a malformed CONNECT line");

        final String description;

        Complaint(String description) {
            this.description = description;
        }
    }

    private final VsockGuest guest;
    private final HostSockets sockets;
    private final long cid;
    private final int bufAlloc;
    private final int creditUpdateThreshold;
    private final Arena arena = Arena.ofShared();
    private final IoVector vector = new IoVector(arena);
    private final MemorySegment lineBuffer = arena.allocate(MAX_CONNECT_LINE);
    private final MemorySegment okLine = arena.allocate(32);
    private Chain txChain = new Chain();
    private final Chain rxChain = new Chain();
    private final Chain eventChain = new Chain();
    /** A sibling packet that did not fit the receiver's inbox: held, and retried when it wakes us. */
    private Chain stalledChain = new Chain();
    private boolean stalled;
    private VsockGuest stalledTarget;
    private final Runnable wakeSelf;

    private final ConnectionTable connections = new ConnectionTable();
    private Connection[] bySlot = new Connection[64];
    private final int[] freeSlots = new int[MAX_CONNECTIONS];
    private int freeSlotCount;
    private int nextSlot;
    private final ArrayDeque<Connection> rxPending = new ArrayDeque<>(64);
    private int nextHostPort = FIRST_HOST_PORT;

    // RSTs for packets that have no connection (refused connects, unknown ports): src cid/port, dst port, type.
    private static final int RST_QUEUE = 256;
    private final long[] rstSrcCid = new long[RST_QUEUE];
    private final int[] rstSrcPort = new int[RST_QUEUE];
    private final int[] rstDstPort = new int[RST_QUEUE];
    private final int[] rstType = new int[RST_QUEUE];
    private int rstHead;
    private int rstCount;

    private final EnumSet<Complaint> complained = EnumSet.noneOf(Complaint.class);
    private final long[] complaintCounts = new long[Complaint.values().length];
    private DeviceContext context;
    private boolean closed;
    private boolean seqpacketAcked;
    private boolean transportResetDue;
    private boolean siblingTurn;
    private long lastSiblingCid = -1;
    private VsockGuest lastSibling;

    // The header of the TX packet being handled.
    private long hSrcCid;
    private long hDstCid;
    private int hSrcPort;
    private int hDstPort;
    private int hLen;
    private int hType;
    private int hOp;
    private int hFlags;
    private int hBufAlloc;
    private int hFwdCnt;

    VsockDevice(VsockGuest guest) {
        this.guest = guest;
        this.sockets = guest.sockets;
        this.cid = guest.cid();
        this.bufAlloc = guest.config.txBufferSize();
        this.creditUpdateThreshold = bufAlloc / 4;
        this.wakeSelf = guest::wake;
        this.transportResetDue = guest.deviceStarted();
    }

    @Override
    public int queueCount() {
        return 3;
    }

    @Override
    public int maxQueueSize() {
        return guest.config.queueSize();
    }

    @Override
    public long deviceFeatures() {
        return (1L << VsockPacket.VIRTIO_VSOCK_F_STREAM) | (1L << VsockPacket.VIRTIO_VSOCK_F_SEQPACKET);
    }

    @Override
    public int configSize() {
        return CONFIG_SIZE;
    }

    @Override
    public void readConfig(int offset, byte[] destination) {
        for (int i = 0; i < destination.length; i++) {
            destination[i] = (byte) (cid >>> (8 * (offset + i)));
        }
    }

    @Override
    public void attach(DeviceContext deviceContext) {
        context = deviceContext;
        context.watchFd(guest.listenFd, Linux.EPOLLIN, TOKEN_LISTENER);
        context.watchFd(guest.wakeFd, Linux.EPOLLIN, TOKEN_WAKE);
        guest.served(true);
    }

    @Override
    public void featuresAcked(long features) {
        seqpacketAcked = (features & (1L << VsockPacket.VIRTIO_VSOCK_F_SEQPACKET)) != 0;
    }

    // ------------------------------------------------------------------------------------------ queues

    @Override
    public void handleQueue(DeviceQueue queue) {
        switch (queue.index()) {
            case TX_QUEUE -> drainTx(queue);
            case EVENT_QUEUE -> sendTransportReset(queue);
            default -> { }
        }
        pumpRx();
    }

    private void sendTransportReset(DeviceQueue queue) {
        if (transportResetDue && queue.pop(eventChain)) {
            transportResetDue = false;
            if (eventChain.isValid() && eventChain.writableBytes() >= 4) {
                eventChain.writer().writeInt(VsockPacket.VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
            }
            queue.complete(eventChain);
        }
    }

    /**
     * Drains the TX ring. It also runs outside the ring's own service (a sibling's wake-up), so it re-enables
     * notifications itself: with EVENT_IDX a stale avail_event would stop the guest's kicks for good.
     */
    private void drainTx(DeviceQueue queue) {
        do {
            if (stalled && !retryStalled(queue)) {
                return;
            }
            while (queue.pop(txChain)) {
                if (!handleTx(txChain)) {
                    // The sibling's inbox is full: hold this chain (popped, not completed) until it wakes us.
                    stalled = true;
                    Chain held = txChain;
                    txChain = stalledChain;
                    stalledChain = held;
                    return;
                }
                queue.complete(txChain);
            }
        } while (queue.splitQueue().enableNotification());
    }

    private boolean retryStalled(DeviceQueue queue) {
        if (!stalledTarget.inbox.offer(stalledChain.reader(), HEADER_SIZE + hLenOf(stalledChain), wakeSelf)) {
            return false;
        }
        stalled = false;
        stalledTarget = null;
        queue.complete(stalledChain);
        return true;
    }

    private static int hLenOf(Chain chain) {
        ChainReader reader = chain.reader();
        reader.seek(VsockPacket.OFF_LEN);
        return reader.readInt();
    }

    /** Handles one TX packet; false only when a sibling could not take it yet (the chain is then held). */
    boolean handleTx(Chain chain) {
        if (!chain.isValid()) {
            return true; // the walker logged its fault; completed with 0 bytes
        }
        if (chain.readableBytes() < HEADER_SIZE) {
            complain(Complaint.SHORT_HEADER, chain);
            return true;
        }
        ChainReader reader = chain.reader();
        hSrcCid = reader.readLong();
        hDstCid = reader.readLong();
        hSrcPort = reader.readInt();
        hDstPort = reader.readInt();
        hLen = reader.readInt();
        hType = reader.readUnsignedShort();
        hOp = reader.readUnsignedShort();
        hFlags = reader.readInt();
        hBufAlloc = reader.readInt();
        hFwdCnt = reader.readInt();
        if (hSrcCid != cid) {
            complain(Complaint.SPOOFED_SRC_CID, chain);
            return true;
        }
        boolean lengthOk = hLen >= 0 && hLen <= MAX_PAYLOAD && hLen <= chain.readableBytes() - HEADER_SIZE;
        if (hDstCid != VMADDR_CID_HOST) {
            return toSibling(chain, lengthOk);
        }
        if (hType != TYPE_STREAM && !(hType == TYPE_SEQPACKET && seqpacketAcked)) {
            complain(Complaint.BAD_TYPE, chain);
            replyRst(VMADDR_CID_HOST);
            return true;
        }
        long key = ConnectionTable.key(hDstPort, hSrcPort);
        Connection c = connections.get(key);
        if (LOG.isTraceEnabled() && hOp != OP_RW) {
            LOG.trace("guest {}: TX {} flags {} len {} for {}", cid, VsockPacket.opName(hOp), hFlags, hLen, c);
        }
        if (!lengthOk || hOp < OP_REQUEST || hOp > OP_CREDIT_REQUEST) {
            complain(lengthOk ? Complaint.BAD_OP : Complaint.BAD_LENGTH, chain);
            if (c != null && hOp != OP_RST) {
                resetConnection(c);
            } else if (hOp != OP_RST) {
                replyRst(VMADDR_CID_HOST);
            }
            return true;
        }
        if (c != null && c.type != hType) {
            complain(Complaint.BAD_TYPE, chain); // a stream packet on a seqpacket connection or the reverse
            if (hOp != OP_RST) {
                resetConnection(c);
            } else {
                removeConnection(c);
            }
            return true;
        }
        if (c == null) {
            if (hOp == OP_REQUEST) {
                guestConnect();
            } else if (hOp != OP_RST) {
                complain(Complaint.UNKNOWN_CONNECTION, chain);
                replyRst(VMADDR_CID_HOST);
            }
            return true;
        }
        // Every packet of a known connection carries the guest's current credit.
        boolean hadCredit = c.credit() > 0;
        c.peerBufAlloc = hBufAlloc;
        c.peerFwdCnt = hFwdCnt;
        if (!hadCredit && c.credit() > 0) {
            c.creditRequestSent = false;
            schedule(c);
        }
        switch (hOp) {
            case OP_REQUEST -> resetConnection(c); // a second REQUEST for a live connection
            case OP_RESPONSE -> guestAccepted(c);
            case OP_RST -> removeConnection(c);
            case OP_SHUTDOWN -> guestShutdown(c);
            case OP_RW -> guestData(c, chain);
            case OP_CREDIT_REQUEST -> {
                c.creditUpdateDue = true;
                schedule(c);
            }
            default -> { } // CREDIT_UPDATE: the credit above was all of it
        }
        return true;
    }

    // ------------------------------------------------------------------------------------------ guest -> host

    /** A guest REQUEST to the host: connect {@code <uds-path>_port} at once, RESPONSE or RST. */
    private void guestConnect() {
        if (connections.size() >= MAX_CONNECTIONS) {
            complain(Complaint.TOO_MANY_CONNECTIONS, null);
            replyRst(VMADDR_CID_HOST);
            return;
        }
        Path target = Path.of(guest.config.udsPath() + "_" + Integer.toUnsignedString(hDstPort));
        int fd;
        try {
            int socketType = hType == TYPE_SEQPACKET ? HostSockets.SOCK_SEQPACKET : HostSockets.SOCK_STREAM;
            fd = sockets.connect(target, socketType);
        } catch (ErrnoException e) {
            LOG.debug("guest {}: connect to {} refused: {}", cid, target, e.getMessage());
            replyRst(VMADDR_CID_HOST);
            return;
        }
        Connection c = newConnection(fd, hType, hDstPort, hSrcPort, Connection.State.ESTABLISHED);
        if (c == null) {
            replyRst(VMADDR_CID_HOST);
            return;
        }
        c.peerBufAlloc = hBufAlloc;
        c.peerFwdCnt = hFwdCnt;
        c.responseDue = true;
        schedule(c);
    }

    /** The guest accepted a host-initiated connection: tell the host program, then let bytes flow. */
    private void guestAccepted(Connection c) {
        if (c.state != Connection.State.REQUESTED) {
            resetConnection(c);
            return;
        }
        byte[] line = ("OK " + Integer.toUnsignedString(c.hostPort) + "\n").getBytes(StandardCharsets.US_ASCII);
        MemorySegment.copy(line, 0, okLine, ValueLayout.JAVA_BYTE, 0, line.length);
        vector.clear();
        vector.add(okLine, 0, line.length);
        try {
            if (sockets.send(c.fd, vector) != line.length) {
                // A fresh socket whose peer never read: it cannot take 16 bytes, so it is not worth serving.
                throw new ErrnoException("send OK line", dev.vhostdevice.virtqueue.memory.Errno.EAGAIN);
            }
        } catch (ErrnoException e) {
            LOG.debug("{}: host program went away before OK: {}", c, e.getMessage());
            resetConnection(c);
            return;
        }
        c.state = Connection.State.ESTABLISHED;
        c.hostReadable = true; // anything sent after the CONNECT line is already waiting
        schedule(c);
    }

    private void guestShutdown(Connection c) {
        if ((hFlags & SHUTDOWN_RCV) != 0 && !c.guestShutRcv) {
            c.guestShutRcv = true;
            sockets.shutdown(c.fd, HostSockets.SHUT_RD);
        }
        if ((hFlags & SHUTDOWN_SEND) != 0) {
            c.guestShutSend = true;
        }
        if (c.guestShutRcv && c.guestShutSend) {
            c.closeAfterFlush = true;
        }
        afterFlush(c);
    }

    private void guestData(Connection c, Chain chain) {
        if (c.state != Connection.State.ESTABLISHED || c.guestShutSend) {
            resetConnection(c);
            return;
        }
        if ((long) c.buffered() + hLen > bufAlloc) {
            complain(Complaint.OVER_CREDIT, chain);
            resetConnection(c);
            return;
        }
        c.rxCnt += hLen;
        boolean endOfMessage = c.seqpacket() && (hFlags & SEQ_EOM) != 0;
        if (c.seqpacket()) {
            guestMessageData(c, chain, endOfMessage);
        } else if (hLen > 0) {
            long written = 0;
            boolean direct = (c.out == null || c.out.isEmpty()) && addPayload(chain, hLen);
            if (direct) {
                written = sendToHost(c);
                if (written < 0) {
                    return; // reset
                }
                forwarded(c, written);
            }
            if (written < hLen) {
                queuePayload(c, chain, written, hLen - written);
                if (!direct) {
                    flush(c); // no write was tried, so no EPOLLOUT edge is on its way
                }
            }
        }
        afterFlush(c);
    }

    private void guestMessageData(Connection c, Chain chain, boolean endOfMessage) {
        if (endOfMessage && c.assembling == 0 && (c.out == null || c.out.isEmpty()) && addPayload(chain, hLen)) {
            long sent = sendToHost(c);
            if (sent < 0) {
                return;
            }
            if (sent > 0 || hLen == 0) {
                forwarded(c, hLen); // a seqpacket send is all or nothing
                return;
            }
        }
        if (endOfMessage && c.messageCount == MAX_QUEUED_MESSAGES) {
            complain(Complaint.OVER_CREDIT, chain);
            resetConnection(c);
            return;
        }
        queuePayload(c, chain, 0, hLen);
        c.assembling += hLen;
        if (endOfMessage) {
            if (c.messageLengths == null) {
                c.messageLengths = new int[MAX_QUEUED_MESSAGES];
            }
            c.messageLengths[(c.messageHead + c.messageCount) % MAX_QUEUED_MESSAGES] = (int) c.assembling;
            c.messageCount++;
            c.assembling = 0;
            flush(c);
        }
    }

    /** The packet's payload pieces into {@link #vector}; false if it has more pieces than a vector holds. */
    private boolean addPayload(Chain chain, long length) {
        vector.clear();
        long skip = HEADER_SIZE;
        long left = length;
        int end = chain.firstWritablePiece();
        for (int p = 0; p < end && left > 0; p++) {
            long pieceLength = chain.pieceLength(p);
            if (skip >= pieceLength) {
                skip -= pieceLength;
                continue;
            }
            long take = Math.min(pieceLength - skip, left);
            if (!vector.add(chain.pieceSegment(p), chain.pieceOffset(p) + skip, take)) {
                return false;
            }
            left -= take;
            skip = 0;
        }
        return true;
    }

    /** Copies payload bytes {@code from}..{@code from+length} of the packet into the connection's ring. */
    private void queuePayload(Connection c, Chain chain, long from, long length) {
        if (length == 0) {
            return;
        }
        if (c.out == null) {
            c.out = new ByteRing(bufAlloc);
        }
        long skip = HEADER_SIZE + from;
        long left = length;
        int end = chain.firstWritablePiece();
        for (int p = 0; p < end && left > 0; p++) {
            long pieceLength = chain.pieceLength(p);
            if (skip >= pieceLength) {
                skip -= pieceLength;
                continue;
            }
            long take = Math.min(pieceLength - skip, left);
            c.out.append(chain.pieceSegment(p), chain.pieceOffset(p) + skip, take);
            left -= take;
            skip = 0;
        }
    }

    /** sendmsg of {@link #vector}: bytes taken, 0 when the socket is full; -1 after resetting on an error. */
    private long sendToHost(Connection c) {
        try {
            long n = sockets.send(c.fd, vector);
            return n == HostSockets.WOULD_BLOCK ? 0 : n;
        } catch (ErrnoException e) {
            LOG.debug("{}: host socket write failed: {}", c, e.getMessage());
            resetConnection(c);
            return -1;
        }
    }

    /** The host socket took {@code bytes} more: count them, and tell the guest once enough went. */
    private void forwarded(Connection c, long bytes) {
        c.fwdCnt += (int) bytes;
        if (c.fwdCnt - c.advertisedFwdCnt >= creditUpdateThreshold) {
            c.creditUpdateDue = true;
            schedule(c);
        }
    }

    /** Writes what the ring holds (the socket said it has room again). */
    private void flush(Connection c) {
        if (c.out == null || c.fd < 0) {
            return;
        }
        while (!c.out.isEmpty()) {
            long length;
            if (c.seqpacket()) {
                if (c.messageCount == 0) {
                    break;
                }
                length = c.messageLengths[c.messageHead];
            } else {
                length = c.out.size();
            }
            vector.clear();
            c.out.addTo(vector, length);
            long n = sendToHost(c);
            if (n <= 0) {
                return; // full (the next EPOLLOUT edge resumes) or reset
            }
            if (c.seqpacket()) {
                n = length;
                c.messageHead = (c.messageHead + 1) % MAX_QUEUED_MESSAGES;
                c.messageCount--;
            }
            c.out.consume(n);
            forwarded(c, n);
        }
        afterFlush(c);
    }

    /** Once nothing waits for the host: pass on the guest's half-close, or finish its close. */
    private void afterFlush(Connection c) {
        if (c.fd < 0 || (c.out != null && !c.out.isEmpty())) {
            return;
        }
        if (c.closeAfterFlush) {
            resetConnection(c);
        } else if (c.guestShutSend && !c.hostShutWr) {
            c.hostShutWr = true;
            sockets.shutdown(c.fd, HostSockets.SHUT_WR);
        }
    }

    // ------------------------------------------------------------------------------------------ siblings

    private boolean toSibling(Chain chain, boolean lengthOk) {
        VsockGuest target;
        if (hDstCid == lastSiblingCid) {
            target = lastSibling;
        } else {
            target = guest.siblings.reachable(guest, hDstCid);
            lastSiblingCid = hDstCid;
            lastSibling = target;
        }
        if (target == null || !lengthOk || !target.isServed()) {
            // A sibling with no front-end connected (not booted, reconnecting) cannot answer: refuse at once.
            complain(target == null || !target.isServed() ? Complaint.NOT_REACHABLE : Complaint.BAD_LENGTH, chain);
            if (hOp != OP_RST) {
                replyRst(hDstCid);
            }
            return true;
        }
        if (target.inbox.offer(chain.reader(), HEADER_SIZE + hLen, wakeSelf)) {
            return true;
        }
        stalledTarget = target;
        return false;
    }

    // ------------------------------------------------------------------------------------------ host fds

    @Override
    public void handleHostFd(int token, int readyEvents) {
        if (token == TOKEN_LISTENER) {
            acceptHostConnections();
        } else if (token == TOKEN_WAKE) {
            try {
                guest.linux.readEventfd(guest.wakeFd);
            } catch (ErrnoException e) {
                LOG.warn("guest {}: wake eventfd: {}", cid, e.getMessage());
            }
            DeviceQueue tx = context.queue(TX_QUEUE);
            if (stalled && tx.isReady() && retryStalled(tx)) {
                drainTx(tx);
                tx.afterCallback();
            }
        } else {
            int slot = token - TOKEN_FIRST_CONNECTION;
            Connection c = slot >= 0 && slot < bySlot.length ? bySlot[slot] : null;
            if (c != null && c.fd >= 0) {
                hostEvent(c, readyEvents);
            }
        }
        pumpRx();
    }

    private void hostEvent(Connection c, int events) {
        if (LOG.isTraceEnabled()) {
            LOG.trace("{}: host events 0x{}", c, Integer.toHexString(events));
        }
        if (c.state == Connection.State.HANDSHAKE) {
            readConnectLine(c);
            return;
        }
        if ((events & Linux.EPOLLOUT) != 0 || (events & (Linux.EPOLLERR | Linux.EPOLLHUP)) != 0) {
            flush(c);
        }
        if (c.fd >= 0 && (events & (Linux.EPOLLIN | EPOLLRDHUP | Linux.EPOLLHUP | Linux.EPOLLERR)) != 0) {
            c.hostReadable = true;
            // The end of stream comes as one edge, often with the last bytes: after it no edge will say "more".
            c.hostHungUp |= (events & (EPOLLRDHUP | Linux.EPOLLHUP | Linux.EPOLLERR)) != 0;
            schedule(c);
        }
    }

    private void acceptHostConnections() {
        while (true) {
            int fd;
            try {
                fd = sockets.accept(guest.listenFd);
            } catch (ErrnoException e) {
                LOG.warn("guest {}: accept on {}: {}", cid, guest.config.udsPath(), e.getMessage());
                return;
            }
            if (fd < 0) {
                return;
            }
            if (connections.size() >= MAX_CONNECTIONS || newConnection(fd, TYPE_STREAM, 0, 0,
                    Connection.State.HANDSHAKE) == null) {
                complain(Complaint.TOO_MANY_CONNECTIONS, null);
                sockets.close(fd);
            }
        }
    }

    /**
     * Peeks for the {@code CONNECT <port>\n} line; consumes exactly it once complete, leaving what follows in the
     * socket. A malformed or overlong line, or an end of stream before it, closes the socket.
     */
    private void readConnectLine(Connection c) {
        long n;
        try {
            n = sockets.peek(c.fd, lineBuffer, MAX_CONNECT_LINE);
        } catch (ErrnoException e) {
            closeHandshake(c);
            return;
        }
        if (n == HostSockets.WOULD_BLOCK) {
            return;
        }
        int newline = -1;
        for (int i = 0; i < n; i++) {
            if (lineBuffer.get(ValueLayout.JAVA_BYTE, i) == '\n') {
                newline = i;
                break;
            }
        }
        if (newline < 0) {
            if (n == 0 || n >= MAX_CONNECT_LINE) {
                if (n > 0) {
                    complain(Complaint.BAD_CONNECT_LINE, null);
                }
                closeHandshake(c);
            }
            return; // the rest of the line is still on its way: the next edge brings it
        }
        vector.clear();
        vector.add(lineBuffer, 0, newline + 1);
        try {
            sockets.receive(c.fd, vector); // consumes exactly the line
        } catch (ErrnoException e) {
            closeHandshake(c);
            return;
        }
        byte[] bytes = new byte[newline];
        MemorySegment.copy(lineBuffer, ValueLayout.JAVA_BYTE, 0, bytes, 0, newline);
        int port = parseConnect(new String(bytes, StandardCharsets.US_ASCII));
        if (port == -1) {
            complain(Complaint.BAD_CONNECT_LINE, null);
            closeHandshake(c);
            return;
        }
        int hostPort = allocateHostPort(port);
        c.hostPort = hostPort;
        c.guestPort = port;
        c.state = Connection.State.REQUESTED;
        connections.put(c.key(), c);
        c.requestDue = true;
        schedule(c);
    }

    /** The guest port of {@code CONNECT <port>} (keyword case-insensitive), or -1. */
    static int parseConnect(String line) {
        String[] words = line.strip().split("\\s+");
        if (words.length != 2 || !words[0].equalsIgnoreCase("CONNECT")) {
            return -1;
        }
        try {
            long port = Long.parseLong(words[1]);
            return port >= 0 && port <= 0xFFFF_FFFEL ? (int) port : -1;
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private int allocateHostPort(int guestPort) {
        while (true) {
            int port = nextHostPort++;
            if (nextHostPort == -1) {
                nextHostPort = FIRST_HOST_PORT; // VMADDR_PORT_ANY is never used
            }
            if (connections.get(ConnectionTable.key(port, guestPort)) == null) {
                return port;
            }
        }
    }

    private void closeHandshake(Connection c) {
        closeHost(c);
        freeConnection(c);
    }

    // ------------------------------------------------------------------------------------------ connections

    private Connection newConnection(int fd, int type, int hostPort, int guestPort, Connection.State state) {
        int slot;
        if (freeSlotCount > 0) {
            slot = freeSlots[--freeSlotCount];
        } else if (nextSlot < MAX_CONNECTIONS) {
            slot = nextSlot++;
            if (slot == bySlot.length) {
                bySlot = java.util.Arrays.copyOf(bySlot, Math.min(bySlot.length * 2, MAX_CONNECTIONS));
            }
        } else {
            sockets.close(fd);
            return null;
        }
        Connection c = new Connection(slot);
        c.fd = fd;
        c.type = type;
        c.hostPort = hostPort;
        c.guestPort = guestPort;
        c.state = state;
        try {
            context.watchFd(fd, CONNECTION_EVENTS, TOKEN_FIRST_CONNECTION + slot);
        } catch (IllegalStateException e) {
            LOG.warn("guest {}: cannot watch a host socket: {}", cid, e.getMessage());
            sockets.close(fd);
            freeSlots[freeSlotCount++] = slot;
            return null;
        }
        bySlot[slot] = c;
        if (state != Connection.State.HANDSHAKE) {
            connections.put(c.key(), c);
        }
        return c;
    }

    /** Closes the host side and owes the guest an RST; the connection goes once that is sent. */
    private void resetConnection(Connection c) {
        closeHost(c);
        c.state = Connection.State.CLOSED;
        c.rstDue = true;
        schedule(c);
    }

    /** The guest reset (or refused) the connection: close the host side, no answer. */
    private void removeConnection(Connection c) {
        closeHost(c);
        freeConnection(c);
    }

    private void closeHost(Connection c) {
        if (c.fd >= 0) {
            context.unwatchFd(c.fd);
            sockets.close(c.fd);
            c.fd = -1;
        }
        c.hostReadable = false;
    }

    private void freeConnection(Connection c) {
        if (c.dead) {
            return;
        }
        c.dead = true;
        if (c.state != Connection.State.HANDSHAKE && connections.get(c.key()) == c) {
            connections.remove(c.key());
        }
        bySlot[c.slot] = null;
        freeSlots[freeSlotCount++] = c.slot;
        c.release();
    }

    private void schedule(Connection c) {
        if (!c.queued && !c.dead) {
            c.queued = true;
            rxPending.addLast(c);
        }
    }

    private void replyRst(long srcCid) {
        if (rstCount == RST_QUEUE) {
            LOG.warn("guest {}: {} RSTs pending, dropping one", cid, RST_QUEUE);
            return;
        }
        int i = (rstHead + rstCount++) % RST_QUEUE;
        rstSrcCid[i] = srcCid;
        rstSrcPort[i] = hDstPort;
        rstDstPort[i] = hSrcPort;
        rstType[i] = hType == TYPE_SEQPACKET ? TYPE_SEQPACKET : TYPE_STREAM;
    }

    // ------------------------------------------------------------------------------------------ host -> guest

    private enum Action { NONE, RST, REQUEST, RESPONSE, DATA, CREDIT_UPDATE, CREDIT_REQUEST }

    private Action nextAction(Connection c) {
        if (c.dead) {
            return Action.NONE;
        }
        if (c.rstDue) {
            return Action.RST;
        }
        if (c.requestDue) {
            return Action.REQUEST;
        }
        if (c.responseDue) {
            return Action.RESPONSE;
        }
        if (c.state == Connection.State.ESTABLISHED && !c.hostEof && !c.guestShutRcv
                && (c.hostReadable || c.messageOffset < c.messageLength)) {
            if (c.credit() > 0) {
                return Action.DATA;
            }
            if (!c.creditRequestSent) {
                return Action.CREDIT_REQUEST;
            }
        }
        return c.creditUpdateDue ? Action.CREDIT_UPDATE : Action.NONE;
    }

    /** Fills RX buffers while anything is owed to the guest: RSTs, sibling packets, connections in turn. */
    void pumpRx() {
        if (context == null) {
            return;
        }
        DeviceQueue rx = context.queue(RX_QUEUE);
        if (!rx.isReady()) {
            return;
        }
        while (true) {
            Connection c = null;
            boolean sibling = false;
            if (rstCount == 0) {
                c = nextConnection();
                boolean siblingWork = !guest.inbox.isEmpty();
                if (siblingWork && (c == null || siblingTurn)) {
                    sibling = true;
                    c = null;
                } else if (c == null) {
                    break;
                }
                siblingTurn = !siblingTurn;
            }
            if (!rx.pop(rxChain)) {
                // Out of RX buffers: ask for the next kick (this also runs outside the RX ring's own service,
                // where nobody else would publish avail_event), unless buffers arrived meanwhile.
                if (rx.splitQueue().enableNotification()) {
                    continue;
                }
                LOG.trace("guest {}: out of RX buffers", cid);
                break;
            }
            if (!rxChain.isValid() || rxChain.writableBytes() < HEADER_SIZE) {
                if (rxChain.isValid()) {
                    complain(Complaint.SMALL_RX_BUFFER, rxChain);
                }
                rx.complete(rxChain);
                continue;
            }
            int used;
            if (c == null && !sibling) {
                used = writeQueuedRst();
            } else if (sibling) {
                used = writeSiblingPacket();
            } else {
                rxPending.pollFirst();
                c.queued = false;
                used = writeConnectionPacket(c);
                if (nextAction(c) != Action.NONE) {
                    schedule(c);
                }
            }
            if (LOG.isTraceEnabled()) {
                LOG.trace("guest {}: RX {} bytes for {}", cid, used, c != null ? c : sibling ? "sibling" : "rst");
            }
            rx.complete(rxChain.head(), used);
        }
        // Completions made while serving another queue or a host fd: the runner notifies only that one.
        rx.notifyIfNeeded();
    }

    /** The first queued connection with something to send, dropping those with nothing. */
    private Connection nextConnection() {
        Connection c;
        while ((c = rxPending.peekFirst()) != null) {
            if (nextAction(c) != Action.NONE) {
                return c;
            }
            rxPending.pollFirst();
            c.queued = false;
        }
        return null;
    }

    private int writeQueuedRst() {
        int i = rstHead;
        rstHead = (rstHead + 1) % RST_QUEUE;
        rstCount--;
        writeHeader(rxChain.writer(), rstSrcCid[i], rstSrcPort[i], rstDstPort[i], 0, rstType[i], OP_RST, 0, 0, 0);
        return HEADER_SIZE;
    }

    private int writeConnectionPacket(Connection c) {
        ChainWriter writer = rxChain.writer();
        switch (nextAction(c)) {
            case RST -> {
                writeControl(writer, c, OP_RST, 0);
                c.rstDue = false;
                freeConnection(c);
            }
            case REQUEST -> {
                writeControl(writer, c, OP_REQUEST, 0);
                c.requestDue = false;
            }
            case RESPONSE -> {
                writeControl(writer, c, OP_RESPONSE, 0);
                c.responseDue = false;
            }
            case DATA -> {
                return c.seqpacket() ? writeMessageFragment(c) : writeStreamData(c);
            }
            case CREDIT_REQUEST -> {
                writeControl(writer, c, OP_CREDIT_REQUEST, 0);
                c.creditRequestSent = true;
            }
            case CREDIT_UPDATE -> writeControl(writer, c, OP_CREDIT_UPDATE, 0);
            case NONE -> writeControl(writer, c, OP_CREDIT_UPDATE, 0); // not reached: checked before popping
        }
        return HEADER_SIZE;
    }

    /** Reads the host socket straight into the RX buffer after the header. */
    private int writeStreamData(Connection c) {
        long space = Math.min(Math.min(rxChain.writableBytes() - HEADER_SIZE, MAX_PAYLOAD), c.credit());
        if (space == 0) {
            // A buffer with room for the header only: still a valid packet, and the socket stays readable.
            writeControl(rxChain.writer(), c, OP_CREDIT_UPDATE, 0);
            return HEADER_SIZE;
        }
        addRxPieces(space);
        long n;
        try {
            n = sockets.receive(c.fd, vector);
        } catch (ErrnoException e) {
            LOG.debug("{}: host socket read failed: {}", c, e.getMessage());
            closeHost(c);
            writeControl(rxChain.writer(), c, OP_RST, 0);
            freeConnection(c);
            return HEADER_SIZE;
        }
        if (n == HostSockets.WOULD_BLOCK || n == 0) {
            c.hostReadable = false;
            if (n == 0) {
                c.hostEof = true;
                writeControl(rxChain.writer(), c, OP_SHUTDOWN, SHUTDOWN_SEND);
            } else {
                writeControl(rxChain.writer(), c, OP_CREDIT_UPDATE, 0); // a stale edge: still a valid packet
            }
            return HEADER_SIZE;
        }
        if (n < space && !c.hostHungUp) {
            c.hostReadable = false; // drained: the next edge says when more comes
        }
        c.txCnt += (int) n;
        writeHeader(rxChain.writer(), VMADDR_CID_HOST, c.hostPort, c.guestPort, (int) n, TYPE_STREAM, OP_RW, 0,
                bufAlloc, advertise(c));
        return HEADER_SIZE + (int) n;
    }

    /** SEQPACKET: one host message in fragments that fit the RX buffers and the credit; EOM|EOR on the last. */
    private int writeMessageFragment(Connection c) {
        if (c.messageOffset >= c.messageLength) {
            if (c.message == null) {
                c.messageArena = Arena.ofShared();
                c.message = c.messageArena.allocate(MAX_PAYLOAD);
            }
            vector.clear();
            vector.add(c.message, 0, MAX_PAYLOAD);
            long n;
            try {
                n = sockets.receiveMessage(c.fd, vector);
            } catch (ErrnoException e) {
                closeHost(c);
                writeControl(rxChain.writer(), c, OP_RST, 0);
                freeConnection(c);
                return HEADER_SIZE;
            }
            if (n == HostSockets.WOULD_BLOCK || n == 0) {
                c.hostReadable = false;
                c.hostEof = n == 0;
                writeControl(rxChain.writer(), c, n == 0 ? OP_SHUTDOWN : OP_CREDIT_UPDATE, n == 0 ? SHUTDOWN_SEND : 0);
                return HEADER_SIZE;
            }
            if (n > MAX_PAYLOAD) {
                LOG.warn("{}: a host message of {} bytes was cut to {}", c, n, MAX_PAYLOAD);
                n = MAX_PAYLOAD;
            }
            c.messageLength = (int) n;
            c.messageOffset = 0;
        }
        long chunk = Math.min(Math.min(rxChain.writableBytes() - HEADER_SIZE, c.credit()),
                c.messageLength - c.messageOffset);
        ChainWriter writer = rxChain.writer();
        writer.seek(HEADER_SIZE);
        writer.write(c.message, c.messageOffset, chunk);
        c.messageOffset += (int) chunk;
        c.txCnt += (int) chunk;
        int flags = c.messageOffset == c.messageLength ? SEQ_EOM | SEQ_EOR : 0;
        writer.seek(0);
        writeHeader(writer, VMADDR_CID_HOST, c.hostPort, c.guestPort, (int) chunk, TYPE_SEQPACKET, OP_RW, flags,
                bufAlloc, advertise(c));
        return HEADER_SIZE + (int) chunk;
    }

    /** The RX chain's writable pieces after the header, up to {@code length} bytes, into {@link #vector}. */
    private void addRxPieces(long length) {
        vector.clear();
        long skip = HEADER_SIZE;
        long left = length;
        for (int p = rxChain.firstWritablePiece(); p < rxChain.pieceCount() && left > 0; p++) {
            long pieceLength = rxChain.pieceLength(p);
            if (skip >= pieceLength) {
                skip -= pieceLength;
                continue;
            }
            long take = Math.min(pieceLength - skip, left);
            if (!vector.add(rxChain.pieceSegment(p), rxChain.pieceOffset(p) + skip, take)) {
                return;
            }
            left -= take;
            skip = 0;
        }
    }

    private int writeSiblingPacket() {
        SiblingInbox inbox = guest.inbox;
        MemorySegment packet = inbox.peek();
        int delivered = inbox.headDelivered();
        int payload = inbox.headLength() - HEADER_SIZE;
        int chunk = (int) Math.min(payload - delivered, rxChain.writableBytes() - HEADER_SIZE);
        ChainWriter writer = rxChain.writer();
        writer.write(packet, 0, HEADER_SIZE);
        writer.write(packet, HEADER_SIZE + delivered, chunk);
        if (chunk < payload) {
            // Split to fit this buffer: each piece says its own length, only the last one ends a message.
            writer.seek(VsockPacket.OFF_LEN);
            writer.writeInt(chunk);
            if (delivered + chunk < payload) {
                int flags = packet.get(INT_LE, VsockPacket.OFF_FLAGS);
                int type = packet.get(SHORT_LE, VsockPacket.OFF_TYPE);
                int op = packet.get(SHORT_LE, VsockPacket.OFF_OP);
                if (type == TYPE_SEQPACKET && op == OP_RW) {
                    writer.seek(VsockPacket.OFF_FLAGS);
                    writer.writeInt(flags & ~(SEQ_EOM | SEQ_EOR));
                }
            }
        }
        inbox.delivered(chunk);
        return HEADER_SIZE + chunk;
    }

    /** The fwd_cnt a header tells the guest: what it has heard now. */
    private int advertise(Connection c) {
        c.advertisedFwdCnt = c.fwdCnt;
        c.creditUpdateDue = false;
        return c.fwdCnt;
    }

    private void writeControl(ChainWriter writer, Connection c, int op, int flags) {
        writeHeader(writer, VMADDR_CID_HOST, c.hostPort, c.guestPort, 0, c.type, op, flags, bufAlloc, advertise(c));
    }

    private void writeHeader(ChainWriter w, long srcCid, int srcPort, int dstPort, int len, int type, int op,
            int flags, int alloc, int fwdCnt) {
        w.writeLong(srcCid);
        w.writeLong(cid);
        w.writeInt(srcPort);
        w.writeInt(dstPort);
        w.writeInt(len);
        w.writeShort(type);
        w.writeShort(op);
        w.writeInt(flags);
        w.writeInt(alloc);
        w.writeInt(fwdCnt);
    }

    // ------------------------------------------------------------------------------------------ lifecycle

    private void complain(Complaint complaint, Chain chain) {
        long count = ++complaintCounts[complaint.ordinal()];
        if (complained.add(complaint)) {
            LOG.warn("guest {}: {} (head {}); answered per spec, logged once, the device carries on", cid,
                    complaint.description, chain != null ? chain.head() : "-");
        } else if ((count & 0xFFFF) == 0) {
            LOG.warn("guest {}: {} x{}", cid, complaint.description, count);
        }
    }

    /** How often the guest did {@code complaint} (tests). */
    long complaints(Complaint complaint) {
        return complaintCounts[complaint.ordinal()];
    }

    /** The bytes sent to the guest on a connection (the benchmark's guest reports them back as fwd_cnt). */
    int txCountForBench(int guestPort, int hostPort) {
        Connection c = connections.get(ConnectionTable.key(hostPort, guestPort));
        return c == null ? 0 : c.txCnt;
    }

    /** Live connections (tests). */
    int connectionCount() {
        return connections.size();
    }

    @Override
    public void queueStopping(DeviceQueue queue) {
        if (queue.index() == TX_QUEUE && stalled) {
            stalled = false;
            stalledTarget = null;
            queue.complete(stalledChain); // the sibling packet is lost with the queue
        }
    }

    @Override
    public void memoryChanged(GuestMemory memory) {
        if (stalled) {
            // The held chain points into the old mapping: give it back now, its packet undelivered.
            DeviceQueue tx = context.queue(TX_QUEUE);
            stalled = false;
            stalledTarget = null;
            if (tx.isReady()) {
                tx.complete(stalledChain);
            }
        }
    }

    @Override
    public void reset() {
        closeAll();
    }

    private void closeAll() {
        for (Connection c : bySlot) {
            if (c != null) {
                closeHost(c);
                freeConnection(c);
            }
        }
        rxPending.clear();
        rstCount = 0;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        guest.served(false);
        closeAll();
        if (context != null) {
            context.unwatchFd(guest.listenFd);
            context.unwatchFd(guest.wakeFd);
        }
        arena.close();
    }
}
