package dev.vhostdevice.vsock;

import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.readable;
import static dev.vhostdevice.vsock.VsockPacket.HEADER_SIZE;
import static dev.vhostdevice.vsock.VsockPacket.OP_CREDIT_REQUEST;
import static dev.vhostdevice.vsock.VsockPacket.OP_CREDIT_UPDATE;
import static dev.vhostdevice.vsock.VsockPacket.OP_REQUEST;
import static dev.vhostdevice.vsock.VsockPacket.OP_RESPONSE;
import static dev.vhostdevice.vsock.VsockPacket.OP_RST;
import static dev.vhostdevice.vsock.VsockPacket.OP_RW;
import static dev.vhostdevice.vsock.VsockPacket.OP_SHUTDOWN;
import static dev.vhostdevice.vsock.VsockPacket.SEQ_EOM;
import static dev.vhostdevice.vsock.VsockPacket.SHUTDOWN_RCV;
import static dev.vhostdevice.vsock.VsockPacket.SHUTDOWN_SEND;
import static dev.vhostdevice.vsock.VsockPacket.TYPE_SEQPACKET;
import static dev.vhostdevice.vsock.VsockPacket.TYPE_STREAM;
import static dev.vhostdevice.vsock.VsockPacket.VMADDR_CID_HOST;
import static dev.vhostdevice.vsock.VsockRig.GUEST_CID;
import static dev.vhostdevice.vsock.VsockRig.header;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.vsock.VsockRig.Packet;
import java.io.ByteArrayOutputStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The vsock device driven in-process as a guest driver would (VsockRig: three rings in real guest memory), with
 * real Unix sockets on the host side. Each test is one rule of virtio 1.2 §5.10 or of the hybrid-vsock scheme.
 */
class VsockDeviceTest {
    private static final int GUEST_PORT = 40000;
    private static final int HOST_PORT = 5000;

    @TempDir
    Path dir;

    private VsockRig rig;

    private VsockRig rig() throws Exception {
        return rig(VmConfig.DEFAULT_TX_BUFFER_SIZE);
    }

    private VsockRig rig(int txBufferSize) throws Exception {
        rig = new VsockRig(dir, txBufferSize);
        return rig;
    }

    @AfterEach
    void tearDown() {
        if (rig != null) {
            rig.close();
        }
    }

    private static Packet only(List<Packet> packets, int op) {
        List<Packet> matching = packets.stream().filter(p -> p.op() == op).toList();
        assertEquals(1, matching.size(), "one " + VsockPacket.opName(op) + " in " + packets);
        return matching.get(0);
    }

    /** A guest connection to host port HOST_PORT, accepted: returns the host's end. */
    private UnixPeer connectFromGuest() throws Exception {
        int listener = UnixPeer.listen(rig.udsPort(HOST_PORT), HostSockets.SOCK_STREAM);
        try {
            rig.postRx(32);
            rig.sendOp(GUEST_PORT, HOST_PORT, OP_REQUEST, 0, new byte[0]);
            Packet response = only(rig.awaitOp(OP_RESPONSE), OP_RESPONSE);
            assertEquals(VMADDR_CID_HOST, response.srcCid());
            assertEquals(GUEST_CID, response.dstCid());
            assertEquals(HOST_PORT, response.srcPort());
            assertEquals(GUEST_PORT, response.dstPort());
            assertEquals(rig.guest.config.txBufferSize(), response.bufAlloc());
            return UnixPeer.accept(listener, 5000);
        } finally {
            UnixPeer.SOCKETS.close(listener);
        }
    }

    private static byte[] payloadOf(List<Packet> packets) {
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        for (Packet p : packets) {
            if (p.op() == OP_RW) {
                all.writeBytes(p.payload());
            }
        }
        return all.toByteArray();
    }

    // ------------------------------------------------------------------------------------ identity

    @Test
    void configSpaceIsTheGuestCidAndStreamAndSeqpacketAreOffered() throws Exception {
        rig();
        assertEquals(19, VsockDevice.VIRTIO_ID_VSOCK);
        assertEquals(3, rig.device.queueCount(), "rx, tx, event");
        assertEquals(8, rig.device.configSize());
        byte[] config = new byte[8];
        rig.device.readConfig(0, config);
        assertArrayEquals(new byte[] {3, 0, 0, 0, 0, 0, 0, 0}, config);
        byte[] high = new byte[4];
        rig.device.readConfig(4, high);
        assertArrayEquals(new byte[4], high, "a slice of the le64");
        assertEquals(0b11, rig.device.deviceFeatures(), "VIRTIO_VSOCK_F_STREAM | VIRTIO_VSOCK_F_SEQPACKET");
    }

