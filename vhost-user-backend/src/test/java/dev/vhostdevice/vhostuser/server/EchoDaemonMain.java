package dev.vhostdevice.vhostuser.server;

import dev.vhostdevice.vhostuser.cli.DaemonCommand;
import dev.vhostdevice.vhostuser.device.DeviceFactory;
import dev.vhostdevice.vhostuser.testkit.EchoDevice;

/** A device daemon for {@link DaemonSignalTest}: the echo test device behind DaemonCommand, run in a child JVM. */
public final class EchoDaemonMain extends DaemonCommand {
    public EchoDaemonMain() {
        super("vhost-device-echo", "Echo test daemon.");
    }

    @Override
    protected DeviceFactory deviceFactory(int socketIndex) {
        return EchoDevice::new;
    }

    public static void main(String[] args) {
        System.exit(DaemonCommand.execute(new EchoDaemonMain(), args));
    }
}
