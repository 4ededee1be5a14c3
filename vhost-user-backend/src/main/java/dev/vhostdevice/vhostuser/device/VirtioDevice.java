package dev.vhostdevice.vhostuser.device;

import dev.vhostdevice.virtqueue.memory.GuestMemory;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

/**
 * What every device implements. A device sees queues and chains, never sockets, eventfds or protocol messages,
 * so the same object runs under the vhost-user engine or embedded in a VMM ({@link EmbeddedDeviceHost}).
 *
 * <p>Threading: every method except the identity ones ({@link #queueCount()} … {@link #configSize()}) and the
 * state transfer is called on one thread at a time (the device's worker), so a device needs no locking unless it
 * starts threads of its own. A device's other threads must not touch queues; they wake the worker through an fd
 * registered with {@link DeviceContext#watchFd}.
 */
public interface VirtioDevice {

    /** Number of virtqueues (GET_QUEUE_NUM). */
    int queueCount();

    /** Largest ring size a queue accepts (a power of two). */
    int maxQueueSize();

    /**
     * Device-specific virtio feature bits (below bit 24, and bits the device adds itself). The engine adds the
     * transport bits it implements: VERSION_1, RING_INDIRECT_DESC, RING_EVENT_IDX, PROTOCOL_FEATURES, LOG_ALL.
     */
    long deviceFeatures();

    /**
     * Filters the protocol features the engine would offer. Bits above 17 (DEVICE_STATE and newer) make the Xen
     * bridge refuse the device, so the engine offers them only when the device asks for them here or supports
     * state ({@link #supportsState()}).
     */
    default long protocolFeatures(long engineOffer) {
        return engineOffer;
    }

    /** Size of the config space in bytes; 0 means none (and CONFIG is not offered). */
    default int configSize() {
        return 0;
    }

    /** Fills {@code destination} from config space at {@code offset}; the range is within {@link #configSize()}. */
    default void readConfig(int offset, byte[] destination) {
    }

    /**
     * Writes config space; false refuses (read-only field). {@code migration} marks a live-migration restore,
     * which may set read-only fields.
     */
    default boolean writeConfig(int offset, byte[] data, boolean migration) {
        return false;
    }

    /** Called once before anything else: the device's handle to its queues and host. */
    default void attach(DeviceContext context) {
    }

    /** The driver's accepted features (SET_FEATURES). */
    default void featuresAcked(long features) {
    }

    /**
     * Processes the available chains of {@code queue}: pop, handle, complete. Called after a kick (already
     * drained) and whenever the queue starts or is enabled. A device may leave chains available (an event queue
     * waiting for events) or hold popped chains and complete them later. An exception completes the chains
     * popped during this call with 0 bytes and is logged; the worker carries on.
     */
    void handleQueue(DeviceQueue queue);

    /**
     * The queue is about to stop (GET_VRING_BASE, reset): complete or return any chains the device holds,
     * because the stop waits for in-flight chains to complete.
     */
    default void queueStopping(DeviceQueue queue) {
    }

    /** A host fd registered with {@link DeviceContext#watchFd} is ready. */
    default void handleHostFd(int token, int readyEvents) {
    }

    /** Guest memory changed (new table); chains popped before refer to the old mapping until completed. */
    default void memoryChanged(GuestMemory memory) {
    }

    /** Back to the initial device state (RESET_DEVICE, SET_STATUS 0). Queues are stopped and reset already. */
    default void reset() {
    }

    /**
     * The device is discarded (its front-end disconnected, or the embedding VMM is done with it): release host
     * resources such as timers and fds. No other callback runs during or after it.
     */
    default void close() {
    }

    /** Whether the device can save and restore its state (offers DEVICE_STATE). */
    default boolean supportsState() {
        return false;
    }

    /** Writes the device state (rings are stopped). Runs on a transfer thread. */
    default void saveState(OutputStream out) throws IOException {
        throw new UnsupportedOperationException("device has no state transfer");
    }

    /** Reads a state written by {@link #saveState}; throws on corrupt data. Runs on a transfer thread. */
    default void loadState(InputStream in) throws IOException {
        throw new UnsupportedOperationException("device has no state transfer");
    }
}
