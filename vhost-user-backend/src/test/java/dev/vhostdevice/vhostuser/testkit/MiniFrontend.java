package dev.vhostdevice.vhostuser.testkit;

import dev.vhostdevice.vhostuser.protocol.FrontendRequest;
import dev.vhostdevice.vhostuser.protocol.MessageHeader;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.vhostuser.sys.ReceivedFds;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;

/** The smallest front-end the engine tests need: raw messages over a real Unix socket with real fds. */
public final class MiniFrontend implements AutoCloseable {
    public static final long UVA_BASE = 0x7f00_0000_0000L;

    private final Linux linux = Linux.system();
    private final int socket;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment buffer = arena.allocate(MessageHeader.SIZE + 8192, 8);
    private final ReceivedFds fds = new ReceivedFds();

    public record Reply(int request, int flags, byte[] body, int fd) {
        public long u64() {
            return ByteBuffer.wrap(body).order(ByteOrder.LITTLE_ENDIAN).getLong();
        }

        public int u32(int at) {
            return ByteBuffer.wrap(body).order(ByteOrder.LITTLE_ENDIAN).getInt(at);
        }
    }

    public MiniFrontend(Path path) throws Exception {
        this.socket = linux.connectUnix(path);
    }

    public int socket() {
        return socket;
    }

    public static ByteBuffer le(int size) {
        return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    }

    public static byte[] u64(long value) {
        return le(8).putLong(value).array();
    }

    public static byte[] vringState(int index, int num) {
        return le(8).putInt(index).putInt(num).array();
    }

    public static byte[] vringAddr(int index, long desc, long used, long avail) {
        return le(40).putInt(index).putInt(0).putLong(desc).putLong(used).putLong(avail).putLong(0).array();
    }

    public static byte[] memTable(long gpa, long size, long uva, long offset) {
        return le(40).putInt(1).putInt(0).putLong(gpa).putLong(size).putLong(uva).putLong(offset).array();
    }

    /** Sends raw bytes (possibly not a whole message) with fds. */
    public void sendRaw(byte[] bytes, int... fdsToSend) throws Exception {
        MemorySegment.copy(bytes, 0, buffer, ValueLayout.JAVA_BYTE, 0, bytes.length);
        linux.send(socket, buffer, bytes.length, fdsToSend, fdsToSend.length);
    }

    public void send(FrontendRequest request, int flags, byte[] payload, int... fdsToSend) throws Exception {
        ByteBuffer message = le(MessageHeader.SIZE + payload.length);
        message.putInt(request.code()).putInt(MessageHeader.VERSION | flags).putInt(payload.length).put(payload);
        sendRaw(message.array(), fdsToSend);
    }

    public void send(FrontendRequest request, byte[] payload, int... fdsToSend) throws Exception {
        send(request, 0, payload, fdsToSend);
    }

    /** Sends and waits for the reply (requests with their own reply, or NEED_REPLY under REPLY_ACK). */
    public Reply call(FrontendRequest request, int flags, byte[] payload, int... fdsToSend) throws Exception {
        send(request, flags, payload, fdsToSend);
        return read();
    }

    public Reply call(FrontendRequest request, byte[] payload) throws Exception {
        return call(request, 0, payload);
    }

    public long getU64(FrontendRequest request) throws Exception {
        return call(request, new byte[0]).u64();
    }

    /** An acked request: asserts nothing, returns the ack value. */
    public long ack(FrontendRequest request, byte[] payload, int... fdsToSend) throws Exception {
        return call(request, MessageHeader.NEED_REPLY, payload, fdsToSend).u64();
    }

    public Reply read() throws Exception {
        readFully(0, MessageHeader.SIZE);
        int request = buffer.get(ValueLayout.JAVA_INT_UNALIGNED, 0);
        int flags = buffer.get(ValueLayout.JAVA_INT_UNALIGNED, 4);
        int size = buffer.get(ValueLayout.JAVA_INT_UNALIGNED, 8);
        int fd = fds.count() > 0 ? fds.take(0) : -1;
        fds.closeAll(linux);
        readFully(MessageHeader.SIZE, size);
        byte[] body = buffer.asSlice(MessageHeader.SIZE, size).toArray(ValueLayout.JAVA_BYTE);
        return new Reply(request, flags, body, fd);
    }

    private void readFully(int at, int length) throws Exception {
        int got = 0;
        while (got < length) {
            int n = linux.receive(socket, buffer.asSlice(at + got), length - got, fds);
            if (n == 0) {
                throw new java.io.EOFException("back-end closed the connection");
            }
            got += n;
        }
    }

    /** True if the back-end closed the connection (reads EOF). */
    public boolean isClosedByPeer() throws Exception {
        return linux.receive(socket, buffer, 1, fds) == 0;
    }

    @Override
    public void close() {
        fds.closeAll(linux);
        linux.close(socket);
        arena.close();
    }
}
