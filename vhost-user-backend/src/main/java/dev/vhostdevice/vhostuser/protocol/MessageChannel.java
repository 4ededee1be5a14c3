package dev.vhostdevice.vhostuser.protocol;

import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.vhostuser.sys.ReceivedFds;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Framing of vhost-user messages on one connected socket: reads exactly one header (collecting its fds from
 * that recvmsg) and exactly its payload, so a read never spans two messages; writes header, payload and fds
 * in one sendmsg. Reuses its buffers; not thread-safe (one reader, one writer at a time).
 */
public final class MessageChannel implements AutoCloseable {
    private final Linux linux;
    private final int socket;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment header = arena.allocate(MessageHeader.SIZE, 8);
    private final MemorySegment body = arena.allocate(MessageHeader.MAX_PAYLOAD, 8);
    private final MemorySegment out = arena.allocate(MessageHeader.SIZE + MessageHeader.MAX_PAYLOAD, 8);
    private final ReceivedFds fds = new ReceivedFds();
    private final ReceivedFds strayFds = new ReceivedFds();
    private final int[] oneFd = new int[1];

    public MessageChannel(Linux linux, int socket) {
        this.linux = linux;
        this.socket = socket;
    }

    public int socket() {
        return socket;
    }

    /** The fds of the last message read; the caller takes what it keeps and closes the rest. */
    public ReceivedFds fds() {
        return fds;
    }

    /** The payload of the last message read. */
    public MemorySegment body() {
        return body;
    }

    /**
     * Reads the next message's header and payload. Returns null at a clean end of stream (between messages).
     * Throws {@link ProtocolException#framing} when the stream cannot be trusted any more; the fds received
     * are closed in that case.
     */
    public MessageHeader read() throws ProtocolException, ErrnoException {
        fds.closeAll(linux);
        int got = readFully(header, MessageHeader.SIZE, fds, true);
        if (got == 0) {
            return null;
        }
        MessageHeader h = PayloadCodec.decodeHeader(header);
        try {
            if (got < MessageHeader.SIZE) {
                throw ProtocolException.framing("peer closed the connection inside a header (" + got + " bytes)");
            }
            if (h.version() != MessageHeader.VERSION || h.hasReservedFlags()) {
                throw ProtocolException.framing("bad flags 0x" + Integer.toHexString(h.flags()) + " on request " + h.request());
            }
            if (h.size() < 0 || h.size() > MessageHeader.MAX_PAYLOAD) {
                throw ProtocolException.framing("payload of " + Integer.toUnsignedString(h.size())
                        + " bytes exceeds the limit of " + MessageHeader.MAX_PAYLOAD + " (request " + h.request() + ")");
            }
            if (h.size() > 0 && readFully(body, h.size(), strayFds, false) < h.size()) {
                throw ProtocolException.framing("peer closed the connection inside a payload (request " + h.request() + ")");
            }
        } catch (ProtocolException | ErrnoException e) {
            fds.closeAll(linux);
            throw e;
        }
        return h;
    }

    /** Reads {@code length} bytes unless the stream ends first; fds from any read go to {@code into}. */
    private int readFully(MemorySegment buffer, int length, ReceivedFds into, boolean fdsAllowed)
            throws ErrnoException, ProtocolException {
        int total = 0;
        while (total < length) {
            int n = linux.receive(socket, buffer.asSlice(total), length - total, strayFds);
            if (strayFds.count() > 0) {
                if (!fdsAllowed || total > 0 || into != fds) {
                    strayFds.closeAll(linux);
                    throw ProtocolException.framing("fds arrived after the first byte of a message");
                }
                for (int i = 0; i < strayFds.count(); i++) {
                    fds.add(strayFds.take(i));
                }
                strayFds.closeAll(linux);
            }
            if (n == 0) {
                return total;
            }
            total += n;
        }
        return total;
    }

    /** Sends a reply to {@code request} with the {@code size} bytes written at {@link #replyBody()}. */
    public void reply(int request, int size, int fd) throws ErrnoException {
        PayloadCodec.encodeHeader(out, request, MessageHeader.VERSION | MessageHeader.REPLY, size);
        send(MessageHeader.SIZE + size, fd);
    }

    /** Sends a request (back-end channel) with the {@code size} bytes written at {@link #replyBody()}. */
    public void request(int request, int flags, int size) throws ErrnoException {
        PayloadCodec.encodeHeader(out, request, MessageHeader.VERSION | flags, size);
        send(MessageHeader.SIZE + size, -1);
    }

    /** Where a reply or request body is written before {@link #reply} / {@link #request}. */
    public MemorySegment replyBody() {
        return out.asSlice(MessageHeader.SIZE);
    }

    private void send(int length, int fd) throws ErrnoException {
        int count = 0;
        if (fd >= 0) {
            oneFd[0] = fd;
            count = 1;
        }
        int sent = 0;
        while (sent < length) {
            int n = linux.send(socket, out.asSlice(sent), length - sent, oneFd, sent == 0 ? count : 0);
            if (n <= 0) {
                throw new ErrnoException("sendmsg (short write)", dev.vhostdevice.virtqueue.memory.Errno.EPIPE);
            }
            sent += n;
        }
    }

    /** Closes the socket, any unclaimed fds and the buffers. */
    @Override
    public void close() {
        fds.closeAll(linux);
        linux.close(socket);
        arena.close();
    }
}
