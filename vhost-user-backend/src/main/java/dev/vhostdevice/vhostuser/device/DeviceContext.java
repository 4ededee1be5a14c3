package dev.vhostdevice.vhostuser.device;

/** What a device may ask of whoever runs it: the vhost-user engine or an embedding VMM. */
public interface DeviceContext {

    /** Queue {@code index} (0 ≤ index &lt; queueCount). */
    DeviceQueue queue(int index);

    /** The features the driver accepted (0 before SET_FEATURES). */
    long ackedFeatures();

    /**
     * Watches a host fd for {@code events} (Linux EPOLL* bits, level-triggered unless EPOLLET is given);
     * readiness arrives on the worker in {@link VirtioDevice#handleHostFd}(token, …). Any number of fds may be
     * watched; each fd once. Throws IllegalStateException when the fd cannot be watched (closed, EMFILE …).
     */
    void watchFd(int fd, int events, int token);

    /**
     * Changes what a watched fd is watched for, and its token: e.g. EPOLLOUT only while a socket has bytes
     * queued for it, or nothing at all (events 0) while the device cannot take more from it. Cheaper than
     * unwatch + watch. Throws IllegalStateException when {@code fd} is not watched.
     */
    void changeWatch(int fd, int events, int token);

    /**
     * Stops watching {@code fd}. The device still owns and closes it (after this call, so the number cannot be
     * reused while still in the set). Readiness already collected in the worker's current batch may still be
     * delivered once for the old token: a device must treat readiness as a hint (non-blocking I/O, EAGAIN).
     */
    void unwatchFd(int fd);

    /** Asks the front-end to re-read config space (BACKEND_CONFIG_CHANGE_MSG under vhost-user). */
    void notifyConfigChanged();
}