    // ------------------------------------------------------------------------------------ guest -> host

    @Test
    void aGuestConnectionToAListeningPortIsAcceptedAndBytesFlowBothWays() throws Exception {
        rig();
        try (UnixPeer host = connectFromGuest()) {
            rig.sendOp(GUEST_PORT, HOST_PORT, OP_RW, 0, "hello host".getBytes());
            assertEquals("hello host", new String(host.read(100)));
            host.writeText("hello guest");
            List<Packet> packets = rig.awaitOp(OP_RW);
            Packet rw = only(packets, OP_RW);
            assertEquals("hello guest", new String(rw.payload()));
            assertEquals(10, rw.fwdCnt(), "fwd_cnt: the 10 bytes the host socket took");
            assertEquals(1, rig.device.connectionCount());
        }
        assertEquals(2, rig.drainTxUsed());
    }

    @Test
    void aGuestConnectionToAPortNobodyListensOnIsResetAtOnce() throws Exception {
        rig();
        rig.postRx(4);
        rig.sendOp(GUEST_PORT, 5999, OP_REQUEST, 0, new byte[0]);
        List<Packet> packets = rig.received(); // no pumping: the answer is immediate
        Packet rst = only(packets, OP_RST);
        assertEquals(5999, rst.srcPort());
        assertEquals(GUEST_PORT, rst.dstPort());
        assertEquals(0, rig.device.connectionCount());
    }

    @Test
    void aSecondRequestForALiveConnectionResetsIt() throws Exception {
        rig();
        try (UnixPeer host = connectFromGuest()) {
            rig.sendOp(GUEST_PORT, HOST_PORT, OP_REQUEST, 0, new byte[0]);
            only(rig.awaitOp(OP_RST), OP_RST);
            assertEquals(0, host.read(10).length, "the host socket is closed");
        }
    }

    @Test
    void theGuestsResetClosesTheHostSocketWithoutAnswer() throws Exception {
        rig();
        try (UnixPeer host = connectFromGuest()) {
            rig.sendOp(GUEST_PORT, HOST_PORT, OP_RST, 0, new byte[0]);
            assertEquals(0, host.read(10).length);
            rig.pump(50);
            assertEquals(List.of(), rig.received());
            assertEquals(0, rig.device.connectionCount());
        }
    }

    // ------------------------------------------------------------------------------------ host -> guest

    @Test
    void aHostConnectBecomesARequestAndTheGuestsResponseAnOkLineWithNothingLostAfterTheNewline() throws Exception {
        rig();
        rig.postRx(16);
        try (UnixPeer host = UnixPeer.connect(rig.uds(), HostSockets.SOCK_STREAM)) {
            host.writeText("CONNECT 1234\nearly bytes");
            Packet request = only(rig.awaitOp(OP_REQUEST), OP_REQUEST);
            assertEquals(1234, request.dstPort());
            assertEquals(VsockDevice.FIRST_HOST_PORT, request.srcPort());
            assertEquals(TYPE_STREAM, request.type());
            rig.sendOp(1234, request.srcPort(), OP_RESPONSE, 0, new byte[0]);
            assertEquals("OK " + VsockDevice.FIRST_HOST_PORT, host.readLine());
            rig.pump(50);
            List<Packet> data = rig.awaitPackets(p -> payloadOf(p).length >= 11);
            assertEquals("early bytes", new String(payloadOf(data)));
            // And the other way.
            rig.send(header(GUEST_CID, VMADDR_CID_HOST, 1234, request.srcPort(), 2, TYPE_STREAM, OP_RW, 0, 262144, 0),
                    "hi".getBytes());
            assertEquals("hi", new String(host.read(10)));
        }
    }

    @Test
    void aHostConnectTheGuestRefusesIsClosedWithoutOk() throws Exception {
        rig();
        rig.postRx(4);
        try (UnixPeer host = UnixPeer.connect(rig.uds(), HostSockets.SOCK_STREAM)) {
            host.writeText("connect 77\n"); // the keyword is case-insensitive
            Packet request = only(rig.awaitOp(OP_REQUEST), OP_REQUEST);
            rig.sendOp(77, request.srcPort(), OP_RST, 0, new byte[0]);
            assertNull(host.readLine(), "closed, no OK");
        }
        assertEquals(0, rig.device.connectionCount());
    }

