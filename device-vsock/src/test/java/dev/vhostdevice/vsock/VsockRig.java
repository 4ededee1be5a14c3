package dev.vhostdevice.vsock;

import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.readable;
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.writable;

import dev.vhostdevice.vhostuser.device.EmbeddedDeviceHost;
import dev.vhostdevice.vhostuser.sys.EpollEvents;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.SplitQueue;
import dev.vhostdevice.virtqueue.VirtioRing;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.testing.DriverQueue;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Used;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A guest driver for the vsock device, in-process: the device under an {@link EmbeddedDeviceHost} with three
 * driver-side rings in real guest memory, its host fds in a real epoll set this rig pumps, real Unix sockets.
 */
final class VsockRig implements AutoCloseable {
    static final long GUEST_CID = 3;
    static final int RX_BUFFER = 4096;
    static final long FEATURES = (1L << VirtioRing.VIRTIO_F_VERSION_1) | (1L << VsockPacket.VIRTIO_VSOCK_F_SEQPACKET);

    /** A packet as the guest sees it. */
    record Packet(long srcCid, long dstCid, int srcPort, int dstPort, int len, int type, int op, int flags,
            int bufAlloc, int fwdCnt, byte[] payload) {
        @Override
        public String toString() {
            return VsockPacket.opName(op) + "[" + srcCid + ":" + Integer.toUnsignedString(srcPort) + "->" + dstCid + ":"
                    + Integer.toUnsignedString(dstPort) + " len=" + len + " type=" + type + " flags=" + flags
                    + " buf_alloc=" + bufAlloc + " fwd_cnt=" + fwdCnt + "]";
        }
    }

    final GuestMemory memory = GuestMemory.allocate(0, 64 << 20);
    final DriverQueue rx = DriverQueue.layout(memory, 256, 0x10000);
    final DriverQueue tx = DriverQueue.layout(memory, 256, 0x30000);
    final DriverQueue event = DriverQueue.layout(memory, 16, 0x50000);
    final SplitQueue[] queues = {new SplitQueue("rx", 1024), new SplitQueue("tx", 1024), new SplitQueue("ev", 1024)};
    final VsockGuest guest;
    final VsockDevice device;
    final EmbeddedDeviceHost host;
    final int epollFd;
    private final Arena arena = Arena.ofConfined();
    private final EpollEvents ready = new EpollEvents(64, arena);
    private final Map<Integer, Long> rxBuffers = new HashMap<>();
    private final Map<Integer, long[]> txBuffers = new HashMap<>();
    private long nextBuffer = 0x100000;
    private final Linux linux = Linux.system();

    /** Whether closing the rig closes the guest (its listener and eventfd). */
    private final boolean ownsGuest;

    VsockRig(Path dir, int txBufferSize) throws Exception {
        this(new VsockGuest(new VmConfig(GUEST_CID, dir.resolve("vsock.sock"), dir.resolve("vm.vsock"), txBufferSize,
                1024, Set.of("default")), new SiblingGroups(), HostSockets.system(), Linux.system()), true);
    }

    /** A rig (a device: one front-end connection) for a guest the caller owns. */
    VsockRig(VsockGuest guest) throws Exception {
        this(guest, false);
    }

    private VsockRig(VsockGuest guest, boolean ownsGuest) throws Exception {
        this.guest = guest;
        this.ownsGuest = ownsGuest;
        rx.configure(queues[0]);
        tx.configure(queues[1]);
        event.configure(queues[2]);
        for (SplitQueue q : queues) {
            q.setIndirectAllowed(true);
            q.activate(memory);
        }
        epollFd = linux.epollCreate();
        device = new VsockDevice(guest);
        host = new EmbeddedDeviceHost(device, queues, q -> { }, null, new EmbeddedDeviceHost.FdWatcher() {
            @Override
            public void watch(int fd, int events, int token) {
                try {
                    linux.epollAdd(epollFd, fd, events, token);
                } catch (ErrnoException e) {
                    throw new IllegalStateException(e);
                }
            }

            @Override
            public void unwatch(int fd) {
                try {
                    linux.epollDelete(epollFd, fd);
                } catch (ErrnoException e) {
                    throw new IllegalStateException(e);
                }
            }
        });
        host.setFeatures(FEATURES);
    }

    Path uds() {
        return guest.config.udsPath();
    }

    Path udsPort(int port) {
        return Path.of(guest.config.udsPath() + "_" + port);
    }

    private long buffer(int length) {
        long at = nextBuffer;
        nextBuffer += (length + 63) & ~63L;
        if (nextBuffer > memory.region(0).size() - 0x10000) {
            nextBuffer = 0x100000; // recycle: buffers of completed chains are free again
        }
        return at;
    }

    /** Offers {@code count} RX buffers of {@code size} bytes and kicks. */
    void postRx(int count, int size) {
        for (int i = 0; i < count; i++) {
            long at = buffer(size);
            rxBuffers.put(rx.add(writable(at, size)), at);
        }
        host.kick(VsockDevice.RX_QUEUE);
    }

