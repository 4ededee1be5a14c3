package dev.vhostdevice.scmi;

/**
 * The platform-to-agent channel (virtio-scmi's eventq): notifications and delayed responses. Exists only when
 * the driver negotiated VIRTIO_SCMI_F_P2A_CHANNELS.
 */
public interface EventChannel {
    /** Starts a message with {@code header} in the channel's reusable buffer. */
    ScmiResponse begin(int header);

    /**
     * Sends the message begun; false when the agent has no buffer posted for it (a notification is then lost; a
     * delayed response is kept and sent once the agent posts buffers).
     */
    boolean send();
}
