package dev.vhostdevice.vhostuser.server;

/**
 * What a daemon's user chooses for every connection of a server.
 *
 * @param offerDeviceState offer VHOST_USER_PROTOCOL_F_DEVICE_STATE (bit 19, QEMU's live migration of device
 *                         state) when the device can save state. Off by default: the Xen bridge refuses any
 *                         protocol bit above 17, so a back-end offering it cannot serve Xen guests.
 */
public record ServerOptions(boolean offerDeviceState) {
    public static final ServerOptions DEFAULTS = new ServerOptions(false);

    public ServerOptions withDeviceState(boolean offer) {
        return new ServerOptions(offer);
    }
}
