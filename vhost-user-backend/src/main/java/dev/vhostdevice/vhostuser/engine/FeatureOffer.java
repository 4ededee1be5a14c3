package dev.vhostdevice.vhostuser.engine;

import static dev.vhostdevice.vhostuser.protocol.VirtioFeatures.VHOST_F_LOG_ALL;
import static dev.vhostdevice.vhostuser.protocol.VirtioFeatures.VHOST_USER_F_PROTOCOL_FEATURES;
import static dev.vhostdevice.vhostuser.protocol.VirtioFeatures.VIRTIO_F_VERSION_1;
import static dev.vhostdevice.vhostuser.protocol.VirtioFeatures.VIRTIO_RING_F_EVENT_IDX;
import static dev.vhostdevice.vhostuser.protocol.VirtioFeatures.VIRTIO_RING_F_INDIRECT_DESC;
import static dev.vhostdevice.vhostuser.protocol.VirtioFeatures.bit;

import dev.vhostdevice.vhostuser.device.VirtioDevice;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;

/** What the engine offers for a device: its own transport and protocol features, filtered by the device. */
public final class FeatureOffer {
    /** Virtio bits the engine implements for every device. */
    public static final long ENGINE_VIRTIO_FEATURES = bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_RING_F_INDIRECT_DESC)
            | bit(VIRTIO_RING_F_EVENT_IDX) | bit(VHOST_USER_F_PROTOCOL_FEATURES) | bit(VHOST_F_LOG_ALL);

    /**
     * Protocol features the engine implements for every device, all at or below bit 17 (the highest the Xen
     * bridge accepts). XEN_MMAP: the region layout is then read from each message (see {@code RegionLayout}).
     */
    public static final long ENGINE_PROTOCOL_FEATURES = ProtocolFeature.maskOf(ProtocolFeature.MQ,
            ProtocolFeature.REPLY_ACK, ProtocolFeature.BACKEND_REQ, ProtocolFeature.INFLIGHT_SHMFD,
            ProtocolFeature.RESET_DEVICE, ProtocolFeature.CONFIGURE_MEM_SLOTS, ProtocolFeature.STATUS,
            ProtocolFeature.LOG_SHMFD, ProtocolFeature.XEN_MMAP);

    private FeatureOffer() {
    }

    public static long virtioFeatures(VirtioDevice device) {
        return device.deviceFeatures() | ENGINE_VIRTIO_FEATURES;
    }

    /** The default offer: no bit above 17, so the Xen bridge accepts it. */
    public static long protocolFeatures(VirtioDevice device) {
        return protocolFeatures(device, false);
    }

    /**
     * The engine's protocol features, plus CONFIG when the device has config space (QEMU warns about CONFIG on
     * devices without one) and DEVICE_STATE when it can save state and the user asked for it ({@code
     * offerDeviceState}: bit 19 makes the Xen bridge refuse the back-end); then the device's own filter. Bits the
     * engine does not implement are dropped whatever the device says.
     */
    public static long protocolFeatures(VirtioDevice device, boolean offerDeviceState) {
        long offer = ENGINE_PROTOCOL_FEATURES;
        if (device.configSize() > 0) {
            offer |= ProtocolFeature.CONFIG.mask();
        }
        if (offerDeviceState && device.supportsState()) {
            offer |= ProtocolFeature.DEVICE_STATE.mask();
        }
        return device.protocolFeatures(offer) & offer;
    }
}
