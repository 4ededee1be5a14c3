package dev.vhostdevice.vhostuser.engine;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Little-endian reads from reply bodies. */
final class ByteBufferLE {
    private ByteBufferLE() {
    }

    static long u64(byte[] body, int at) {
        return ByteBuffer.wrap(body).order(ByteOrder.LITTLE_ENDIAN).getLong(at);
    }
}
