package dev.vhostdevice.vhostuser.engine;

import static dev.vhostdevice.vhostuser.protocol.ProtocolFeature.BACKEND_REQ;
import static dev.vhostdevice.vhostuser.protocol.ProtocolFeature.CONFIG;
import static dev.vhostdevice.vhostuser.protocol.ProtocolFeature.REPLY_ACK;

import dev.vhostdevice.vhostuser.device.DeviceContext;
import dev.vhostdevice.vhostuser.device.DeviceQueue;
import dev.vhostdevice.vhostuser.device.QueueNotifier;
import dev.vhostdevice.vhostuser.device.VirtioDevice;
import dev.vhostdevice.vhostuser.protocol.BackendRequest;
import dev.vhostdevice.vhostuser.protocol.FrontendRequest;
import dev.vhostdevice.vhostuser.protocol.MessageChannel;
import dev.vhostdevice.vhostuser.protocol.MessageHeader;
import dev.vhostdevice.vhostuser.protocol.Payload;
import dev.vhostdevice.vhostuser.protocol.PayloadCodec;
import dev.vhostdevice.vhostuser.protocol.ProtocolException;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import dev.vhostdevice.vhostuser.protocol.RegionLayout;
import dev.vhostdevice.vhostuser.protocol.VirtioFeatures;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.vhostuser.sys.ReceivedFds;
import dev.vhostdevice.virtqueue.QueueFault;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import dev.vhostdevice.virtqueue.memory.MemoryMapper;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One front-end connection: reads requests on the calling (control) thread, answers them in order, and owns
 * everything the front-end set up (memory table, ring fds, logs, inflight buffer, back-end channel) plus the
 * device's {@link Worker}. {@link #run()} returns when the front-end disconnects or breaks framing; by then every
 * ring is stopped, memory unmapped and every fd closed.
 *
 * <p>Error policy (vhost-user-protocol.md §4.4): framing errors close the connection; a semantic error on a
 * known request is logged and answered (a failure ack when REPLY_ACK and NEED_REPLY, or the request's own
 * failure reply) and the connection stays.
 */
