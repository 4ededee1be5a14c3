package dev.vhostdevice.vsock;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.vhostdevice.vhostuser.device.DeviceFactory;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.vhostuser.xen.XenBridgeContract;
import dev.vhostdevice.vhostuser.xen.XenBridgeSimulator;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;

/**
 * vhost-device-vsock under the Xen bridge (its table: vsock, 3 queues of 1024): a guest connection to a host Unix
 * socket listener set up, used both ways and reset, and a REQUEST to a port nobody listens on answered with RST,
 * every packet through grant and foreign mappings. Requests are served one at a time, so each RX buffer is posted
 * once the device owes the guest a packet (a posted RX buffer is popped only then). The event queue is left
 * empty: the device fills it only on a transport reset, which no bridge session causes.
 */
class VsockUnderXenBridgeTest extends XenBridgeContract {
    private static final long GUEST_CID = 3;
    private static final int LISTENING_PORT = 1234;
    private static final int UNLISTENED_PORT = 1235;
    private static final int GUEST_BUF_ALLOC = 262144;
    private static final int RX_BUFFER = 4096;

    private VsockGuest guest;
    private int listenFd = -1;
    /** Each exchange uses its own guest port: a re-probe keeps the device, and with it the connections. */
    private int nextGuestPort = 50000;

    @Override
    protected DeviceFactory factory() {
        try {
            guest = new VsockGuest(new VmConfig(GUEST_CID, dir.resolve("unused.sock"), dir.resolve("vm.vsock"),
                    GUEST_BUF_ALLOC, 1024, Set.of("default")), new SiblingGroups(), HostSockets.system(),
                    Linux.system());
            listenOnTheHost(dir.resolve("vm.vsock"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        VsockGuest served = guest;
        return () -> new VsockDevice(served);
    }

    /** The host side {@link #exchange} talks to: a listener on port 1234 of the VM whose uds path is {@code uds}. */
    void listenOnTheHost(Path uds) throws IOException {
        listenFd = UnixPeer.listen(Path.of(uds + "_" + LISTENING_PORT), HostSockets.SOCK_STREAM);
    }

    @AfterEach
    void closeGuest() {
        if (listenFd >= 0) {
            UnixPeer.SOCKETS.close(listenFd);
        }
        if (guest != null) {
            guest.close();
        }
    }

    @Override
    protected String name() {
        return "vsock";
    }

    @Override
    protected int queueCount() {
        return 3;
    }

    @Override
    protected int configSize() {
        return VsockDevice.CONFIG_SIZE;
    }

    @Override
    protected long driverFeatures() {
        return 1L << VsockPacket.VIRTIO_VSOCK_F_SEQPACKET; // what Linux's virtio_transport acks; STREAM is implied
    }

    /** A guest packet on TX, header only or header and payload in one descriptor each, as Linux lays it out. */
    private static void send(XenBridgeSimulator sim, int guestPort, int hostPort, int op, byte[] payload)
            throws Exception {
        byte[] header = VsockRig.header(GUEST_CID, VsockPacket.VMADDR_CID_HOST, guestPort, hostPort, payload.length,
                VsockPacket.TYPE_STREAM, op, 0, GUEST_BUF_ALLOC, 0);
        XenBridgeSimulator.Used used = sim.exchange(VsockDevice.TX_QUEUE,
                payload.length == 0 ? List.of(header) : List.of(header, payload));
        assertEquals(0, used.length(), "a TX chain completes with length 0");
    }

    /** One RX buffer offered; the packet the device put in it, checked against the connection's ports. */
    private static ByteBuffer receive(XenBridgeSimulator sim, int op, int hostPort, int guestPort) throws Exception {
        XenBridgeSimulator.Used used = sim.exchange(VsockDevice.RX_QUEUE, List.of(), RX_BUFFER);
        ByteBuffer packet = ByteBuffer.wrap(used.bytes()).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(VsockPacket.VMADDR_CID_HOST, packet.getLong(VsockPacket.OFF_SRC_CID));
        assertEquals(GUEST_CID, packet.getLong(VsockPacket.OFF_DST_CID));
        assertEquals(hostPort, packet.getInt(VsockPacket.OFF_SRC_PORT));
        assertEquals(guestPort, packet.getInt(VsockPacket.OFF_DST_PORT));
        assertEquals(VsockPacket.TYPE_STREAM, packet.getShort(VsockPacket.OFF_TYPE));
        assertEquals(VsockPacket.opName(op), VsockPacket.opName(packet.getShort(VsockPacket.OFF_OP)));
        assertEquals(used.length() - VsockPacket.HEADER_SIZE, packet.getInt(VsockPacket.OFF_LEN), "len");
        return packet;
    }

    @Override
    protected void exchange(XenBridgeSimulator sim) throws Exception {
        int port = nextGuestPort++;
        send(sim, port, LISTENING_PORT, VsockPacket.OP_REQUEST, new byte[0]);
        receive(sim, VsockPacket.OP_RESPONSE, LISTENING_PORT, port);
        try (UnixPeer host = UnixPeer.accept(listenFd, 5000)) {
            send(sim, port, LISTENING_PORT, VsockPacket.OP_RW, "ping".getBytes(StandardCharsets.US_ASCII));
            assertEquals("ping", new String(host.read(16), StandardCharsets.US_ASCII), "the guest's bytes, on the host");
            host.writeText("pong");
            ByteBuffer rw = receive(sim, VsockPacket.OP_RW, LISTENING_PORT, port);
            assertArrayEquals("pong".getBytes(StandardCharsets.US_ASCII),
                    Arrays.copyOfRange(rw.array(), VsockPacket.HEADER_SIZE, rw.capacity()));
            send(sim, port, LISTENING_PORT, VsockPacket.OP_RST, new byte[0]);
            assertArrayEquals(new byte[0], host.readWithin(16, 5000), "the guest's RST closes the host socket");
        }
        send(sim, port, UNLISTENED_PORT, VsockPacket.OP_REQUEST, new byte[0]);
        receive(sim, VsockPacket.OP_RST, UNLISTENED_PORT, port);
    }
}