    void postRx(int count) {
        postRx(count, RX_BUFFER);
    }

    static byte[] header(long srcCid, long dstCid, int srcPort, int dstPort, int len, int type, int op, int flags,
            int bufAlloc, int fwdCnt) {
        ByteBuffer b = ByteBuffer.allocate(VsockPacket.HEADER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(srcCid).putLong(dstCid).putInt(srcPort).putInt(dstPort).putInt(len).putShort((short) type)
                .putShort((short) op).putInt(flags).putInt(bufAlloc).putInt(fwdCnt);
        return b.array();
    }

    /** Queues a TX packet as Linux lays it out: header, then the payload in its own descriptor; kicks. */
    int send(byte[] header, byte[] payload) {
        long h = buffer(header.length);
        tx.write(h, header);
        int head;
        if (payload.length == 0) {
            head = tx.add(readable(h, header.length));
        } else {
            long p = buffer(payload.length);
            tx.write(p, payload);
            head = tx.add(readable(h, header.length), readable(p, payload.length));
        }
        host.kick(VsockDevice.TX_QUEUE);
        return head;
    }

    /** Queues a TX chain of arbitrary buffers (for hostile layouts); kicks. */
    int sendRaw(Buffer... buffers) {
        int head = tx.add(buffers);
        host.kick(VsockDevice.TX_QUEUE);
        return head;
    }

    long write(byte[] bytes) {
        long at = buffer(bytes.length);
        tx.write(at, bytes);
        return at;
    }

    /** A guest packet on connection (guestPort -> host port) with the guest's default credit. */
    int sendOp(int guestPort, int hostPort, int op, int flags, byte[] payload) {
        return sendOp(guestPort, hostPort, VsockPacket.TYPE_STREAM, op, flags, payload, 262144, 0);
    }

    int sendOp(int guestPort, int hostPort, int type, int op, int flags, byte[] payload, int bufAlloc, int fwdCnt) {
        return send(header(GUEST_CID, VsockPacket.VMADDR_CID_HOST, guestPort, hostPort, payload.length, type, op, flags,
                bufAlloc, fwdCnt), payload);
    }

    /** Completed TX chains (all with used length 0) drained. */
    int drainTxUsed() {
        int n = 0;
        Used used;
        while ((used = tx.pollUsed()) != null) {
            if (used.length() != 0) {
                throw new AssertionError("TX chain completed with " + used.length() + " bytes");
            }
            n++;
        }
        return n;
    }

    /** Delivers host-fd readiness until nothing is ready (waiting up to {@code millis} for the first). */
    void pump(int millis) throws ErrnoException {
        int timeout = millis;
        while (true) {
            int n = linux.epollWait(epollFd, ready, timeout);
            if (n == 0) {
                return;
            }
            for (int i = 0; i < n; i++) {
                host.hostFdReady((int) ready.data(i), ready.events(i));
            }
            timeout = 0;
        }
    }

    /** RX packets the device completed, in order. */
    List<Packet> received() {
        List<Packet> packets = new ArrayList<>();
        Used used;
        while ((used = rx.pollUsed()) != null) {
            long at = rxBuffers.remove(used.head());
            byte[] bytes = rx.read(at, used.length());
            if (bytes.length < VsockPacket.HEADER_SIZE) {
                throw new AssertionError("RX packet of " + bytes.length + " bytes");
            }
            ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
            long src = b.getLong();
            long dst = b.getLong();
            int sp = b.getInt();
            int dp = b.getInt();
            int len = b.getInt();
            int type = b.getShort() & 0xFFFF;
            int op = b.getShort() & 0xFFFF;
            int flags = b.getInt();
            int alloc = b.getInt();
            int fwd = b.getInt();
            if (len != bytes.length - VsockPacket.HEADER_SIZE) {
                throw new AssertionError("len " + len + " but used length " + bytes.length);
            }
            byte[] payload = new byte[len];
            b.get(payload);
            packets.add(new Packet(src, dst, sp, dp, len, type, op, flags, alloc, fwd, payload));
        }
        return packets;
    }

    /** Pumps and collects until {@code predicate} holds for the packets so far, or fails after 10 s. */
    List<Packet> awaitPackets(java.util.function.Predicate<List<Packet>> predicate) throws Exception {
        List<Packet> all = new ArrayList<>(received());
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!predicate.test(all)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out; packets so far: " + all);
            }
            pump(20);
            all.addAll(received());
        }
        return all;
    }

    List<Packet> awaitOp(int op) throws Exception {
        return awaitPackets(list -> list.stream().anyMatch(p -> p.op() == op));
    }

    int rxAvailable() {
        return rxBuffers.size();
    }

    @Override
    public void close() {
        host.close();
        linux.close(epollFd);
        if (ownsGuest) {
            guest.close();
        }
        memory.close();
        arena.close();
    }
}
