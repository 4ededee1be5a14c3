package dev.vhostdevice.virtqueue;

/** A queue configuration the split ring does not allow: a bad size, misaligned or unmapped rings. */
public final class QueueConfigException extends Exception {
    public QueueConfigException(String message) {
        super(message);
    }
}
