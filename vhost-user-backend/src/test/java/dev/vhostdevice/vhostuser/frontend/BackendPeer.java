package dev.vhostdevice.vhostuser.frontend;

import dev.vhostdevice.vhostuser.protocol.MessageHeader;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.vhostuser.sys.ReceivedFds;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;

/**
 * The front-end's end of the back-end request channel (SET_BACKEND_REQ_FD): a socketpair whose other end is
 * handed to the back-end. Reads back-end requests (e.g. BACKEND_CONFIG_CHANGE_MSG) with a deadline and can
 * answer them.
 */
public final class BackendPeer implements AutoCloseable {
    private static final Linux LINUX = Linux.system();

    private final int ours;
    private int theirs;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment buffer = arena.allocate(MessageHeader.SIZE + MessageHeader.MAX_PAYLOAD, 8);
    private final ReceivedFds fds = new ReceivedFds();

    public BackendPeer() throws ErrnoException {
        int[] pair = LINUX.socketPair();
        ours = pair[0];
        theirs = pair[1];
    }

    /** The end to send with SET_BACKEND_REQ_FD. */
    public int backendEnd() {
        return theirs;
    }

    /** After the back-end has its copy: drop ours of its end, so its close shows up here as EOF. */
    public void releaseBackendEnd() {
        LINUX.close(theirs);
        theirs = -1;
    }

    /** The next back-end request, or null if none arrives within {@code timeout}. */
    public Reply poll(Duration timeout) throws ErrnoException {
        if (!Fds.awaitReadable(ours, timeout)) {
            return null;
        }
        readFully(0, MessageHeader.SIZE);
        int request = buffer.get(ValueLayout.JAVA_INT_UNALIGNED, 0);
        int flags = buffer.get(ValueLayout.JAVA_INT_UNALIGNED, 4);
        int size = buffer.get(ValueLayout.JAVA_INT_UNALIGNED, 8);
        int[] got = new int[fds.count()];
        for (int i = 0; i < got.length; i++) {
            got[i] = fds.take(i);
        }
        fds.closeAll(LINUX);
        if (size < 0 || size > MessageHeader.MAX_PAYLOAD) {
            throw new AssertionError("back-end request " + request + " with payload size " + size);
        }
        readFully(MessageHeader.SIZE, size);
        return new Reply(request, flags, buffer.asSlice(MessageHeader.SIZE, size).toArray(ValueLayout.JAVA_BYTE), got);
    }

    /** The next back-end request; AssertionError if none within {@code timeout}. */
    public Reply await(Duration timeout) throws ErrnoException {
        Reply r = poll(timeout);
        if (r == null) {
            throw new AssertionError("no back-end request within " + timeout);
        }
        return r;
    }

    /** Answers a back-end request that set NEED_REPLY with a u64. */
    public void ack(int request, long value) throws ErrnoException {
        MemorySegment out = arena.allocate(MessageHeader.SIZE + 8, 8);
        out.set(ValueLayout.JAVA_INT_UNALIGNED, 0, request);
        out.set(ValueLayout.JAVA_INT_UNALIGNED, 4, MessageHeader.VERSION | MessageHeader.REPLY);
        out.set(ValueLayout.JAVA_INT_UNALIGNED, 8, 8);
        out.set(ValueLayout.JAVA_LONG_UNALIGNED, 12, value);
        LINUX.send(ours, out, MessageHeader.SIZE + 8, new int[0], 0);
    }

    /** True if the back-end closed its end within {@code timeout} (EOF). */
    public boolean awaitClosedByBackend(Duration timeout) throws ErrnoException {
        if (!Fds.awaitReadable(ours, timeout)) {
            return false;
        }
        return LINUX.receive(ours, buffer, 1, fds) == 0;
    }

    private void readFully(int at, int length) throws ErrnoException {
        int got = 0;
        while (got < length) {
            if (!Fds.awaitReadable(ours, Duration.ofSeconds(5))) {
                throw new AssertionError("back-end channel: message cut short (" + got + " of " + length + " bytes)");
            }
            int n = LINUX.receive(ours, buffer.asSlice(at + got), length - got, fds);
            if (n == 0) {
                throw new AssertionError("back-end channel closed inside a message");
            }
            got += n;
        }
    }

    @Override
    public void close() {
        fds.closeAll(LINUX);
        LINUX.close(ours);
        if (theirs >= 0) {
            LINUX.close(theirs);
        }
        arena.close();
    }
}
