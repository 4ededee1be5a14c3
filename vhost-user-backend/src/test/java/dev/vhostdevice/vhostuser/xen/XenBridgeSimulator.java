package dev.vhostdevice.vhostuser.xen;

import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.GET_CONFIG;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.GET_FEATURES;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.GET_PROTOCOL_FEATURES;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.GET_QUEUE_NUM;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.GET_VRING_BASE;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.SET_FEATURES;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.SET_MEM_TABLE;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.SET_OWNER;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.SET_PROTOCOL_FEATURES;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.SET_VRING_ADDR;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.SET_VRING_BASE;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.SET_VRING_CALL;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.SET_VRING_ENABLE;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.SET_VRING_KICK;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.SET_VRING_NUM;

import dev.vhostdevice.vhostuser.frontend.Msg;
import dev.vhostdevice.vhostuser.frontend.Reply;
import dev.vhostdevice.vhostuser.frontend.TestFrontend;
import dev.vhostdevice.vhostuser.protocol.FrontendRequest;
import dev.vhostdevice.vhostuser.protocol.MessageHeader;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import dev.vhostdevice.vhostuser.protocol.VirtioFeatures;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.VirtioRing;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.memory.GuestRegion;
import dev.vhostdevice.virtqueue.memory.MappingKind;
import dev.vhostdevice.virtqueue.memory.XenIoctls;
import dev.vhostdevice.virtqueue.testing.DriverQueue;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Plays xen-vhost-frontend (the Xen bridge) and a Linux virtio-mmio guest behind it, message for message as
 * xen.md §4.1 records it: GET_FEATURES before SET_OWNER; header flags 0x1 up to SET_PROTOCOL_FEATURES and 0x9
 * after it (GET_* included) once REPLY_ACK is acked; 40-byte regions; the bridge's queue sizes; one call eventfd
 * for every queue; GET_CONFIG per guest config access; no SET_STATUS, no reset; removal by ENABLE 0 and
 * GET_VRING_BASE; reconnect without GET_PROTOCOL_FEATURES. Guest memory is a {@link FakeXen} domain's RAM.
 *
 * <p>{@link Mode#QEMU_LIKE} runs the same sequence the way a QEMU-style front-end shares memory (no XEN_MMAP,
 * 32-byte regions, the RAM's memory file), so one test can show the same back-end serving both.
 */
public final class XenBridgeSimulator implements AutoCloseable {
    public enum Mode {
        /** No XEN_MMAP ack, 32-byte regions over the RAM's memory file, guest physical addresses. */
        QEMU_LIKE,
        /** One FOREIGN region at GPA 0x4000_0000 over the fake privcmd (needs the fake seam in the back-end). */
        FOREIGN,
        /** Ring regions and NO_ADVANCE_MAP gaps over the fake gntdev (needs the fake seam in the back-end). */
        GRANT,
        /**
         * XEN_MMAP acked and 40-byte regions, each with xen_mmap_flags 0x0 (UNIX, xen.md §2.3): the RAM's memory
         * file as ordinary shared memory, guest physical addresses. The bridge's layout without hypervisor
         * memory: what a back-end in another process (no fake seam in it) can be driven with.
         */
        UNIX
    }

    /** Guest RAM bank 0 on Arm (GUEST_RAM0_BASE), where the bridge's FOREIGN region starts. */
    public static final long FOREIGN_RAM_GPA = 0x4000_0000L;
    /** Where the bridge pretends to have mapped guest memory for itself (user addresses of regions). */
    public static final long BRIDGE_VA = 0x7f12_0000_0000L;
    /** What the bridge's front-end library offers in SET_PROTOCOL_FEATURES. */
    public static final long BRIDGE_PROTOCOL_FEATURES = ProtocolFeature.maskOf(ProtocolFeature.MQ,
            ProtocolFeature.CONFIG, ProtocolFeature.REPLY_ACK, ProtocolFeature.XEN_MMAP);
    static final int VERSION = MessageHeader.VERSION;
    static final int VERSION_NEED_REPLY = MessageHeader.VERSION | MessageHeader.NEED_REPLY;
    static final Linux LINUX = Linux.system();

    /** A request's answer as the guest sees it: the used entry and its writable buffers' bytes. */
    public record Used(int head, int length, List<byte[]> written) {
        /** The writable buffers' bytes, concatenated, up to the used length. */
        public byte[] bytes() {
            ByteBuffer all = ByteBuffer.allocate(length);
            for (byte[] w : written) {
                all.put(w, 0, Math.min(w.length, all.remaining()));
            }
            return all.array();
        }
    }

    private final Path socket;
    private final Mode mode;
    private final FakeXen xen;
    private final int queueCount;
    private final int queueSize;
    private final List<String> transcript = new ArrayList<>();
    private final long addressBase;
    private final GuestMemory guest;
    private final int callFd;
    private final int[] kickFds;
    private final DriverQueue[] rings;
    private final long[][] ringOffsets;
    private TestFrontend fe;
    private long backendFeatures;
    private long ackedProtocol;
    private long ackedFeatures;
    /** RAM offset where request buffers start (after the rings); reset per request. */
    private final long dataStart;
    private long dataNext;
    private int ringGrantMaps;

    private XenBridgeSimulator(Path socket, Mode mode, FakeXen xen, int queueCount, int queueSize)
            throws ErrnoException {
        this.socket = socket;
        this.mode = mode;
        this.xen = xen;
        this.queueCount = queueCount;
        this.queueSize = queueSize;
        this.addressBase = switch (mode) {
            case QEMU_LIKE, UNIX -> 0;
            case FOREIGN -> FOREIGN_RAM_GPA;
            case GRANT -> XenIoctls.GRANT_ADDRESS_BIT;
        };
        this.guest = GuestMemory.of(new GuestRegion(addressBase, xen.ramBytes(), xen.ram()));
        this.callFd = LINUX.eventfd();
        this.kickFds = new int[queueCount];
        this.rings = new DriverQueue[queueCount];
        this.ringOffsets = new long[queueCount][];
        // Each ring area on its own pages with a free page between, as the guest's DMA allocations come out:
        // the bridge then sends 3 ring regions and 3 gaps per queue plus one (7, 13, 19 regions).
        long page = FakeXen.PAGE;
        long at = page;
        for (int q = 0; q < queueCount; q++) {
            long desc = at;
            at = roundUp(desc + VirtioRing.descTableBytes(queueSize), page) + page;
            long avail = at;
            at = roundUp(avail + VirtioRing.availRingBytes(queueSize), page) + page;
            long used = at;
            at = roundUp(used + VirtioRing.usedRingBytes(queueSize), page) + page;
            ringOffsets[q] = new long[] {desc, avail, used};
            xen.grant(desc, VirtioRing.descTableBytes(queueSize), false);
            xen.grant(avail, VirtioRing.availRingBytes(queueSize), false);
            xen.grant(used, VirtioRing.usedRingBytes(queueSize), false);
            rings[q] = new DriverQueue(guest, queueSize, addressBase + desc, addressBase + avail, addressBase + used);
            kickFds[q] = LINUX.eventfd();
        }
        this.dataStart = at;
        this.dataNext = at;
    }

    private static long roundUp(long value, long to) {
        return (value + to - 1) / to * to;
    }

    /** Connects like the bridge at device creation: step 0 and step 1 (GET_FEATURES before SET_OWNER). */
    public static XenBridgeSimulator connect(Path socket, Mode mode, FakeXen xen, int queueCount, int queueSize)
            throws ErrnoException {
        XenBridgeSimulator sim = new XenBridgeSimulator(socket, mode, xen, queueCount, queueSize);
        sim.fe = TestFrontend.connect(socket);
        sim.backendFeatures = sim.call(GET_FEATURES, VERSION, Msg.EMPTY).u64();
        return sim;
    }

    public List<String> transcript() {
        return List.copyOf(transcript);
    }

    public Mode mode() {
        return mode;
    }

    public FakeXen xen() {
        return xen;
    }

    public long backendFeatures() {
        return backendFeatures;
    }

    public long ackedProtocolFeatures() {
        return ackedProtocol;
    }

    public DriverQueue ring(int queue) {
        return rings[queue];
    }

    private boolean replyAck() {
        return ProtocolFeature.REPLY_ACK.isIn(ackedProtocol);
    }

    /** Flags of requests after SET_PROTOCOL_FEATURES: NEED_REPLY on everything once REPLY_ACK is acked. */
    private int later() {
        return replyAck() ? VERSION_NEED_REPLY : VERSION;
    }

    private Reply call(FrontendRequest request, int flags, byte[] payload, int... fds) throws ErrnoException {
        transcript.add(request + " 0x" + Integer.toHexString(flags));
        fe.sendMessage(request.code(), flags, payload, fds);
        Reply reply = fe.read();
        if (reply.request() != request.code()) {
            throw new AssertionError("reply to " + request + " carries request code " + reply.request());
        }
        return reply;
    }

    /** A request without a reply of its own: with NEED_REPLY the bridge waits for the ack and fails on non-zero. */
    private void request(FrontendRequest request, int flags, byte[] payload, int... fds) throws ErrnoException {
        if ((flags & MessageHeader.NEED_REPLY) != 0) {
            long ack = call(request, flags, payload, fds).u64();
            if (ack != 0) {
                throw new AssertionError(request + " acked with " + ack + ": the bridge fails the device here");
            }
        } else {
            transcript.add(request + " 0x" + Integer.toHexString(flags));
            fe.sendMessage(request.code(), flags, payload, fds);
        }
    }

    /** Steps 2-6: the guest wrote DriverFeatures' low word. */
    public void probe() throws ErrnoException {
        int ownerFlags = replyAck() ? VERSION_NEED_REPLY : VERSION; // a re-probe runs with REPLY_ACK known
        request(SET_OWNER, ownerFlags, Msg.EMPTY);
        backendFeatures = call(GET_FEATURES, ownerFlags, Msg.EMPTY).u64();
        if (!VirtioFeatures.has(backendFeatures, VirtioFeatures.VHOST_USER_F_PROTOCOL_FEATURES)) {
            throw new AssertionError("the bridge needs VHOST_USER_F_PROTOCOL_FEATURES offered");
        }
        long offered = call(GET_PROTOCOL_FEATURES, ownerFlags, Msg.EMPTY).u64();
        if ((offered >>> 18) != 0) {
            throw new AssertionError("the bridge's vhost 0.8.1 refuses protocol bits above 17: 0x"
                    + Long.toHexString(offered));
        }
        long ack = offered & BRIDGE_PROTOCOL_FEATURES;
        if (mode == Mode.QEMU_LIKE) {
            ack &= ~ProtocolFeature.XEN_MMAP.mask();
        }
        request(SET_PROTOCOL_FEATURES, ownerFlags, Msg.u64(ack));
        ackedProtocol = ack;
        if (ProtocolFeature.MQ.isIn(ack)) {
            long queues = call(GET_QUEUE_NUM, later(), Msg.EMPTY).u64();
            if (queues < queueCount) {
                throw new AssertionError("BadQueueNum: back-end has " + queues + " queues, bridge needs " + queueCount);
            }
        }
    }

    /** One guest config access: a GET_CONFIG of exactly {@code size} bytes at {@code offset}, flags 1. */
    public byte[] readConfig(int offset, int size) throws ErrnoException {
        byte[] payload = Msg.le(12 + size).putInt(offset).putInt(size).putInt(1).array();
        Reply reply = call(GET_CONFIG, later(), payload);
        if (reply.body().length != 12 + size) {
            throw new AssertionError("GET_CONFIG answered " + reply.body().length + " bytes for " + size);
        }
        byte[] data = new byte[size];
        System.arraycopy(reply.body(), 12, data, 0, size);
        return data;
    }

    /** Steps 8-15: the last queue became ready. {@code driverFeatures} are what the guest driver acked. */
    public void activate(long driverFeatures) throws ErrnoException {
        activateMemory(driverFeatures);
        for (int q = 0; q < queueCount; q++) {
            request(SET_VRING_NUM, later(), Msg.vringState(q, queueSize));
        }
        for (int q = 0; q < queueCount; q++) {
            long[] r = ringOffsets[q];
            request(SET_VRING_ADDR, later(), Msg.vringAddr(q, 0, BRIDGE_VA + r[0], BRIDGE_VA + r[2], BRIDGE_VA + r[1], 0));
            request(SET_VRING_BASE, later(), Msg.vringState(q, rings[q].availIdx()));
            request(SET_VRING_CALL, later(), Msg.u64(q), callFd);
            request(SET_VRING_KICK, later(), Msg.u64(q), kickFds[q]);
        }
        for (int q = 0; q < queueCount; q++) {
            request(SET_VRING_ENABLE, later(), Msg.vringState(q, 1));
        }
    }

    /** Steps 8-9 only: SET_FEATURES and a new SET_MEM_TABLE. */
    public void activateMemory(long driverFeatures) throws ErrnoException {
        ackedFeatures = (driverFeatures | 1L << VirtioFeatures.VHOST_USER_F_PROTOCOL_FEATURES) & backendFeatures;
        request(SET_FEATURES, later(), Msg.u64(ackedFeatures));
        sendMemTable();
        ringGrantMaps = xen.liveGrantMaps(); // nothing in flight: every live grant map is a ring region's
    }

    /** The table the bridge sends for this mode (step 9). */
    private void sendMemTable() throws ErrnoException {
        List<long[]> regions = new ArrayList<>(); // gpa, size, uva, flags
        switch (mode) {
            case QEMU_LIKE, UNIX -> regions.add(new long[] {0, xen.ramBytes(), BRIDGE_VA, 0});
            case FOREIGN -> regions.add(new long[] {FOREIGN_RAM_GPA, xen.ramBytes(), BRIDGE_VA,
                    MappingKind.XEN_MMAP_FLAG_FOREIGN});
            case GRANT -> {
                long gapStart = 0;
                long page = FakeXen.PAGE;
                for (long[] r : ringOffsets) {
                    long[] sizes = {VirtioRing.descTableBytes(queueSize), VirtioRing.availRingBytes(queueSize),
                            VirtioRing.usedRingBytes(queueSize)};
                    for (int a = 0; a < 3; a++) {
                        if (r[a] > gapStart) {
                            regions.add(gap(gapStart, r[a]));
                        }
                        regions.add(new long[] {XenIoctls.GRANT_ADDRESS_BIT | r[a], sizes[a], BRIDGE_VA + r[a],
                                MappingKind.XEN_MMAP_FLAG_GRANT});
                        gapStart = roundUp(r[a] + sizes[a], page);
                    }
                }
                regions.add(gap(gapStart, xen.ramBytes()));
            }
        }
        int entry = mode == Mode.QEMU_LIKE ? 32 : 40;
        ByteBuffer b = Msg.le(8 + entry * regions.size()).putInt(regions.size()).putInt(0);
        int[] fds = new int[regions.size()];
        for (int i = 0; i < regions.size(); i++) {
            long[] r = regions.get(i);
            b.putLong(r[0]).putLong(r[1]).putLong(r[2]).putLong(0);
            if (entry == 40) {
                b.putInt((int) r[3]).putInt(xen.domid());
            }
            fds[i] = switch (mode) {
                case QEMU_LIKE, UNIX -> xen.ramFd();
                case FOREIGN -> xen.privcmdFd();
                case GRANT -> xen.gntdevFd();
            };
        }
        request(SET_MEM_TABLE, later(), b.array(), fds);
    }

    private long[] gap(long from, long to) {
        return new long[] {XenIoctls.GRANT_ADDRESS_BIT | from, to - from, 0,
                MappingKind.XEN_MMAP_FLAG_GRANT | MappingKind.XEN_MMAP_FLAG_NO_ADVANCE_MAP};
    }

    /** How many MAP_GRANT_REFs the ring regions (mapped in advance) hold: the baseline between requests. */
    public int ringGrantMaps() {
        return ringGrantMaps;
    }

    /** The guest address of RAM offset {@code offset} as the device sees it in this mode. */
    public long guestAddress(long offset) {
        return addressBase + offset;
    }

    /**
     * The guest allocates a buffer for the device: in grant mode its pages are granted, read-only when the
     * device only reads it. Returns the address descriptors carry.
     */
    public long allocate(int length, boolean deviceWrites) {
        long offset = dataNext;
        dataNext = roundUp(offset + Math.max(length, 1), 64);
        if (dataNext > xen.ramBytes()) {
            throw new IllegalStateException("guest RAM exhausted");
        }
        if (mode == Mode.GRANT) {
            xen.grant(offset, length, !deviceWrites);
        }
        return addressBase + offset;
    }

    /** Buffers allocated since the last call are free again (requests are served one at a time). */
    public void freeBuffers() {
        dataNext = dataStart;
    }

    /** The guest notifies queue {@code q}: what the kernel's ioeventfd does on a QueueNotify write. */
    public void kick(int q) throws ErrnoException {
        LINUX.writeEventfd(kickFds[q], 1);
    }

    /**
     * One request on queue {@code q}: readable buffers with {@code readables}, then writable buffers of
     * {@code writableLengths}; kicks and waits for the used entry. At the moment the used index moved, no
     * per-access grant mapping may be left (only the ring regions' own).
     */
    public Used exchange(int q, List<byte[]> readables, int... writableLengths) throws ErrnoException {
        List<DriverQueue.Buffer> buffers = new ArrayList<>();
        for (byte[] data : readables) {
            long at = allocate(data.length, false);
            rings[q].write(at, data);
            buffers.add(DriverQueue.Buffer.readable(at, data.length));
        }
        for (int length : writableLengths) {
            buffers.add(DriverQueue.Buffer.writable(allocate(length, true), length));
        }
        int head = rings[q].add(buffers.toArray(DriverQueue.Buffer[]::new));
        kick(q);
        DriverQueue.Used used = awaitUsed(q, Duration.ofSeconds(5));
        if (used.head() != head) {
            throw new AssertionError("used head " + used.head() + ", expected " + head);
        }
        List<byte[]> written = new ArrayList<>();
        for (DriverQueue.Buffer b : buffers) {
            if (b.writable()) {
                written.add(rings[q].read(b.address(), b.length()));
            }
        }
        freeBuffers();
        return new Used(used.head(), used.length(), written);
    }

    /**
     * Waits on the shared call eventfd until queue {@code q} has a used entry, and checks the per-access grant
     * mappings were all undone by then.
     */
    public DriverQueue.Used awaitUsed(int q, Duration within) throws ErrnoException {
        long deadline = System.nanoTime() + within.toNanos();
        while (true) {
            DriverQueue.Used used = rings[q].pollUsed();
            if (used != null) {
                int live = xen.liveGrantMaps() - ringGrantMaps;
                if (mode == Mode.GRANT && live != 0) {
                    throw new AssertionError(live + " per-access grant mappings still live when the used index moved");
                }
                return used;
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                throw new AssertionError("no used entry on queue " + q + " within " + within);
            }
            if (LINUX.poll(callFd, Linux.POLLIN, (int) Math.max(1, Math.min(left / 1_000_000, 100)))) {
                LINUX.readEventfd(callFd);
            }
        }
    }

    /** Device removal: SET_VRING_ENABLE 0 and GET_VRING_BASE per queue, then the socket closes. */
    public int[] remove() throws ErrnoException {
        int[] bases = new int[queueCount];
        for (int q = 0; q < queueCount; q++) {
            request(SET_VRING_ENABLE, later(), Msg.vringState(q, 0));
        }
        for (int q = 0; q < queueCount; q++) {
            bases[q] = call(GET_VRING_BASE, later(), Msg.vringState(q, 0)).u32(4);
        }
        fe.close();
        fe = null;
        return bases;
    }

    /**
     * The back-end went away (HUP) and the bridge reconnects: SET_OWNER, GET_FEATURES, SET_PROTOCOL_FEATURES with
     * the previous ack and no GET_PROTOCOL_FEATURES, then the whole activation again.
     */
    public void reconnect() throws ErrnoException {
        if (fe != null) {
            fe.close();
        }
        fe = TestFrontend.connect(socket);
        long previous = ackedProtocol;
        ackedProtocol = 0;
        request(SET_OWNER, VERSION, Msg.EMPTY);
        backendFeatures = call(GET_FEATURES, VERSION, Msg.EMPTY).u64();
        request(SET_PROTOCOL_FEATURES, VERSION, Msg.u64(previous));
        ackedProtocol = previous;
        activate(ackedFeatures);
    }

    /** Nothing the back-end sent is left unread (no stray ack to a GET_*, say). */
    public void assertNothingPending() throws ErrnoException {
        Reply stray = fe.poll(Duration.ofMillis(50));
        if (stray != null) {
            throw new AssertionError("unexpected message from the back-end: " + stray);
        }
    }

    @Override
    public void close() {
        if (fe != null) {
            fe.close();
        }
        LINUX.close(callFd);
        for (int fd : kickFds) {
            LINUX.close(fd);
        }
    }
}
