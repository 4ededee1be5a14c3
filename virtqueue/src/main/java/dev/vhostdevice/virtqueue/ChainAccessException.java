package dev.vhostdevice.virtqueue;

/**
 * A device read or wrote past the end of a chain's readable or writable buffers: the guest offered less than
 * the request needs. The device completes that request with an error and carries on.
 */
public final class ChainAccessException extends RuntimeException {
    public ChainAccessException(String message) {
        super(message, null, false, false);
    }
}
