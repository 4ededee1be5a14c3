package dev.vhostdevice.vhostuser.device;

import dev.vhostdevice.virtqueue.QueueFault;

/** Where a queue's events go: the call eventfd under vhost-user, the VMM's interrupt when embedded. */
public interface QueueNotifier {

    /** The driver asked for a used-buffer notification. */
    void notifyUsed(int queueIndex);

    /** The queue broke (the driver corrupted the ring): the device needs a reset. */
    default void queueBroken(int queueIndex, QueueFault fault) {
    }
}