public final class VhostUserSession implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(VhostUserSession.class);

    /** Slots for ADD_MEM_REG (GET_MAX_MEM_SLOTS); libvhost-user and rust-vmm use 509 as well. */
    public static final int MAX_MEM_SLOTS = 509;
    /** How long GET_VRING_BASE waits for the device to complete in-flight chains. */
    static final long STOP_DRAIN_MILLIS = 5_000;

    private final Linux linux;
    private final MemoryMapper mapper;
    private final RegionMapper regionMapper;
    private final VirtioDevice device;
    private final String name;
    private final MessageChannel channel;
    private final Worker worker;
    private final Vring[] vrings;
    private final RingControl rings;

    final long offeredFeatures;
    final long offeredProtocolFeatures;
    volatile long ackedFeatures;
    volatile long ackedProtocolFeatures;
    final AtomicInteger status = new AtomicInteger();
    private volatile BackendChannel backend;
    private InflightBuffer inflight;
    private DeviceStateTransfer stateTransfer;
    private volatile boolean closing;
    private boolean closed;
    /** SET_OWNER was received on this connection (control thread only). */
    private boolean owned;

    public VhostUserSession(Linux linux, MemoryMapper mapper, RegionMapper regionMapper, VirtioDevice device,
                            int socket, String name) throws ErrnoException {
        this(linux, mapper, regionMapper, device, socket, name, false);
    }

    /** {@code offerDeviceState}: offer DEVICE_STATE if the device can save state (see {@link FeatureOffer}). */
    public VhostUserSession(Linux linux, MemoryMapper mapper, RegionMapper regionMapper, VirtioDevice device,
                            int socket, String name, boolean offerDeviceState) throws ErrnoException {
        this(linux, mapper, regionMapper, device, socket, name, offerDeviceState, true, WorkerTuning.SLEEPING);
    }

    /**
     * {@code packedRing}: offer VIRTIO_F_RING_PACKED (packed virtqueues; see {@link FeatureOffer}); {@code tuning}:
     * how the worker polls and where it runs.
     */
    public VhostUserSession(Linux linux, MemoryMapper mapper, RegionMapper regionMapper, VirtioDevice device,
                            int socket, String name, boolean offerDeviceState, boolean packedRing,
                            WorkerTuning tuning)
            throws ErrnoException {
        this.linux = linux;
        this.mapper = mapper;
        this.regionMapper = regionMapper;
        this.device = device;
        this.name = name;
        // The socket is ours from here on: whatever fails below, it is closed here, not by the caller.
        this.channel = new MessageChannel(linux, socket);
        try {
            this.offeredFeatures = FeatureOffer.virtioFeatures(device, packedRing);
            this.offeredProtocolFeatures = FeatureOffer.protocolFeatures(device, offerDeviceState);
            Notifier notifier = new Notifier();
            this.vrings = new Vring[device.queueCount()];
            for (int i = 0; i < vrings.length; i++) {
                vrings[i] = new Vring(i, device.maxQueueSize(), notifier);
            }
            this.rings = new RingControl(this);
            this.worker = new Worker(linux, name + "-worker", rings, tuning);
        } catch (ErrnoException | RuntimeException | LinkageError e) {
            channel.close();
            throw e;
        }
        rings.attach(worker, vrings);
        try {
            device.attach(new Context());
        } catch (RuntimeException | LinkageError e) {
            worker.close(); // not started: closes its epoll fd and eventfd
            channel.close();
            throw e;
        }
        worker.start();
    }

    Linux linux() {
        return linux;
    }

    /** How regions are mapped: from fds (QEMU), or another layout's mapper (Xen). */
    RegionMapper regionMapper() {
        return regionMapper;
    }

    VirtioDevice device() {
        return device;
    }

    String name() {
        return name;
    }

    boolean protocolAcked(ProtocolFeature feature) {
        return feature.isIn(ackedProtocolFeatures);
    }

    boolean featureAcked(int bit) {
        return VirtioFeatures.has(ackedFeatures, bit);
    }

    /** Serves the connection until the front-end goes away; then releases everything. */
    public void run() {
        try {
            while (true) {
                MessageHeader header = channel.read();
                if (header == null) {
                    LOG.info("{}: front-end disconnected", name);
                    break;
                }
                handle(header);
            }
        } catch (ProtocolException e) {
            LOG.error("{}: closing the connection: {}", name, e.getMessage());
        } catch (ErrnoException e) {
            if (e.errno() == dev.vhostdevice.virtqueue.memory.Errno.EPIPE
                    || e.errno() == dev.vhostdevice.virtqueue.memory.Errno.ECONNRESET) {
                LOG.info("{}: front-end went away: {}", name, e.getMessage());
            } else if (!closing) {
                LOG.error("{}: connection failed: {}", name, e.getMessage());
            }
        } finally {
            close();
        }
    }

    /** From another thread: makes {@link #run()} return (the socket is shut down, not closed, to avoid fd reuse). */
    public void stop() {
        closing = true;
        linux.shutdown(channel.socket());
    }

    // ------------------------------------------------------------------------------------------ dispatch

    private void handle(MessageHeader header) throws ProtocolException, ErrnoException {
        FrontendRequest request = FrontendRequest.of(header.request());
        ReceivedFds fds = channel.fds();
        try {
            if (header.isReply()) {
                throw ProtocolException.framing("request " + header.request() + " has the REPLY flag set");
            }
            if (request == null || request == FrontendRequest.NONE) {
                LOG.error("{}: unknown request code {} ({} payload bytes, {} fds) refused", name, header.request(),
                        header.size(), fds.count());
                if (header.needsReply() && protocolAcked(REPLY_ACK)) {
                    sendU64(header.request(), 1);
                }
                return;
            }
            try {
                checkFdCount(request, fds);
                Payload payload = PayloadCodec.decode(request, channel.body(), header.size(),
                        RegionLayout.negotiated(ackedProtocolFeatures));
                RequestGates.check(this, request);
                boolean replied = dispatch(request, payload, fds);
                if (!replied && header.needsReply() && protocolAcked(REPLY_ACK)) {
                    sendU64(request.code(), 0);
                }
            } catch (ProtocolException e) {
                if (e.isFraming()) {
                    throw e;
                }
                refuse(request, header, e.getMessage());
            } catch (ErrnoException e) {
                refuse(request, header, e.getMessage());
            } catch (Exception e) {
                if (e instanceof InterruptedException) {
                    Thread.currentThread().interrupt();
                }
                refuse(request, header, e instanceof dev.vhostdevice.virtqueue.QueueConfigException ? e.getMessage() : e.toString());
            }
        } finally {
            fds.closeAll(linux);
        }
    }

    private void refuse(FrontendRequest request, MessageHeader header, String reason) throws ErrnoException {
        LOG.error("{}: {} refused: {}", name, request, reason);
        FailureReplies.send(this, request, header);
    }

    private static void checkFdCount(FrontendRequest request, ReceivedFds fds) throws ProtocolException {
        int count = fds.count();
        if (count > MessageHeader.MAX_FDS) {
            throw ProtocolException.invalid(count + " fds (at most " + MessageHeader.MAX_FDS + " per message)");
        }
        boolean ok = switch (request.fds()) {
            case NONE -> count == 0;
            case ONE -> count == 1;
            case AT_MOST_ONE -> count <= 1;
            case ONE_UNLESS_NOFD, PER_REGION -> true; // checked against the payload
        };
        if (!ok) {
            throw ProtocolException.invalid("carries " + count + " fds, expected " + switch (request.fds()) {
                case NONE -> "none";
                case ONE -> "exactly one";
                default -> "at most one";
            });
        }
    }

    /** Handles one decoded request; true if it sent its own reply. */
    private boolean dispatch(FrontendRequest request, Payload payload, ReceivedFds fds) throws Exception {
        switch (request) {
            case GET_FEATURES -> {
                sendU64(request.code(), offeredFeatures);
                return true;
            }
            case SET_FEATURES -> rings.setFeatures(((Payload.U64) payload).value());
            case GET_PROTOCOL_FEATURES -> {
                sendU64(request.code(), offeredProtocolFeatures);
                return true;
            }
            case SET_PROTOCOL_FEATURES -> setProtocolFeatures(((Payload.U64) payload).value());
            case SET_OWNER -> {
                // One connection is one owner; a second SET_OWNER is the front-end probing the device again.
                if (owned) {
                    rings.reprobe();
                }
                owned = true;
            }
            case RESET_OWNER -> {
                rings.stopAll(false);
                owned = false; // ownership given up: the next SET_OWNER claims afresh
            }
            case RESET_DEVICE -> rings.resetDevice();
            case GET_QUEUE_NUM -> {
                sendU64(request.code(), vrings.length);
                return true;
            }
            case GET_MAX_MEM_SLOTS -> {
                sendU64(request.code(), MAX_MEM_SLOTS);
                return true;
            }
            case SET_MEM_TABLE -> rings.memory().setTable((Payload.MemoryTable) payload, fds);
            case ADD_MEM_REG -> rings.memory().add(((Payload.SingleRegion) payload).region(), fds.peek(0));
            case REM_MEM_REG -> rings.memory().remove(((Payload.SingleRegion) payload).region());
            case SET_VRING_NUM -> rings.setNum((Payload.VringState) payload);
            case SET_VRING_ADDR -> rings.setAddress((Payload.VringAddress) payload);
            case SET_VRING_BASE -> rings.setBase((Payload.VringState) payload);
            case GET_VRING_BASE -> {
                Payload.VringState state = (Payload.VringState) payload;
                int base = rings.stopForBase(state.index());
                PayloadCodec.encodeVringState(channel.replyBody(), state.index(), base);
                channel.reply(request.code(), PayloadCodec.VRING_STATE_SIZE, -1);
                return true;
            }
            case SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR -> {
                Payload.VringFd ring = (Payload.VringFd) payload;
                int expected = ring.noFd() ? 0 : 1;
                if (fds.count() != expected) {
                    throw ProtocolException.invalid("vring " + ring.index() + (ring.noFd() ? ": NOFD set but " : ": ")
                            + fds.count() + " fds attached, expected " + expected);
                }
                rings.setRingFd(request, ring, fds);
            }
            case SET_VRING_ENABLE -> rings.setEnable((Payload.VringState) payload);
            case GET_CONFIG -> {
                Payload.Config config = (Payload.Config) payload;
                byte[] data = rings.readConfig(config);
                int size = PayloadCodec.encodeConfig(channel.replyBody(), config.offset(), config.flags(), data);
                channel.reply(request.code(), size, -1);
                return true;
            }
            case SET_CONFIG -> rings.writeConfig((Payload.Config) payload);
            case SET_BACKEND_REQ_FD -> {
                BackendChannel old = backend;
                backend = new BackendChannel(linux, fds.take(0), worker);
                if (old != null) {
                    old.close();
                }
            }
            case GET_INFLIGHT_FD -> {
                Payload.Inflight asked = (Payload.Inflight) payload;
                boolean packedOffered = VirtioFeatures.has(offeredFeatures, VirtioFeatures.VIRTIO_F_RING_PACKED);
                int fd = InflightBuffer.create(mapper, asked, packedOffered);
                try {
                    Payload.Inflight answer = new Payload.Inflight(InflightBuffer.sizeFor(asked, packedOffered), 0,
                            asked.numQueues(), asked.queueSize());
                    PayloadCodec.encodeInflight(channel.replyBody(), answer);
                    channel.reply(request.code(), PayloadCodec.INFLIGHT_SIZE, fd);
                } finally {
                    linux.close(fd);
                }
                return true;
            }
            case SET_INFLIGHT_FD -> {
                if (rings.anyStarted()) {
                    // Started rings hold regions of the current buffer; QEMU sends this before any ring starts.
                    throw ProtocolException.invalid("SET_INFLIGHT_FD while rings run");
                }
                InflightBuffer next = InflightBuffer.map(regionMapper, (Payload.Inflight) payload, fds.peek(0));
                InflightBuffer old = inflight;
                inflight = next;
                rings.setInflight(next);
                if (old != null) {
                    old.close();
                }
            }
            case SET_LOG_BASE -> {
                rings.setLogBase((Payload.LogArea) payload, fds.peek(0));
                sendU64(request.code(), 0);
                return true;
            }
            case SET_LOG_FD -> rings.setLogFd(fds.take(0));
            case SET_STATUS -> {
                long value = ((Payload.U64) payload).value();
                if ((value & ~0xFFL) != 0) {
                    throw ProtocolException.invalid("status 0x" + Long.toHexString(value) + " is not a status byte");
                }
                if (value == 0) {
                    rings.resetDevice();
                }
                status.set((int) value);
            }
            case GET_STATUS -> {
                sendU64(request.code(), status.get());
                return true;
            }
            case SET_DEVICE_STATE_FD -> {
                startStateTransfer((Payload.DeviceStateTransfer) payload, fds);
                sendU64(request.code(), 0x100); // ok, no fd of our own: use the front-end's
                return true;
            }
            case CHECK_DEVICE_STATE -> {
                boolean ok = stateTransfer != null && stateTransfer.await(Worker.CALL_TIMEOUT_MILLIS);
                if (stateTransfer != null) {
                    stateTransfer.cancel(); // reported as failed: leave no transfer running behind the reply
                }
                stateTransfer = null;
                sendU64(request.code(), ok ? 0 : 1);
                return true;
            }
            default -> throw ProtocolException.invalid("not implemented by this back-end");
        }
        return false;
    }

    private void setProtocolFeatures(long features) throws ProtocolException {
        long unknown = features & ~offeredProtocolFeatures;
        if (unknown != 0) {
            throw ProtocolException.invalid("acks protocol features never offered: 0x" + Long.toHexString(unknown));
        }
        ackedProtocolFeatures = features;
    }

    private void startStateTransfer(Payload.DeviceStateTransfer transfer, ReceivedFds fds) throws Exception {
        if (transfer.phase() != Payload.DeviceStateTransfer.PHASE_STOPPED) {
            throw ProtocolException.invalid("unknown transfer phase " + transfer.phase());
        }
        if (transfer.direction() != Payload.DeviceStateTransfer.DIRECTION_SAVE
                && transfer.direction() != Payload.DeviceStateTransfer.DIRECTION_LOAD) {
            throw ProtocolException.invalid("unknown transfer direction " + transfer.direction());
        }
        if (rings.anyStarted()) {
            throw ProtocolException.invalid("device state transfer while rings run (GET_VRING_BASE them first)");
        }
        if (stateTransfer != null && stateTransfer.isRunning()) {
            throw ProtocolException.invalid("a state transfer is still running");
        }
        boolean save = transfer.direction() == Payload.DeviceStateTransfer.DIRECTION_SAVE;
        stateTransfer = new DeviceStateTransfer(linux, device, fds.take(0), save, name);
        stateTransfer.start();
    }

    void sendU64(int request, long value) throws ErrnoException {
        PayloadCodec.encodeU64(channel.replyBody(), value);
        channel.reply(request, PayloadCodec.U64_SIZE, -1);
    }

    MessageChannel channel() {
        return channel;
    }

    /**
     * Sends BACKEND_CONFIG_CHANGE_MSG if CONFIG and BACKEND_REQ are negotiated and a channel is set; never waits
     * for the front-end's ack (see {@link BackendChannel}).
     */
    void configChanged() {
        BackendChannel b = backend;
        if (b != null && protocolAcked(BACKEND_REQ) && protocolAcked(CONFIG)) {
            b.send(BackendRequest.BACKEND_CONFIG_CHANGE_MSG, protocolAcked(REPLY_ACK));
        } else {
            LOG.debug("{}: config change not sent (no back-end channel with CONFIG)", name);
        }
    }

    /** On the worker: the front-end wrote to the back-end channel (an ack, or it hung up). */
    void backendChannelReadable() {
        BackendChannel b = backend;
        if (b != null) {
            b.readable();
        }
    }

    // ------------------------------------------------------------------------------------------ teardown

    /** Stops every ring and the worker, unmaps memory and closes every fd. Idempotent. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        closing = true;
        try {
            rings.stopAll(true);
        } catch (Exception e) {
            LOG.error("{}: stopping rings: {}", name, e.toString());
        }
        worker.close();
        // Before the device closes: a running transfer calls saveState / loadState on it.
        if (stateTransfer != null) {
            if (stateTransfer.isRunning()) {
                LOG.warn("{}: cancelling a device state transfer still running at disconnect", name);
            }
            stateTransfer.cancel();
        }
        closeDevice();
        rings.releaseAll();
        if (inflight != null) {
            inflight.close();
        }
        BackendChannel b = backend;
        if (b != null) {
            b.close();
        }
        channel.close();
    }

    /** After the worker stopped, so no device callback can run concurrently. */
    private void closeDevice() {
        try {
            device.close();
        } catch (RuntimeException e) {
            LOG.error("{}: closing the device: {}", name, e.toString(), e);
        }
    }

    /** Where queue events go: the call eventfd, and DEVICE_NEEDS_RESET for a broken ring. */
    private final class Notifier implements QueueNotifier {
        @Override
        public void notifyUsed(int queueIndex) {
            int fd = vrings[queueIndex].callFd;
            if (fd < 0) {
                return;
            }
            try {
                linux.writeEventfd(fd, 1);
            } catch (ErrnoException e) {
                LOG.error("{}: queue {}: signalling the call fd failed: {}", name, queueIndex, e.getMessage());
            }
        }

        @Override
        public void queueBroken(int queueIndex, QueueFault fault) {
            LOG.error("{}: queue {} broken ({}): device needs reset", name, queueIndex, fault.description());
            status.updateAndGet(s -> s | VirtioFeatures.STATUS_DEVICE_NEEDS_RESET);
            configChanged();
        }
    }

    /** The device's view of this session. */
    private final class Context implements DeviceContext {
        @Override
        public DeviceQueue queue(int index) {
            return vrings[index].deviceQueue;
        }

        @Override
        public long ackedFeatures() {
            return ackedFeatures;
        }

        @Override
        public void watchFd(int fd, int events, int token) {
            try {
                worker.watch(fd, Worker.KIND_HOST, token, events);
            } catch (ErrnoException e) {
                throw new IllegalStateException("cannot watch fd " + fd + ": " + e.getMessage(), e);
            }
        }

        @Override
        public void changeWatch(int fd, int events, int token) {
            try {
                worker.rewatch(fd, Worker.KIND_HOST, token, events);
            } catch (ErrnoException e) {
                throw new IllegalStateException("cannot change the watch of fd " + fd + ": " + e.getMessage(), e);
            }
        }

        @Override
        public void unwatchFd(int fd) {
            worker.unwatch(fd);
        }

        @Override
        public void notifyConfigChanged() {
            configChanged();
        }
    }
}
