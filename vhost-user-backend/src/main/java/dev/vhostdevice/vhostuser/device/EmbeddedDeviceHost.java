package dev.vhostdevice.vhostuser.device;

import dev.vhostdevice.virtqueue.VirtQueue;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import java.util.Objects;

/**
 * Runs a {@link VirtioDevice} inside another VMM's process, with no socket: the VMM owns guest memory and the
 * {@link VirtQueue}s, split or packed (configured and activated by its own transport), and calls {@link #kick}
 * when the driver notifies a queue. Used-buffer notifications and config changes go to the VMM's callbacks.
 *
 * <p>Like the vhost-user worker, the VMM must call into the host from one thread at a time.
 */
public final class EmbeddedDeviceHost implements DeviceContext, AutoCloseable {
    /** How the VMM watches host fds for the device; null when the VMM offers none. */
    public interface FdWatcher {
        void watch(int fd, int events, int token);

        /** Changes a watched fd's events and token; by default as unwatch then watch. */
        default void change(int fd, int events, int token) {
            unwatch(fd);
            watch(fd, events, token);
        }

        void unwatch(int fd);
    }

    private final VirtioDevice device;
    private final DeviceQueue[] queues;
    private final Runnable configChanged;
    private final FdWatcher fdWatcher;
    private long ackedFeatures;

    public EmbeddedDeviceHost(VirtioDevice device, VirtQueue[] queues, QueueNotifier notifier,
                              Runnable configChanged, FdWatcher fdWatcher) {
        this.device = Objects.requireNonNull(device);
        if (queues.length != device.queueCount()) {
            throw new IllegalArgumentException("device has " + device.queueCount() + " queues, got " + queues.length);
        }
        this.queues = new DeviceQueue[queues.length];
        for (int i = 0; i < queues.length; i++) {
            this.queues[i] = new DeviceQueue(i, queues[i], notifier);
        }
        this.configChanged = configChanged;
        this.fdWatcher = fdWatcher;
        device.attach(this);
    }

    /** The driver accepted {@code features}. */
    public void setFeatures(long features) {
        ackedFeatures = features;
        device.featuresAcked(features);
    }

    /** The driver notified queue {@code index}: the device processes what is available. */
    public void kick(int index) {
        queues[index].service(device);
        // Completions the device made on other queues meanwhile are notified now, not at their next kick.
        for (DeviceQueue q : queues) {
            if (q != queues[index]) {
                q.afterCallback();
            }
        }
    }

    /** A watched host fd is ready. */
    public void hostFdReady(int token, int readyEvents) {
        device.handleHostFd(token, readyEvents);
        for (DeviceQueue q : queues) {
            q.afterCallback();
        }
    }

    /** The VMM replaced guest memory (queues already remapped by the VMM). */
    public void memoryChanged(GuestMemory memory) {
        device.memoryChanged(memory);
    }

    /** The VMM is done with the device: it releases its host resources. */
    @Override
    public void close() {
        device.close();
    }

    public VirtioDevice device() {
        return device;
    }

    @Override
    public DeviceQueue queue(int index) {
        return queues[index];
    }

    @Override
    public long ackedFeatures() {
        return ackedFeatures;
    }

    @Override
    public void watchFd(int fd, int events, int token) {
        if (fdWatcher == null) {
            throw new UnsupportedOperationException("this VMM watches no host fds");
        }
        fdWatcher.watch(fd, events, token);
    }

    @Override
    public void changeWatch(int fd, int events, int token) {
        if (fdWatcher == null) {
            throw new UnsupportedOperationException("this VMM watches no host fds");
        }
        fdWatcher.change(fd, events, token);
    }

    @Override
    public void unwatchFd(int fd) {
        if (fdWatcher != null) {
            fdWatcher.unwatch(fd);
        }
    }

    @Override
    public void notifyConfigChanged() {
        if (configChanged != null) {
            configChanged.run();
        }
    }
}
