package dev.vhostdevice.vhostuser.device;

/** Makes a fresh device for each front-end connection, so a reconnecting front-end starts from a clean state. */
@FunctionalInterface
public interface DeviceFactory {
    VirtioDevice create() throws Exception;
}
