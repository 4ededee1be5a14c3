package dev.vhostdevice.vhostuser.engine;

/**
 * What the engine offers beyond the device's own features, as a user chose it.
 *
 * @param packedRing whether VIRTIO_F_RING_PACKED (bit 34) is offered; off, every ring stays split
 */
public record EngineOptions(boolean packedRing) {
    /** Everything the engine implements. */
    public static final EngineOptions DEFAULT = new EngineOptions(true);
}
