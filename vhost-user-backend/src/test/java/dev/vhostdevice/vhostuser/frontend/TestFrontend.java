package dev.vhostdevice.vhostuser.frontend;

import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.*;

import dev.vhostdevice.vhostuser.protocol.FrontendRequest;
import dev.vhostdevice.vhostuser.protocol.MessageHeader;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import dev.vhostdevice.vhostuser.protocol.VirtioFeatures;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.vhostuser.sys.ReceivedFds;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A vhost-user front-end for tests: talks to a back-end over a real Unix socket with real fds (memfd guest RAM,
 * eventfds, socketpairs), as QEMU does.
 *
 * <ul>
 *   <li>Raw: {@link #send} any request code with any flags, payload and fds; {@link #read} the next reply with
 *       a deadline (never blocks a test forever); {@link #ack} = NEED_REPLY + read the u64.</li>
 *   <li>Typed: one helper per request ({@link #getFeatures()}, {@link #setMemTable()}, ...). "Set" helpers go
 *       through {@link #request}: with REPLY_ACK negotiated they ask for the ack and throw {@link AckFailed} on
 *       a non-zero one; without it they just send.</li>
 *   <li>QEMU: {@link #negotiateLikeQemu72} and {@link #negotiateLikeQemu10} replay the message sequences
 *       captured from QEMU 7.2.22 and 10.0.2 (qemu-guest-testing.md §8), {@link #stopLikeQemu72} /
 *       {@link #stopLikeQemu10} their shutdown.</li>
 *   <li>Guest: {@link #ram()} (memfd regions, UVAs distinct from GPAs), {@link #queue(int)} (a
 *       {@link FrontendQueue} with a driver ring and kick/call/err eventfds), {@link #backendChannel()} (the
 *       SET_BACKEND_REQ_FD socketpair).</li>
 * </ul>
 *
 * <p>Owns every fd it creates or receives and closes them in {@link #close()}. Not thread-safe.
 */
public final class TestFrontend implements AutoCloseable {
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(5);
    public static final long F_PROTOCOL_FEATURES = 1L << VirtioFeatures.VHOST_USER_F_PROTOCOL_FEATURES;
    public static final long F_VERSION_1 = 1L << VirtioFeatures.VIRTIO_F_VERSION_1;
    public static final long F_INDIRECT_DESC = 1L << VirtioFeatures.VIRTIO_RING_F_INDIRECT_DESC;
    public static final long F_EVENT_IDX = 1L << VirtioFeatures.VIRTIO_RING_F_EVENT_IDX;
    public static final long F_LOG_ALL = 1L << VirtioFeatures.VHOST_F_LOG_ALL;
    /** Protocol features QEMU 7.2.22 knows (bits 0-16; it acked 0x1fdff of 0xfffff for rng). */
    public static final long QEMU72_PROTOCOL_FEATURES = 0x1ffffL;
    /** Protocol features QEMU 10.0.2 knows (bits 0-19; it acked 0xffdff of 0xfffff for rng). */
    public static final long QEMU10_PROTOCOL_FEATURES = 0xfffffL;

    private static final Linux LINUX = Linux.system();

    /** A non-zero ack to a request the caller expected to succeed. */
    public static final class AckFailed extends AssertionError {
        public final FrontendRequest request;
        public final long value;

        AckFailed(FrontendRequest request, long value) {
            super(request + " refused by the back-end (ack 0x" + Long.toHexString(value) + ")");
            this.request = request;
            this.value = value;
        }
    }

    /** What a QEMU-like negotiation settled on. */
    public record Negotiation(long offeredFeatures, long features, long offeredProtocolFeatures,
                              long protocolFeatures, int queueCount, int[] startedQueues, byte[] config) {
    }

    private final int socket;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment buffer = arena.allocate(MessageHeader.SIZE + 65536, 8);
    private final MemorySegment sendBuffer = arena.allocate(MessageHeader.SIZE + 65536, 8);
    private final ReceivedFds received = new ReceivedFds();
    private final List<Integer> replyFds = new ArrayList<>();
    private final List<String> transcript = new ArrayList<>();
    private final Map<Integer, FrontendQueue> queues = new TreeMap<>();
    private Duration timeout = DEFAULT_TIMEOUT;
    private GuestRam ram;
    private boolean ownsRam;
    private RingLayout layout = RingLayout.SPLIT;
    private BackendPeer backendPeer;
    private final List<BackendPeer> retiredPeers = new ArrayList<>();
    private long ackedProtocolFeatures;
    private long ackedFeatures;
    private boolean closed;

    private TestFrontend(int socket) {
        this.socket = socket;
    }

    /** Connects to a back-end listening on {@code path} (QEMU's {@code -chardev socket,path=...}). */
    public static TestFrontend connect(Path path) throws ErrnoException {
        return new TestFrontend(LINUX.connectUnix(path));
    }

    /** Adopts an already connected socket (e.g. one end of a socketpair given to a back-end with --fd). */
    public static TestFrontend adopt(int connectedSocket) {
        return new TestFrontend(connectedSocket);
    }

    /** How long reads and waits last before the test fails (default 5 s). */
    public TestFrontend timeout(Duration t) {
        this.timeout = t;
        return this;
    }

    public Duration timeout() {
        return timeout;
    }

    public int socket() {
        return socket;
    }

    /** Every request sent so far, as {@code NAME flags=0x.. size=.. fds=..} (the format of qemu-guest-testing.md §8). */
    public List<String> transcript() {
        return Collections.unmodifiableList(transcript);
    }

    /** Just the request names of {@link #transcript()}. */
    public List<String> requestNames() {
        return transcript.stream().map(s -> s.substring(0, s.indexOf(' '))).toList();
    }

    public void clearTranscript() {
        transcript.clear();
    }

    public long ackedProtocolFeatures() {
        return ackedProtocolFeatures;
    }

    public long ackedFeatures() {
        return ackedFeatures;
    }

    public boolean replyAck() {
        return ProtocolFeature.REPLY_ACK.isIn(ackedProtocolFeatures);
    }

    // ------------------------------------------------------------------------------------------- raw

    /** Sends raw bytes (need not be a whole or valid message) with {@code fds} on the first byte. */
    public void sendRaw(byte[] bytes, int... fds) throws ErrnoException {
        MemorySegment out = bytes.length <= sendBuffer.byteSize() ? sendBuffer : arena.allocate(bytes.length, 8);
        MemorySegment.copy(bytes, 0, out, ValueLayout.JAVA_BYTE, 0, bytes.length);
        int sent = 0;
        while (sent < bytes.length) {
            int n = LINUX.send(socket, out.asSlice(sent), bytes.length - sent, fds, sent == 0 ? fds.length : 0);
            if (n <= 0) {
                throw new AssertionError("short send to the back-end");
            }
            sent += n;
        }
    }

    /** Sends one message with any request code and flags (version 1 is not added: pass it in {@code flags}). */
    public void sendMessage(int code, int flags, byte[] payload, int... fds) throws ErrnoException {
        byte[] message = Msg.le(MessageHeader.SIZE + payload.length).putInt(code).putInt(flags).putInt(payload.length)
                .put(payload).array();
        FrontendRequest known = FrontendRequest.of(code);
        transcript.add("%s flags=0x%x size=%d fds=%d".formatted(known == null ? "CODE_" + code : known.name(), flags,
                payload.length, fds.length));
        sendRaw(message, fds);
    }

    /** Sends a request with version 1 plus {@code extraFlags} (e.g. NEED_REPLY). */
    public void send(FrontendRequest request, int extraFlags, byte[] payload, int... fds) throws ErrnoException {
        sendMessage(request.code(), MessageHeader.VERSION | extraFlags, payload, fds);
    }

    public void send(FrontendRequest request, byte[] payload, int... fds) throws ErrnoException {
        send(request, 0, payload, fds);
    }

    /** The next message from the back-end; AssertionError if none arrives within the timeout. */
    public Reply read() throws ErrnoException {
        return read(timeout);
    }

    public Reply read(Duration within) throws ErrnoException {
        Reply r = poll(within);
        if (r == null) {
            throw new AssertionError("no reply from the back-end within " + within + " (last sent: "
                    + (transcript.isEmpty() ? "nothing" : transcript.getLast()) + ")");
        }
        return r;
    }

    /** The next message, or null if none arrives within {@code within}; AssertionError at EOF. */
    public Reply poll(Duration within) throws ErrnoException {
        if (!Fds.awaitReadable(socket, within)) {
            return null;
        }
        readFully(0, MessageHeader.SIZE, within);
        int request = buffer.get(ValueLayout.JAVA_INT_UNALIGNED, 0);
        int flags = buffer.get(ValueLayout.JAVA_INT_UNALIGNED, 4);
        int size = buffer.get(ValueLayout.JAVA_INT_UNALIGNED, 8);
        int[] fds = new int[received.count()];
        for (int i = 0; i < fds.length; i++) {
            fds[i] = received.take(i);
            replyFds.add(fds[i]);
        }
        received.closeAll(LINUX);
        if (size < 0 || size > 65536) {
            throw new AssertionError("reply to " + request + " announces " + Integer.toUnsignedString(size) + " bytes");
        }
        readFully(MessageHeader.SIZE, size, within);
        return new Reply(request, flags, buffer.asSlice(MessageHeader.SIZE, size).toArray(ValueLayout.JAVA_BYTE), fds);
    }

    private void readFully(int at, int length, Duration within) throws ErrnoException {
        int got = 0;
        while (got < length) {
            if (got > 0 && !Fds.awaitReadable(socket, within)) {
                throw new AssertionError("back-end message cut short: " + got + " of " + length + " bytes");
            }
            int n = LINUX.receive(socket, buffer.asSlice(at + got), length - got, received);
            if (n == 0) {
                throw new AssertionError("the back-end closed the connection"
                        + (at + got > 0 ? " inside a message" : "") + " (last sent: "
                        + (transcript.isEmpty() ? "nothing" : transcript.getLast()) + ")");
            }
            got += n;
        }
    }

    /** Sends and reads the reply, checking that it answers {@code request} with VERSION|REPLY. */
    public Reply call(FrontendRequest request, int extraFlags, byte[] payload, int... fds) throws ErrnoException {
        send(request, extraFlags, payload, fds);
        Reply r = read();
        if (r.request() != request.code()) {
            throw new AssertionError("reply to " + request + " carries request code " + r.request());
        }
        return r;
    }

    public Reply call(FrontendRequest request, byte[] payload, int... fds) throws ErrnoException {
        return call(request, 0, payload, fds);
    }

    /** Sends with NEED_REPLY and returns the u64 ack (needs REPLY_ACK negotiated, else the read times out). */
    public long ack(FrontendRequest request, byte[] payload, int... fds) throws ErrnoException {
        return call(request, MessageHeader.NEED_REPLY, payload, fds).u64();
    }

    /**
     * A request without a reply body of its own: with REPLY_ACK negotiated, asks for the ack and throws
     * {@link AckFailed} on a non-zero one; without REPLY_ACK just sends.
     */
    public void request(FrontendRequest request, byte[] payload, int... fds) throws ErrnoException {
        if (replyAck()) {
            long value = ack(request, payload, fds);
            if (value != 0) {
                throw new AckFailed(request, value);
            }
        } else {
            send(request, payload, fds);
        }
    }

    /** QEMU's barrier: GET_FEATURES, answered only after everything sent before it was processed. */
    public void sync() throws ErrnoException {
        getFeatures();
    }

    /** Waits for EOF from the back-end (it closed the connection); false if it is still open after {@code within}. */
    public boolean awaitClosedByPeer(Duration within) throws ErrnoException {
        long deadline = System.nanoTime() + within.toNanos();
        while (true) {
            long left = deadline - System.nanoTime();
            if (left <= 0 || !Fds.awaitReadable(socket, Duration.ofNanos(left))) {
                return false;
            }
            try {
                int n = LINUX.receive(socket, buffer, 1, received);
                received.closeAll(LINUX);
                if (n == 0) {
                    return true;
                }
            } catch (ErrnoException e) {
                return true; // ECONNRESET
            }
        }
    }

    // ----------------------------------------------------------------------------------------- typed

    public long getFeatures() throws ErrnoException {
        return call(GET_FEATURES, Msg.EMPTY).u64();
    }

    public void setFeatures(long features) throws ErrnoException {
        request(SET_FEATURES, Msg.u64(features));
        ackedFeatures = features;
    }

    public long getProtocolFeatures() throws ErrnoException {
        return call(GET_PROTOCOL_FEATURES, Msg.EMPTY).u64();
    }

    /** Sent without NEED_REPLY, as QEMU does (REPLY_ACK is not in force before this message is processed). */
    public void setProtocolFeatures(long features) throws ErrnoException {
        send(SET_PROTOCOL_FEATURES, Msg.u64(features));
        ackedProtocolFeatures = features;
    }

    public void setOwner() throws ErrnoException {
        request(SET_OWNER, Msg.EMPTY);
    }

    public void resetOwner() throws ErrnoException {
        request(RESET_OWNER, Msg.EMPTY);
    }

    public void resetDevice() throws ErrnoException {
        request(RESET_DEVICE, Msg.EMPTY);
    }

    public long getQueueNum() throws ErrnoException {
        return call(GET_QUEUE_NUM, Msg.EMPTY).u64();
    }

    public long getMaxMemSlots() throws ErrnoException {
        return call(GET_MAX_MEM_SLOTS, Msg.EMPTY).u64();
    }

    /** SET_MEM_TABLE with every region of {@link #ram()}, one fd per region. */
    public void setMemTable() throws ErrnoException {
        request(SET_MEM_TABLE, ram().memTable(), ram().memTableFds());
    }

    public void addMemReg(Msg.Region region, int fd) throws ErrnoException {
        request(ADD_MEM_REG, Msg.singleRegion(region), fd);
    }

    public void remMemReg(Msg.Region region) throws ErrnoException {
        request(REM_MEM_REG, Msg.singleRegion(region));
    }

    public void setVringNum(int index, int num) throws ErrnoException {
        request(SET_VRING_NUM, Msg.vringState(index, num));
    }

    public void setVringBase(int index, int base) throws ErrnoException {
        request(SET_VRING_BASE, Msg.vringState(index, base));
    }

    /** GET_VRING_BASE: stops the ring; returns the next avail index the back-end reports. */
    public int getVringBase(int index) throws ErrnoException {
        Reply r = call(GET_VRING_BASE, Msg.vringState(index, 0));
        if (r.body().length != 8 || r.u32(0) != index) {
            throw new AssertionError("GET_VRING_BASE " + index + " answered with " + r);
        }
        return r.u32(4);
    }

    /** SET_VRING_ADDR for {@code q}'s rings, as user addresses. */
    public void setVringAddr(FrontendQueue q) throws ErrnoException {
        request(SET_VRING_ADDR, Msg.vringAddr(q.index, 0, q.descUva(), q.usedUva(), q.availUva(), 0));
    }

    public void setVringKick(int index, int fd) throws ErrnoException {
        request(SET_VRING_KICK, Msg.u64(index), fd);
    }

    public void setVringCall(int index, int fd) throws ErrnoException {
        request(SET_VRING_CALL, Msg.u64(index), fd);
    }

    public void setVringErr(int index, int fd) throws ErrnoException {
        request(SET_VRING_ERR, Msg.u64(index), fd);
    }

    public void setVringEnable(int index, boolean enable) throws ErrnoException {
        request(SET_VRING_ENABLE, Msg.vringState(index, enable ? 1 : 0));
    }

    /** GET_CONFIG: the data, or null for the error form (zero-length payload). */
    public byte[] getConfig(int offset, int size) throws ErrnoException {
        Reply r = call(GET_CONFIG, Msg.configRead(offset, size));
        if (r.body().length == 0) {
            return null;
        }
        if (r.body().length != 12 + size) {
            throw new AssertionError("GET_CONFIG reply of " + r.body().length + " bytes for " + size + " requested");
        }
        return java.util.Arrays.copyOfRange(r.body(), 12, r.body().length);
    }

    public void setConfig(int offset, int flags, byte[] data) throws ErrnoException {
        request(SET_CONFIG, Msg.configWrite(offset, flags, data));
    }

    /** SET_BACKEND_REQ_FD with a fresh socketpair (replacing any earlier one); QEMU sends it with NEED_REPLY. */
    public BackendPeer setBackendReqFd() throws ErrnoException {
        BackendPeer peer = new BackendPeer();
        try {
            request(SET_BACKEND_REQ_FD, Msg.EMPTY, peer.backendEnd());
        } finally {
            peer.releaseBackendEnd();
        }
        if (backendPeer != null) {
            retiredPeers.add(backendPeer); // the caller may still watch it (e.g. for the back-end closing it)
        }
        backendPeer = peer;
        return peer;
    }

    /** The back-end channel set up by {@link #setBackendReqFd()} (or a QEMU-like negotiation), or null. */
    public BackendPeer backendChannel() {
        return backendPeer;
    }

    /** GET_INFLIGHT_FD: the reply (mmap_size at 0, mmap_offset at 8) with the memfd, if any, as {@link Reply#fd()}. */
    public Reply getInflightFd(int numQueues, int queueSize) throws ErrnoException {
        return call(GET_INFLIGHT_FD, Msg.inflight(0, 0, numQueues, queueSize));
    }

    public void setInflightFd(int fd, long mmapSize, long mmapOffset, int numQueues, int queueSize)
            throws ErrnoException {
        request(SET_INFLIGHT_FD, Msg.inflight(mmapSize, mmapOffset, numQueues, queueSize), fd);
    }

    /** SET_LOG_BASE (LOG_SHMFD form): always answered; returns the reply. */
    public Reply setLogBase(int fd, long mmapSize, long mmapOffset) throws ErrnoException {
        return call(SET_LOG_BASE, Msg.logArea(mmapSize, mmapOffset), fd);
    }

    public void setLogFd(int eventfd) throws ErrnoException {
        request(SET_LOG_FD, Msg.EMPTY, eventfd);
    }

    public void setStatus(int status) throws ErrnoException {
        request(SET_STATUS, Msg.u64(status));
    }

    public long getStatus() throws ErrnoException {
        return call(GET_STATUS, Msg.EMPTY).u64();
    }

    /** SET_DEVICE_STATE_FD: the u64 reply (bits 0-7 error, bit 8 no fd returned). */
    public Reply setDeviceStateFd(int direction, int phase, int fd) throws ErrnoException {
        return call(SET_DEVICE_STATE_FD, Msg.deviceStateTransfer(direction, phase), fd);
    }

    public long checkDeviceState() throws ErrnoException {
        return call(CHECK_DEVICE_STATE, Msg.EMPTY).u64();
    }

    // ----------------------------------------------------------------------------------------- guest

    /** Guest RAM: the one given to {@link #useRam}, else 1 MiB at GPA 0 created on first use. */
    public GuestRam ram() throws ErrnoException {
        if (ram == null) {
            ram = GuestRam.single(1 << 20);
            ownsRam = true;
        }
        return ram;
    }

    /** Uses {@code r} as guest RAM (the caller keeps ownership). Before any queue is created. */
    public TestFrontend useRam(GuestRam r) {
        if (!queues.isEmpty()) {
            throw new IllegalStateException("queues already laid out in the old RAM");
        }
        if (ram != null && ownsRam) {
            ram.close();
        }
        ram = r;
        ownsRam = false;
        return this;
    }

    /** The layout new queues get and negotiation acks (VIRTIO_F_RING_PACKED for packed). Before any queue. */
    public TestFrontend layout(RingLayout l) {
        if (!queues.isEmpty()) {
            throw new IllegalStateException("queues already laid out");
        }
        layout = l;
        return this;
    }

    public RingLayout layout() {
        return layout;
    }

    /** Queue {@code index}, created with rings of {@code size} in region 0 of {@link #ram()} if it does not exist. */
    public FrontendQueue queue(int index, int size) throws ErrnoException {
        return queue(index, size, 0);
    }

    /** Same, with the rings and buffers in region {@code region}. */
    public FrontendQueue queue(int index, int size, int region) throws ErrnoException {
        FrontendQueue q = queues.get(index);
        if (q == null) {
            q = new FrontendQueue(index, size, ram(), region, layout);
            queues.put(index, q);
        }
        return q;
    }

    /** An existing queue. */
    public FrontendQueue queue(int index) {
        FrontendQueue q = queues.get(index);
        if (q == null) {
            throw new IllegalStateException("queue " + index + " was never set up");
        }
        return q;
    }

    /**
     * The usual per-ring setup: NUM, BASE {@code base}, ADDR, KICK, CALL; returns once the back-end has processed
     * it (acks, or a GET_FEATURES barrier without REPLY_ACK).
     */
    /** {@link #startQueue(int, int, int)} at the fresh base of the layout (0, or 0x80008000 for packed). */
    public FrontendQueue startQueue(int index, int size) throws ErrnoException {
        return startQueue(index, size, layout.freshBase());
    }

    public FrontendQueue startQueue(int index, int size, int base) throws ErrnoException {
        FrontendQueue q = queue(index, size);
        setVringNum(index, q.size());
        setVringBase(index, base);
        setVringAddr(q);
        setVringKick(index, q.kickFd());
        setVringCall(index, q.callFd());
        if (!replyAck()) {
            sync(); // the setup is in force before the caller kicks (the kick eventfd does not wait for the socket)
        }
        return q;
    }

    /**
     * Plain negotiation for tests that do not care about QEMU's exact order: GET_FEATURES, then with
     * {@code protocolFeatures} GET/SET_PROTOCOL_FEATURES (all offered bits within {@code protocolMask}), SET_OWNER,
     * SET_FEATURES (VERSION_1, EVENT_IDX/INDIRECT as offered, bit 30 iff {@code protocolFeatures}, plus
     * {@code deviceFeatures}), SET_MEM_TABLE.
     */
    public long negotiate(boolean protocolFeatures, long protocolMask, long deviceFeatures) throws ErrnoException {
        long offered = getFeatures();
        if (protocolFeatures) {
            setProtocolFeatures(getProtocolFeatures() & protocolMask);
        }
        setOwner();
        long features = offered & (F_VERSION_1 | F_INDIRECT_DESC | F_EVENT_IDX | deviceFeatures
                | (protocolFeatures ? F_PROTOCOL_FEATURES : 0)) | layout.feature();
        setFeatures(features);
        setMemTable();
        return features;
    }

    // ------------------------------------------------------------------------------------------ QEMU

    /**
     * QEMU 7.2.22's sequence (qemu-guest-testing.md §8.1/8.2), phases A (realize) and B (DRIVER_OK). Sends exactly
     * what QEMU sent, with its flags: NEED_REPLY only on SET_MEM_TABLE / ADD_MEM_REG and SET_BACKEND_REQ_FD,
     * SET_VRING_ENABLE with flags 0x1. Like QEMU it signals each kick eventfd right after handing it over.
     */
    public Negotiation negotiateLikeQemu72(QemuDevice device) throws ErrnoException {
        return negotiateLikeQemu(device, false);
    }

    /**
     * QEMU 10.0.2's sequence: as 7.2 but no GET_CONFIG at realize for vhost-user-base devices (vsockStyle devices
     * still read it), no SET_VRING_CALL re-send before SET_FEATURES (except vsock's reversed one), a
     * SET_VRING_CALL right after each KICK, and SET_VRING_ENABLE with NEED_REPLY.
     */
    public Negotiation negotiateLikeQemu10(QemuDevice device) throws ErrnoException {
        return negotiateLikeQemu(device, true);
    }

    private Negotiation negotiateLikeQemu(QemuDevice device, boolean qemu10) throws ErrnoException {
        // ---- phase A: realize
        long offered = getFeatures();
        long offeredProtocol = 0;
        long protocol = 0;
        if ((offered & F_PROTOCOL_FEATURES) != 0) {
            offeredProtocol = getProtocolFeatures();
            long known = qemu10 ? QEMU10_PROTOCOL_FEATURES : QEMU72_PROTOCOL_FEATURES;
            if (device.configSize() == 0) {
                known &= ~ProtocolFeature.CONFIG.mask(); // "backend supports CONFIG but QEMU does not"
            }
            protocol = offeredProtocol & known;
            setProtocolFeatures(protocol);
        }
        int queueCount = device.queueCount();
        if (ProtocolFeature.MQ.isIn(protocol)) {
            long reported = getQueueNum();
            if (queueCount == 0) {
                queueCount = (int) reported;
            } else if (reported < queueCount) {
                throw new AssertionError("back-end has " + reported + " queues, the device model needs " + queueCount);
            }
        }
        if (queueCount == 0) {
            throw new IllegalArgumentException("queue count unknown without MQ: give it in the QemuDevice");
        }
        if (ProtocolFeature.CONFIGURE_MEM_SLOTS.isIn(protocol)) {
            getMaxMemSlots();
        }
        if (ProtocolFeature.BACKEND_REQ.isIn(protocol)) {
            BackendPeer peer = new BackendPeer();
            try {
                qemuSend(SET_BACKEND_REQ_FD, true, Msg.EMPTY, peer.backendEnd());
            } finally {
                peer.releaseBackendEnd();
            }
            if (backendPeer != null) {
                retiredPeers.add(backendPeer);
            }
            backendPeer = peer;
        }
        qemuSend(SET_OWNER, false, Msg.EMPTY);
        getFeatures();
        for (int i = 0; i < queueCount; i++) {
            FrontendQueue q = queue(i, device.queueSize());
            qemuSend(SET_VRING_CALL, false, Msg.u64(i), q.maskedCallFd());
            qemuSend(SET_VRING_ERR, false, Msg.u64(i), q.errFd());
        }
        byte[] config = null;
        boolean readsConfigAtRealize = device.configSize() > 0 && (!qemu10 || device.vsockStyle());
        if (readsConfigAtRealize && ProtocolFeature.CONFIG.isIn(protocol)) {
            config = getConfig(0, device.configSize());
        }

        // ---- phase B: the guest driver sets DRIVER_OK
        if (qemu10 && device.configSize() > 0 && !device.vsockStyle() && ProtocolFeature.CONFIG.isIn(protocol)) {
            config = getConfig(0, device.configSize()); // the guest's probe reads config
        }
        if (device.vsockStyle()) {
            for (int i = queueCount - 1; i >= 0; i--) {
                qemuSend(SET_VRING_CALL, false, Msg.u64(i), queue(i).maskedCallFd());
            }
        } else if (!qemu10) {
            for (int i = 0; i < queueCount; i++) {
                qemuSend(SET_VRING_CALL, false, Msg.u64(i), queue(i).maskedCallFd());
            }
        }
        long features = offered & (F_VERSION_1 | F_INDIRECT_DESC | F_EVENT_IDX | F_PROTOCOL_FEATURES
                | (device.driverFeatures() & 0xFF_FFFFL)) | layout.feature();
        qemuSend(SET_FEATURES, false, Msg.u64(features));
        ackedFeatures = features;
        if (ProtocolFeature.STATUS.isIn(protocol)) {
            long status = getStatus();
            qemuSend(SET_STATUS, false, Msg.u64(status | VirtioFeatures.STATUS_FEATURES_OK));
        }
        if (ProtocolFeature.CONFIGURE_MEM_SLOTS.isIn(protocol)) {
            for (Msg.Region r : ram().regions()) {
                qemuSend(ADD_MEM_REG, true, Msg.singleRegion(r), ram().fd());
            }
        } else {
            qemuSend(SET_MEM_TABLE, true, ram().memTable(), ram().memTableFds());
        }
        int[] started = device.startedOf(queueCount);
        for (int i : started) {
            FrontendQueue q = queue(i);
            qemuSend(SET_VRING_NUM, false, Msg.vringState(i, q.size()));
            qemuSend(SET_VRING_BASE, false, Msg.vringState(i, layout.freshBase()));
            qemuSend(SET_VRING_ADDR, false, Msg.vringAddr(i, 0, q.descUva(), q.usedUva(), q.availUva(), 0));
            qemuSend(SET_VRING_KICK, false, Msg.u64(i), q.kickFd());
            q.kick(); // QEMU signals the kick eventfd as soon as it has handed it over
            if (qemu10 && !device.vsockStyle()) {
                qemuSend(SET_VRING_CALL, false, Msg.u64(i), q.maskedCallFd());
            }
        }
        if ((features & F_PROTOCOL_FEATURES) != 0) {
            for (int i = 0; i < queueCount; i++) {
                qemuSend(SET_VRING_ENABLE, qemu10, Msg.vringState(i, 1));
            }
        }
        for (int i = 0; i < queueCount; i++) {
            qemuSend(SET_VRING_CALL, false, Msg.u64(i), queue(i).callFd()); // the guest unmasked its interrupt
        }
        return new Negotiation(offered, features, offeredProtocol, protocol, queueCount, started, config);
    }

    /** QEMU 7.2's shutdown (phase C): ENABLE 0 per queue, GET_VRING_BASE per started queue, CALL per queue. */
    public int[] stopLikeQemu72(Negotiation n) throws ErrnoException {
        return stopLikeQemu(n, false);
    }

    /** QEMU 10's shutdown: ENABLE 0 per queue with NEED_REPLY, then GET_VRING_BASE per started queue. */
    public int[] stopLikeQemu10(Negotiation n) throws ErrnoException {
        return stopLikeQemu(n, true);
    }

    private int[] stopLikeQemu(Negotiation n, boolean qemu10) throws ErrnoException {
        if ((n.features() & F_PROTOCOL_FEATURES) != 0) {
            for (int i = 0; i < n.queueCount(); i++) {
                qemuSend(SET_VRING_ENABLE, qemu10, Msg.vringState(i, 0));
            }
        }
        int[] bases = new int[n.startedQueues().length];
        for (int k = 0; k < bases.length; k++) {
            bases[k] = getVringBase(n.startedQueues()[k]);
        }
        if (!qemu10) {
            for (int i = 0; i < n.queueCount(); i++) {
                qemuSend(SET_VRING_CALL, false, Msg.u64(i), queue(i).maskedCallFd());
            }
        }
        return bases;
    }

    /** As QEMU: NEED_REPLY only where QEMU sets it, and only once REPLY_ACK is negotiated. */
    private void qemuSend(FrontendRequest request, boolean needReply, byte[] payload, int... fds)
            throws ErrnoException {
        if (needReply && replyAck()) {
            long value = ack(request, payload, fds);
            if (value != 0) {
                throw new AckFailed(request, value);
            }
        } else {
            send(request, payload, fds);
        }
    }

    // -------------------------------------------------------------------------------------- teardown

    /** Closes the connection (the back-end sees EOF), every queue's eventfds, the back-end channel and owned RAM. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        received.closeAll(LINUX);
        LINUX.close(socket);
        for (int fd : replyFds) {
            LINUX.close(fd);
        }
        replyFds.clear();
        queues.values().forEach(FrontendQueue::close);
        queues.clear();
        if (backendPeer != null) {
            backendPeer.close();
        }
        retiredPeers.forEach(BackendPeer::close);
        if (ram != null && ownsRam) {
            ram.close();
        }
        arena.close();
    }
}
