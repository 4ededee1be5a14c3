package dev.vhostdevice.vhostuser.server;

import dev.vhostdevice.virtqueue.memory.XenIo;

/**
 * What a daemon's user chooses for every connection of a server, and the Xen seam its sessions map through.
 *
 * @param offerDeviceState offer VHOST_USER_PROTOCOL_F_DEVICE_STATE (bit 19, QEMU's live migration of device
 *                         state) when the device can save state. Off by default: the Xen bridge refuses any
 *                         protocol bit above 17, so a back-end offering it cannot serve Xen guests.
 * @param xen              privcmd and gntdev calls for Xen regions: {@link XenIo#system()}, or a test's fake
 * @param packedRing       offer VIRTIO_F_RING_PACKED (bit 34, packed virtqueues) to every device; on by default,
 *                         off with the daemons' {@code --no-packed-ring}: every ring then stays split
 */
public record ServerOptions(boolean offerDeviceState, XenIo xen, boolean packedRing) {
    public static final ServerOptions DEFAULTS = new ServerOptions(false, XenIo.system(), true);

    /** Packed rings offered. */
    public ServerOptions(boolean offerDeviceState, XenIo xen) {
        this(offerDeviceState, xen, true);
    }

    public ServerOptions withDeviceState(boolean offer) {
        return new ServerOptions(offer, xen, packedRing);
    }

    public ServerOptions withXen(XenIo io) {
        return new ServerOptions(offerDeviceState, io, packedRing);
    }

    public ServerOptions withPackedRing(boolean offer) {
        return new ServerOptions(offerDeviceState, xen, offer);
    }
}