    @Test
    void aMalformedOrOverlongConnectLineClosesTheSocket() throws Exception {
        rig();
        rig.postRx(4);
        for (String line : List.of("CONNECT\n", "CONNECT abc\n", "HELLO 5\n", "CONNECT 1 2\n", "CONNECT -1\n",
                "CONNECT 99999999999\n", "x".repeat(200))) {
            try (UnixPeer host = UnixPeer.connect(rig.uds(), HostSockets.SOCK_STREAM)) {
                host.writeText(line);
                rig.pump(50);
                assertTrue(host.isClosedByPeer(), "closed for " + line.strip());
            }
        }
        assertEquals(List.of(), rig.received(), "the guest heard of none of them");
        assertEquals(7, rig.device.complaints(VsockDevice.Complaint.BAD_CONNECT_LINE));
    }

    @Test
    void aConnectLineInPiecesIsAssembled() throws Exception {
        rig();
        rig.postRx(4);
        try (UnixPeer host = UnixPeer.connect(rig.uds(), HostSockets.SOCK_STREAM)) {
            host.writeText("CONN");
            rig.pump(50);
            host.writeText("ECT 9");
            rig.pump(50);
            assertEquals(List.of(), rig.received());
            host.writeText("\n");
            assertEquals(9, only(rig.awaitOp(OP_REQUEST), OP_REQUEST).dstPort());
        }
    }

    // ------------------------------------------------------------------------------------ half-close

    @Test
    void theGuestsHalfCloseIsTheHostsEndOfStreamAndTheHostCanStillAnswer() throws Exception {
        rig();
        try (UnixPeer host = connectFromGuest()) {
            rig.sendOp(GUEST_PORT, HOST_PORT, OP_RW, 0, "request".getBytes());
            rig.sendOp(GUEST_PORT, HOST_PORT, OP_SHUTDOWN, SHUTDOWN_SEND, new byte[0]);
            assertEquals("request", new String(host.readToEnd()), "then end of stream");
            host.writeText("answer");
            assertEquals("answer", new String(payloadOf(rig.awaitOp(OP_RW))));
            assertEquals(1, rig.device.connectionCount(), "still open the other way");
        }
    }

    @Test
    void theHostsEndOfStreamIsShutdownSendAndTheGuestCanStillWrite() throws Exception {
        rig();
        try (UnixPeer host = connectFromGuest()) {
            host.writeText("last words");
            host.shutdownOutput();
            List<Packet> packets = rig.awaitOp(OP_SHUTDOWN);
            assertEquals("last words", new String(payloadOf(packets)));
            Packet shutdown = only(packets, OP_SHUTDOWN);
            assertEquals(SHUTDOWN_SEND, shutdown.flags(), "flags 2 only: 3 would make the guest's writes fail");
            rig.sendOp(GUEST_PORT, HOST_PORT, OP_RW, 0, "still here".getBytes());
            assertEquals("still here", new String(host.read(100)));
        }
    }

    @Test
    void theGuestsCloseIsAnsweredWithRstOnceItsBytesReachedTheHost() throws Exception {
        rig();
        try (UnixPeer host = connectFromGuest()) {
            rig.sendOp(GUEST_PORT, HOST_PORT, OP_RW, 0, "bye".getBytes());
            rig.sendOp(GUEST_PORT, HOST_PORT, OP_SHUTDOWN, SHUTDOWN_RCV | SHUTDOWN_SEND, new byte[0]);
            only(rig.awaitOp(OP_RST), OP_RST);
            assertEquals("bye", new String(host.readToEnd()));
            assertEquals(0, rig.device.connectionCount());
        }
    }

    // ------------------------------------------------------------------------------------ credit

    @Test
    void theDeviceNeverSendsMoreThanTheGuestsBufferAndAsksForCreditWhenStalled() throws Exception {
        rig();
        int listener = UnixPeer.listen(rig.udsPort(HOST_PORT), HostSockets.SOCK_STREAM);
        rig.postRx(64);
        rig.sendOp(GUEST_PORT, HOST_PORT, TYPE_STREAM, OP_REQUEST, 0, new byte[0], 1000, 0);
        rig.awaitOp(OP_RESPONSE);
        try (UnixPeer host = UnixPeer.accept(listener, 5000)) {
            host.write(UnixPeer.pattern(0, 5000));
            List<Packet> packets = rig.awaitOp(OP_CREDIT_REQUEST);
            assertEquals(1000, payloadOf(packets).length, "exactly buf_alloc, no byte more");
            rig.pump(50);
            assertEquals(List.of(), rig.received(), "nothing more until the guest frees space; one CREDIT_REQUEST");
            // The guest consumed 600 bytes: 600 more may come.
            rig.sendOp(GUEST_PORT, HOST_PORT, TYPE_STREAM, OP_CREDIT_UPDATE, 0, new byte[0], 1000, 600);
            packets = rig.awaitPackets(p -> payloadOf(p).length >= 600);
            assertEquals(600, payloadOf(packets).length);
            rig.sendOp(GUEST_PORT, HOST_PORT, TYPE_STREAM, OP_CREDIT_UPDATE, 0, new byte[0], 1 << 20, 1600);
            packets = rig.awaitPackets(p -> payloadOf(p).length >= 3400);
            assertArrayEquals(UnixPeer.pattern(1600, 3400), payloadOf(packets));
        } finally {
            UnixPeer.SOCKETS.close(listener);
        }
    }

