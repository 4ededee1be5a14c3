package dev.vhostdevice.vhostuser.server;

import dev.vhostdevice.vhostuser.engine.WorkerTuning;
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
 * @param workers          how each session's worker polls and where it runs (--poll-us, --worker-cpus); by
 *                         default it sleeps in epoll between kicks
 */
public record ServerOptions(boolean offerDeviceState, XenIo xen, boolean packedRing, WorkerTuning workers) {
    public static final ServerOptions DEFAULTS = new ServerOptions(false, XenIo.system(), true, WorkerTuning.SLEEPING);

    /** Packed rings offered, workers sleeping between kicks. */
    public ServerOptions(boolean offerDeviceState, XenIo xen) {
        this(offerDeviceState, xen, true, WorkerTuning.SLEEPING);
    }

    public ServerOptions withDeviceState(boolean offer) {
        return new ServerOptions(offer, xen, packedRing, workers);
    }

    public ServerOptions withXen(XenIo io) {
        return new ServerOptions(offerDeviceState, io, packedRing, workers);
    }

    public ServerOptions withPackedRing(boolean offer) {
        return new ServerOptions(offerDeviceState, xen, offer, workers);
    }

    public ServerOptions withWorkers(WorkerTuning tuning) {
        return new ServerOptions(offerDeviceState, xen, packedRing, tuning);
    }
}
