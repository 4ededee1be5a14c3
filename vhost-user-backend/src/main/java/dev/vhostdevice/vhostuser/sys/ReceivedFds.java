package dev.vhostdevice.vhostuser.sys;

import java.util.Arrays;

/**
 * The fds that came with one received message, owned by the receiver until taken. Reused across messages, so
 * receiving allocates nothing. Whatever is not {@link #take taken} must be {@link #closeAll closed}.
 */
public final class ReceivedFds {
    /** More than any vhost-user message may carry (32), so an excess is seen and refused rather than truncated. */
    public static final int CAPACITY = 40;

    private final int[] fds = new int[CAPACITY];
    private int count;

    public int count() {
        return count;
    }

    /** Takes ownership of the fd at {@code index}: it will not be closed by {@link #closeAll}. */
    public int take(int index) {
        if (index >= count || fds[index] < 0) {
            throw new IllegalStateException("fd " + index + " not present or already taken");
        }
        int fd = fds[index];
        fds[index] = -1;
        return fd;
    }

    public int peek(int index) {
        return fds[index];
    }

    /** Closes every fd not taken and empties the set. */
    public void closeAll(Linux linux) {
        for (int i = 0; i < count; i++) {
            if (fds[i] >= 0) {
                linux.close(fds[i]);
            }
        }
        clear();
    }

    void clear() {
        Arrays.fill(fds, 0, count, -1);
        count = 0;
    }

    /** For {@link Linux} implementations: records one received fd. */
    public void add(int fd) {
        if (count == CAPACITY) {
            throw new IllegalStateException("more than " + CAPACITY + " fds");
        }
        fds[count++] = fd;
    }

    @Override
    public String toString() {
        return "ReceivedFds" + Arrays.toString(Arrays.copyOf(fds, count));
    }
}