    @Test
    void aCreditRequestIsAnsweredWithTheDevicesBufferAndCounter() throws Exception {
        rig();
        try (UnixPeer host = connectFromGuest()) {
            rig.sendOp(GUEST_PORT, HOST_PORT, OP_RW, 0, new byte[100]);
            host.read(100);
            rig.sendOp(GUEST_PORT, HOST_PORT, OP_CREDIT_REQUEST, 0, new byte[0]);
            Packet update = only(rig.awaitOp(OP_CREDIT_UPDATE), OP_CREDIT_UPDATE);
            assertEquals(VmConfig.DEFAULT_TX_BUFFER_SIZE, update.bufAlloc());
            assertEquals(100, update.fwdCnt());
        }
    }

    @Test
    void creditUpdatesFollowTheBytesTheHostTakesSoAGuestSenderNeverStalls() throws Exception {
        rig(16384);
        try (UnixPeer host = connectFromGuest()) {
            int sent = 0;
            int peerFwd = 0;
            byte[] chunk = new byte[4096];
            for (int i = 0; i < 64; i++) {
                // As Linux does: send only within the credit the device granted.
                while (16384 - (sent - peerFwd) < chunk.length) {
                    rig.postRx(8);
                    for (Packet p : rig.awaitOp(OP_CREDIT_UPDATE)) {
                        peerFwd = Math.max(peerFwd, p.fwdCnt());
                    }
                }
                rig.sendOp(GUEST_PORT, HOST_PORT, OP_RW, 0, chunk);
                sent += chunk.length;
                host.read(1 << 17);
            }
            assertEquals(64 * 4096, sent);
        }
    }

    @Test
    void aSlowHostReaderHoldsItsGuestSenderByCreditLosesNothingAndBlocksNoOtherConnection() throws Exception {
        rig(65536);
        int listener = UnixPeer.listen(rig.udsPort(HOST_PORT), HostSockets.SOCK_STREAM);
        int other = UnixPeer.listen(rig.udsPort(HOST_PORT + 1), HostSockets.SOCK_STREAM);
        rig.postRx(128);
        rig.sendOp(GUEST_PORT, HOST_PORT, OP_REQUEST, 0, new byte[0]);
        rig.sendOp(GUEST_PORT + 1, HOST_PORT + 1, OP_REQUEST, 0, new byte[0]);
        rig.awaitPackets(p -> p.stream().filter(x -> x.op() == OP_RESPONSE).count() == 2);
        try (UnixPeer slow = UnixPeer.accept(listener, 5000); UnixPeer fast = UnixPeer.accept(other, 5000)) {
            // The slow reader reads nothing: the guest sends while it has credit, then must stop.
            long sent = 0;
            int peerFwd = 0;
            int stalledRounds = 0;
            while (stalledRounds < 3) {
                long credit = 65536 - (sent - peerFwd);
                if (credit >= 32768) {
                    rig.sendOp(GUEST_PORT, HOST_PORT, OP_RW, 0, UnixPeer.pattern(sent, 32768));
                    sent += 32768;
                    stalledRounds = 0;
                    continue;
                }
                rig.pump(30);
                for (Packet p : rig.received()) {
                    if (p.dstPort() == GUEST_PORT) {
                        peerFwd = Math.max(peerFwd, p.fwdCnt());
                    }
                }
                rig.postRx(4);
                stalledRounds++;
            }
            assertTrue(sent > 65536, "the socket buffer took some (" + sent + ")");
            assertTrue(sent - peerFwd <= 65536, "in flight within buf_alloc");
            // The other connection is not held up by the stuck one.
            rig.sendOp(GUEST_PORT + 1, HOST_PORT + 1, OP_RW, 0, "unaffected".getBytes());
            assertEquals("unaffected", new String(fast.read(100)));
            fast.writeText("back");
            assertEquals("back", new String(payloadOf(rig.awaitPackets(p -> payloadOf(p).length == 4))));
            // Now the slow reader drains: every byte, in order.
            byte[] got = new byte[(int) sent];
            int have = 0;
            long deadline = System.nanoTime() + 20_000_000_000L;
            while (have < sent && System.nanoTime() < deadline) {
                byte[] part = slow.readWithin(1 << 17, 10);
                if (part != null) {
                    System.arraycopy(part, 0, got, have, part.length);
                    have += part.length;
                }
                rig.pump(1); // the socket has room again: the device flushes its ring
            }
            assertEquals(sent, have);
            assertArrayEquals(UnixPeer.pattern(0, (int) sent), got);
            assertEquals(0, rig.device.complaints(VsockDevice.Complaint.OVER_CREDIT));
        } finally {
            UnixPeer.SOCKETS.close(listener);
            UnixPeer.SOCKETS.close(other);
        }
    }

