package dev.vhostdevice.vhostuser.frontend;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * One message read from the back-end (a reply on the main socket, or a request on the back-end channel):
 * header fields, body, and the fds that came with it (owned by the caller: close them, or let
 * {@link TestFrontend#close()} do it for replies read through it).
 */
public record Reply(int request, int flags, byte[] body, int[] fds) {
    public long u64() {
        if (body.length != 8) {
            throw new AssertionError("expected a u64 body, got " + body.length + " bytes for request " + request);
        }
        return u64(0);
    }

    public long u64(int at) {
        return ByteBuffer.wrap(body).order(ByteOrder.LITTLE_ENDIAN).getLong(at);
    }

    public int u32(int at) {
        return ByteBuffer.wrap(body).order(ByteOrder.LITTLE_ENDIAN).getInt(at);
    }

    public int u16(int at) {
        return Short.toUnsignedInt(ByteBuffer.wrap(body).order(ByteOrder.LITTLE_ENDIAN).getShort(at));
    }

    /** The first fd, or -1. */
    public int fd() {
        return fds.length == 0 ? -1 : fds[0];
    }

    public boolean hasFlag(int flag) {
        return (flags & flag) != 0;
    }

    @Override
    public String toString() {
        return "Reply[request=" + request + ", flags=0x" + Integer.toHexString(flags) + ", body=" + body.length
                + " bytes, fds=" + Arrays.toString(fds) + "]";
    }
}
