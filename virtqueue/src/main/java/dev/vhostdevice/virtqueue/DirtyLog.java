package dev.vhostdevice.virtqueue;

/** Receives every guest-physical range the queue writes (used ring, written buffers), for live migration. */
@FunctionalInterface
public interface DirtyLog {
    void markDirty(long guestAddress, long length);
}