    @Test
    void aGuestSendingBeyondItsCreditIsReset() throws Exception {
        rig(16384);
        try (UnixPeer host = connectFromGuest()) {
            // The host does not read; buffers fill; then the guest ignores the credit.
            for (int i = 0; i < 200 && rig.device.complaints(VsockDevice.Complaint.OVER_CREDIT) == 0; i++) {
                rig.sendOp(GUEST_PORT, HOST_PORT, OP_RW, 0, new byte[16384]);
            }
            assertEquals(1, rig.device.complaints(VsockDevice.Complaint.OVER_CREDIT));
            only(rig.awaitOp(OP_RST), OP_RST);
        }
    }

    // ------------------------------------------------------------------------------------ hostile headers

    @Test
    void aSpoofedSourceCidIsDroppedAndTheDeviceCarriesOn() throws Exception {
        rig();
        rig.postRx(4);
        rig.send(header(7, VMADDR_CID_HOST, GUEST_PORT, HOST_PORT, 0, TYPE_STREAM, OP_REQUEST, 0, 4096, 0), new byte[0]);
        assertEquals(1, rig.drainTxUsed());
        assertEquals(List.of(), rig.received(), "dropped: no answer to a forged address");
        assertEquals(1, rig.device.complaints(VsockDevice.Complaint.SPOOFED_SRC_CID));
        rig.sendOp(GUEST_PORT, 5999, OP_REQUEST, 0, new byte[0]);
        only(rig.received(), OP_RST);
    }

    @Test
    void unknownTypesOpsLengthsAndConnectionsAreAnsweredWithRstAndAnRstNever() throws Exception {
        rig();
        rig.postRx(16);
        rig.send(header(GUEST_CID, VMADDR_CID_HOST, 1, HOST_PORT, 0, 9, OP_REQUEST, 0, 4096, 0), new byte[0]);
        rig.send(header(GUEST_CID, VMADDR_CID_HOST, 2, HOST_PORT, 0, TYPE_STREAM, 42, 0, 4096, 0), new byte[0]);
        rig.send(header(GUEST_CID, VMADDR_CID_HOST, 3, HOST_PORT, 500, TYPE_STREAM, OP_RW, 0, 4096, 0), new byte[10]);
        rig.send(header(GUEST_CID, VMADDR_CID_HOST, 4, HOST_PORT, -1, TYPE_STREAM, OP_RW, 0, 4096, 0), new byte[10]);
        rig.send(header(GUEST_CID, VMADDR_CID_HOST, 5, HOST_PORT, 4, TYPE_STREAM, OP_RW, 0, 4096, 0), new byte[4]);
        rig.send(header(GUEST_CID, VMADDR_CID_HOST, 6, HOST_PORT, 0, TYPE_STREAM, OP_RST, 0, 4096, 0), new byte[0]);
        rig.send(header(GUEST_CID, VMADDR_CID_HOST, 7, HOST_PORT, 0, TYPE_STREAM, OP_SHUTDOWN, 3, 4096, 0), new byte[0]);
        rig.sendRaw(readable(rig.write(new byte[20]), 20)); // shorter than a header
        assertEquals(8, rig.drainTxUsed(), "every chain is completed");
        List<Packet> answers = rig.received();
        assertEquals(List.of(1, 2, 3, 4, 5, 7), answers.stream().map(Packet::dstPort).toList(), answers.toString());
        assertTrue(answers.stream().allMatch(p -> p.op() == OP_RST && p.srcPort() == HOST_PORT), answers.toString());
        assertEquals(1, rig.device.complaints(VsockDevice.Complaint.BAD_TYPE));
        assertEquals(1, rig.device.complaints(VsockDevice.Complaint.BAD_OP));
        assertEquals(2, rig.device.complaints(VsockDevice.Complaint.BAD_LENGTH));
        assertEquals(2, rig.device.complaints(VsockDevice.Complaint.UNKNOWN_CONNECTION));
        assertEquals(1, rig.device.complaints(VsockDevice.Complaint.SHORT_HEADER));
    }

