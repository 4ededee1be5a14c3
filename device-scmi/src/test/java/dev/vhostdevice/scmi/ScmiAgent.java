package dev.vhostdevice.scmi;

import dev.vhostdevice.vhostuser.device.DeviceFactory;
import dev.vhostdevice.vhostuser.frontend.FrontendQueue;
import dev.vhostdevice.vhostuser.frontend.GuestRam;
import dev.vhostdevice.vhostuser.frontend.QemuDevice;
import dev.vhostdevice.vhostuser.frontend.TestFrontend;
import dev.vhostdevice.vhostuser.server.VhostUserServer;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;

/**
 * The guest's SCMI agent for tests, as Linux's virtio transport behaves: over the real vhost-user socket, QEMU
 * 10's negotiation, one chain per command (readable request, writable response of 8 + the expected payload,
 * 128 bytes of payload for lists) on the cmdq, and 136-byte writable buffers on the eventq.
 */
final class ScmiAgent implements AutoCloseable {
    /** Linux's virtio-scmi message payload size: what a list reply may fill. */
    static final int MAX_PAYLOAD = 128;
    /** Linux's eventq buffer: header + the largest notification it expects. */
    static final int EVENT_BUFFER = 136;
    static final Duration TIMEOUT = Duration.ofSeconds(10);

    /** A message from the platform: the header and the little-endian words after it. */
    record Message(int header, int length, byte[] bytes) {
        ByteBuffer le() {
            return ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        }

        /** Word {@code index} after the header (0 is a response's status). */
        int word(int index) {
            return le().getInt(4 + 4 * index);
        }

        int status() {
            return word(0);
        }

        long longAt(int wordIndex) {
            return Integer.toUnsignedLong(word(wordIndex)) | (long) word(wordIndex + 1) << 32;
        }

        /** The NUL-terminated name in the 16 bytes from word {@code index}. */
        String name(int index) {
            int at = 4 + 4 * index;
            int end = at;
            while (end < at + 16 && bytes[end] != 0) {
                end++;
            }
            return new String(bytes, at, end - at, StandardCharsets.US_ASCII);
        }

        int words() {
            return (length - 4) / 4;
        }
    }

    private final GuestRam ram;
    private final VhostUserServer server;
    private final TestFrontend frontend;
    final FrontendQueue cmdq;
    final FrontendQueue eventq;
    private int token;

    private ScmiAgent(Path socket, DeviceFactory factory, boolean p2a) throws Exception {
        server = factory == null ? null : VhostUserServer.start(socket, factory);
        ram = GuestRam.single(16 << 20);
        frontend = TestFrontend.connect(socket);
        frontend.useRam(ram);
        frontend.negotiateLikeQemu10(new QemuDevice(64, 2, null, 0, p2a ? 1 : 0, false));
        cmdq = frontend.queue(0);
        eventq = frontend.queue(1);
    }

    /** A device from {@code factory} behind a socket in {@code dir}, the eventq negotiated or not. */
    static ScmiAgent start(Path dir, DeviceFactory factory, boolean p2a) throws Exception {
        return new ScmiAgent(dir.resolve("scmi.sock"), factory, p2a);
    }

    /** An agent on a back-end already listening on {@code socket} (the jar in its own process). */
    static ScmiAgent connect(Path socket) throws Exception {
        return new ScmiAgent(socket, null, true);
    }

    static ScmiAgent start(Path dir, DeviceFactory factory) throws Exception {
        return start(dir, factory, true);
    }

    TestFrontend frontend() {
        return frontend;
    }

    GuestRam ram() {
        return ram;
    }

    static byte[] request(int header, int... parameters) {
        ByteBuffer b = ByteBuffer.allocate(4 + 4 * parameters.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(header);
        for (int p : parameters) {
            b.putInt(p);
        }
        return b.array();
    }

    int nextToken() {
        token = (token + 1) & 0x3FF;
        return token;
    }

    /** A command with room for a list reply (Linux's 128-byte payload). */
    Message call(int protocol, int message, int... parameters) throws Exception {
        return callExpecting(MAX_PAYLOAD, protocol, message, parameters);
    }

    /** A command whose response buffer holds header, status and {@code payload} more bytes, as Linux sizes it. */
    Message callExpecting(int payload, int protocol, int message, int... parameters) throws Exception {
        int header = ScmiHeader.of(protocol, message, ScmiHeader.TYPE_COMMAND, nextToken());
        Message m = raw(request(header, parameters), 8 + payload);
        if (m.length() >= 4 && m.header() != header) {
            throw new AssertionError("response header 0x" + Integer.toHexString(m.header()) + " does not echo 0x"
                    + Integer.toHexString(header));
        }
        return m;
    }

    /** Any request bytes and response room: the completion as the device wrote it. */
    Message raw(byte[] requestBytes, int writable) throws Exception {
        cmdq.post(requestBytes, writable);
        cmdq.kick();
        return message(cmdq.awaitUsed(TIMEOUT));
    }

    /** A chain of explicit buffers (readable-only, writable-only ...), with the data written at their addresses. */
    Message chain(Buffer... buffers) throws Exception {
        cmdq.post(buffers);
        cmdq.kick();
        return message(cmdq.awaitUsed(TIMEOUT));
    }

    long allocate(int length) {
        return ram.allocate(length, 8);
    }

    void write(long gpa, byte[] data) {
        cmdq.driver().write(gpa, data);
    }

    private static Message message(FrontendQueue.Completion c) {
        byte[] w = c.written();
        int header = w.length >= 4 ? ByteBuffer.wrap(w).order(ByteOrder.LITTLE_ENDIAN).getInt(0) : 0;
        return new Message(header, c.length(), w);
    }

    /** Posts {@code count} eventq buffers of {@link #EVENT_BUFFER} bytes and kicks. */
    void postEventBuffers(int count) throws Exception {
        for (int i = 0; i < count; i++) {
            eventq.post(new byte[0], EVENT_BUFFER);
        }
        eventq.kick();
    }

    /** The next notification or delayed response. */
    Message awaitEvent() {
        return message(eventq.awaitUsed(TIMEOUT));
    }

    /** The next event within {@code within}, or null. */
    Message pollEvent(Duration within) {
        try {
            return message(eventq.awaitUsed(within));
        } catch (AssertionError none) {
            return null;
        }
    }

    @Override
    public void close() {
        frontend.close();
        if (server != null) {
            server.close();
        }
        ram.close();
    }
}
