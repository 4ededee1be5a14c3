package dev.vhostdevice.vhostuser.device;

/** What a device may ask of whoever runs it: the vhost-user engine or an embedding VMM. */
public interface DeviceContext {

    /** Queue {@code index} (0 ≤ index &lt; queueCount). */
    DeviceQueue queue(int index);

    /** The features the driver accepted (0 before SET_FEATURES). */
    long ackedFeatures();

    /** Watches a host fd for {@code events} (Linux EPOLL* bits); readiness arrives in handleHostFd(token, …). */
    void watchFd(int fd, int events, int token);

    /** Stops watching {@code fd}. The device still owns and closes it. */
    void unwatchFd(int fd);

    /** Asks the front-end to re-read config space (BACKEND_CONFIG_CHANGE_MSG under vhost-user). */
    void notifyConfigChanged();
}