    @Test
    void aSeqpacketConnectionWithoutTheNegotiatedFeatureIsReset() throws Exception {
        rig();
        rig.host.setFeatures(VsockRig.FEATURES & ~(1L << VsockPacket.VIRTIO_VSOCK_F_SEQPACKET));
        rig.postRx(4);
        rig.sendOp(GUEST_PORT, HOST_PORT, TYPE_SEQPACKET, OP_REQUEST, 0, new byte[0], 4096, 0);
        Packet rst = only(rig.received(), OP_RST);
        assertEquals(TYPE_SEQPACKET, rst.type());
    }

    @Test
    void aPacketMaySpanDescriptorsDirectOrIndirectEvenWithTheHeaderSplit() throws Exception {
        rig();
        try (UnixPeer host = connectFromGuest()) {
            byte[] h = header(GUEST_CID, VMADDR_CID_HOST, GUEST_PORT, HOST_PORT, 9, TYPE_STREAM, OP_RW, 0, 262144, 0);
            byte[] packet = new byte[h.length + 9];
            System.arraycopy(h, 0, packet, 0, h.length);
            System.arraycopy("abcdefghi".getBytes(), 0, packet, h.length, 9);
            long a = rig.write(java.util.Arrays.copyOfRange(packet, 0, 30));
            long b = rig.write(java.util.Arrays.copyOfRange(packet, 30, 47));
            long c = rig.write(java.util.Arrays.copyOfRange(packet, 47, 53));
            rig.sendRaw(readable(a, 30), readable(b, 17), readable(c, 6));
            assertEquals("abcdefghi", new String(host.read(100)));
            long table = rig.write(new byte[64]);
            rig.tx.addIndirect(table, readable(a, 30), readable(b, 17), readable(c, 6));
            rig.host.kick(VsockDevice.TX_QUEUE);
            assertEquals("abcdefghi", new String(host.read(100)));
        }
    }

    @Test
    void aPacketOfTheOtherTypeOnALiveConnectionResetsIt() throws Exception {
        rig();
        try (UnixPeer host = connectFromGuest()) {
            rig.sendOp(GUEST_PORT, HOST_PORT, TYPE_SEQPACKET, OP_RW, SEQ_EOM, "x".getBytes(), 262144, 0);
            only(rig.awaitOp(OP_RST), OP_RST);
            assertEquals(0, host.read(10).length);
            assertEquals(0, rig.device.connectionCount(), "no connection left behind");
        }
    }

    @Test
    void aPayloadInMoreDescriptorsThanOneSendTakesStillReachesTheHostInOrder() throws Exception {
        rig();
        try (UnixPeer host = connectFromGuest()) {
            int pieces = IoVector.CAPACITY + 6;
            byte[] data = UnixPeer.pattern(0, pieces * 10);
            dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer[] chain =
                    new dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer[pieces + 1];
            byte[] h = header(GUEST_CID, VMADDR_CID_HOST, GUEST_PORT, HOST_PORT, data.length, TYPE_STREAM, OP_RW, 0,
                    262144, 0);
            chain[0] = readable(rig.write(h), h.length);
            for (int i = 0; i < pieces; i++) {
                chain[i + 1] = readable(rig.write(java.util.Arrays.copyOfRange(data, i * 10, i * 10 + 10)), 10);
            }
            long table = rig.write(new byte[16 * chain.length]);
            rig.tx.addIndirect(table, chain);
            rig.host.kick(VsockDevice.TX_QUEUE);
            byte[] got = new byte[data.length];
            int have = 0;
            while (have < got.length) {
                byte[] part = host.read(got.length - have);
                System.arraycopy(part, 0, got, have, part.length);
                have += part.length;
            }
            assertArrayEquals(data, got);
        }
    }

