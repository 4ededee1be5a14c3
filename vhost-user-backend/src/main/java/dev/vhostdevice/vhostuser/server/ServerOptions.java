package dev.vhostdevice.vhostuser.server;

import dev.vhostdevice.virtqueue.memory.XenIo;

/**
 * What a daemon's user chooses for every connection of a server, and the Xen seam its sessions map through.
 *
 * @param offerDeviceState offer VHOST_USER_PROTOCOL_F_DEVICE_STATE (bit 19, QEMU's live migration of device
 *                         state) when the device can save state. Off by default: the Xen bridge refuses any
 *                         protocol bit above 17, so a back-end offering it cannot serve Xen guests.
 * @param xen              privcmd and gntdev calls for Xen regions: {@link XenIo#system()}, or a test's fake
 */
public record ServerOptions(boolean offerDeviceState, XenIo xen) {
    public static final ServerOptions DEFAULTS = new ServerOptions(false, XenIo.system());

    public ServerOptions withDeviceState(boolean offer) {
        return new ServerOptions(offer, xen);
    }

    public ServerOptions withXen(XenIo io) {
        return new ServerOptions(offerDeviceState, io);
    }
}