    @Test
    void anRxBufferWithRoomForTheHeaderOnlyDoesNotLoseTheSocketsReadiness() throws Exception {
        rig();
        int listener = UnixPeer.listen(rig.udsPort(HOST_PORT), HostSockets.SOCK_STREAM);
        rig.postRx(1); // for the RESPONSE only
        rig.sendOp(GUEST_PORT, HOST_PORT, OP_REQUEST, 0, new byte[0]);
        rig.awaitOp(OP_RESPONSE);
        try (UnixPeer host = UnixPeer.accept(listener, 5000)) {
            host.writeText("data");
            rig.pump(50); // readable, but no RX buffer
            rig.postRx(1, HEADER_SIZE);
            assertEquals(List.of(OP_CREDIT_UPDATE), rig.received().stream().map(Packet::op).toList());
            rig.postRx(1);
            List<Packet> packets = rig.awaitPackets(p -> payloadOf(p).length == 4);
            assertEquals("data", new String(payloadOf(packets)));
        } finally {
            UnixPeer.SOCKETS.close(listener);
        }
    }

    // ------------------------------------------------------------------------------------ seqpacket

    @Test
    void seqpacketKeepsMessageBoundariesBothWays() throws Exception {
        rig();
        int listener = UnixPeer.listen(rig.udsPort(HOST_PORT), HostSockets.SOCK_SEQPACKET);
        rig.postRx(64, 1000);
        rig.sendOp(GUEST_PORT, HOST_PORT, TYPE_SEQPACKET, OP_REQUEST, 0, new byte[0], 1 << 20, 0);
        Packet response = only(rig.awaitOp(OP_RESPONSE), OP_RESPONSE);
        assertEquals(TYPE_SEQPACKET, response.type());
        try (UnixPeer host = UnixPeer.accept(listener, 5000)) {
            // One guest message in two fragments, EOM on the last; then a one-fragment message.
            rig.sendOp(GUEST_PORT, HOST_PORT, TYPE_SEQPACKET, OP_RW, 0, "first ".getBytes(), 1 << 20, 0);
            rig.sendOp(GUEST_PORT, HOST_PORT, TYPE_SEQPACKET, OP_RW, SEQ_EOM, "half".getBytes(), 1 << 20, 0);
            rig.sendOp(GUEST_PORT, HOST_PORT, TYPE_SEQPACKET, OP_RW, SEQ_EOM, "second".getBytes(), 1 << 20, 0);
            assertEquals("first half", new String(host.read(1 << 16)));
            assertEquals("second", new String(host.read(1 << 16)));
            // A host message larger than an RX buffer arrives in pieces; only the last ends the message.
            byte[] big = UnixPeer.pattern(0, 2500);
            host.write(big);
            host.write("tiny".getBytes());
            List<Packet> packets = rig.awaitPackets(p -> p.stream().filter(x -> (x.flags() & SEQ_EOM) != 0).count() == 2);
            List<Packet> rw = packets.stream().filter(p -> p.op() == OP_RW).toList();
            assertEquals(List.of(956, 956, 588, 4), rw.stream().map(Packet::len).toList());
            assertEquals(List.of(0, 0, 3, 3), rw.stream().map(Packet::flags).toList(), "EOM|EOR on each last piece");
            assertArrayEquals(big, java.util.Arrays.copyOf(payloadOf(rw.subList(0, 3)), 2500));
        } finally {
            UnixPeer.SOCKETS.close(listener);
        }
    }

    // ------------------------------------------------------------------------------------ siblings

    /** A guest of the daemon, registered in {@code groups}. */
    private VsockGuest sibling(SiblingGroups groups, long cid, String name, String... groupNames) throws Exception {
        VsockGuest guest = new VsockGuest(new VmConfig(cid, dir.resolve(name + ".sock"), dir.resolve(name + ".vsock"),
                65536, 1024, Set.of(groupNames)), groups, HostSockets.system(), Linux.system());
        groups.add(guest);
        return guest;
    }

    @Test
    void guestsOfOneGroupReachEachOtherByCidVerbatimAndOthersGetRst() throws Exception {
        SiblingGroups groups = new SiblingGroups();
        VsockGuest a = sibling(groups, 3, "a", "team");
        VsockGuest b = sibling(groups, 4, "b", "team", "x");
        VsockGuest c = sibling(groups, 5, "c", "x");
        try (VsockRig ra = new VsockRig(a); VsockRig rb = new VsockRig(b); VsockRig rc = new VsockRig(c)) {
            ra.postRx(4);
            rb.postRx(8, 1000);
            rc.postRx(4);
            byte[] request = header(3, 4, 1111, 2222, 0, TYPE_STREAM, OP_REQUEST, 0, 65536, 0);
            ra.send(request, new byte[0]);
            rb.pump(100);
            List<Packet> atB = rb.received();
            assertEquals(1, atB.size(), atB.toString());
            assertEquals(new Packet(3, 4, 1111, 2222, 0, TYPE_STREAM, OP_REQUEST, 0, 65536, 0, new byte[0]).toString(),
                    atB.get(0).toString(), "verbatim");
            // A payload larger than B's RX buffers arrives split, every byte in order.
            byte[] data = UnixPeer.pattern(0, 2500);
            ra.send(header(3, 4, 1111, 2222, data.length, TYPE_STREAM, OP_RW, 0, 65536, 0), data);
            rb.pump(100);
            List<Packet> pieces = rb.received();
            assertEquals(List.of(956, 956, 588), pieces.stream().map(Packet::len).toList());
            assertArrayEquals(data, payloadOf(pieces));
            // C shares no group with A: RST, and A's packet never reaches it.
            rc.send(header(5, 3, 3333, 2222, 0, TYPE_STREAM, OP_REQUEST, 0, 65536, 0), new byte[0]);
            Packet rst = only(rc.received(), OP_RST);
            assertEquals(3, rst.srcCid());
            assertEquals(2222, rst.srcPort());
            assertEquals(3333, rst.dstPort());
            ra.pump(50);
            assertEquals(List.of(), ra.received());
            // No guest may pose as another.
            rc.send(header(4, 3, 3333, 2222, 0, TYPE_STREAM, OP_REQUEST, 0, 65536, 0), new byte[0]);
            ra.pump(50);
            assertEquals(List.of(), ra.received());
            assertEquals(1, rc.device.complaints(VsockDevice.Complaint.SPOOFED_SRC_CID));
        } finally {
            a.close();
            b.close();
            c.close();
        }
    }

    @Test
    void aSiblingWithNoFrontEndConnectedRefusesAtOnce() throws Exception {
        SiblingGroups groups = new SiblingGroups();
        VsockGuest a = sibling(groups, 3, "a", "g");
        VsockGuest b = sibling(groups, 4, "b", "g");
        try (VsockRig ra = new VsockRig(a)) {
            ra.postRx(2);
            ra.send(header(3, 4, 1, 2, 0, TYPE_STREAM, OP_REQUEST, 0, 65536, 0), new byte[0]);
            Packet rst = only(ra.received(), OP_RST);
            assertEquals(4, rst.srcCid());
        } finally {
            a.close();
            b.close();
        }
    }

    @Test
    void aFullSiblingInboxHoldsTheSendersChainUntilTheReceiverDrains() throws Exception {
        SiblingGroups groups = new SiblingGroups();
        VsockGuest a = sibling(groups, 3, "a", "g");
        VsockGuest b = sibling(groups, 4, "b", "g");
        try (VsockRig ra = new VsockRig(a); VsockRig rb = new VsockRig(b)) {
            int total = SiblingInbox.SLOTS + 10;
            for (int i = 0; i < total; i++) {
                ra.send(header(3, 4, 1, 2, 4, TYPE_STREAM, OP_RW, 0, 65536, 0), new byte[] {(byte) i, 0, 0, 0});
            }
            assertEquals(SiblingInbox.SLOTS, ra.drainTxUsed(), "the rest wait in A's ring");
            rb.postRx(total);
            ra.pump(100); // B's drain wakes A
            rb.pump(100);
            List<Packet> atB = rb.received();
            assertEquals(total, atB.size());
            for (int i = 0; i < total; i++) {
                assertEquals((byte) i, atB.get(i).payload()[0], "in order");
            }
            assertEquals(10, ra.drainTxUsed());
        } finally {
            a.close();
            b.close();
        }
    }

    // ------------------------------------------------------------------------------------ lifecycle

    @Test
    void aDeviceForAReconnectingFrontEndTellsTheGuestToDropItsConnections() throws Exception {
        rig();
        long at = 0x60000;
        rig.event.add(dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.writable(at, 8));
        rig.host.kick(VsockDevice.EVENT_QUEUE);
        assertNull(rig.event.pollUsed(), "the first device has nothing to reset");
        try (VsockRig again = new VsockRig(rig.guest)) {
            again.event.add(dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.writable(at, 8));
            again.host.kick(VsockDevice.EVENT_QUEUE);
            var used = again.event.pollUsed();
            assertEquals(4, used.length());
            assertArrayEquals(new byte[4], again.event.read(at, 4), "VIRTIO_VSOCK_EVENT_TRANSPORT_RESET");
        }
    }

    @Test
    void connectionsAreClosedWithTheDevice() throws Exception {
        rig();
        UnixPeer host = connectFromGuest();
        rig.device.close();
        assertEquals(0, host.read(10).length, "the host sees end of stream");
        host.close();
    }
}
