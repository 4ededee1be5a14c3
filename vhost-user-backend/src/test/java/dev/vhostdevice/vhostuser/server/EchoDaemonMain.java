package dev.vhostdevice.vhostuser.server;

import dev.vhostdevice.vhostuser.cli.DaemonCommand;
import dev.vhostdevice.vhostuser.device.DeviceFactory;
import dev.vhostdevice.vhostuser.testkit.EchoDevice;
import picocli.CommandLine.Command;

/** A device daemon for {@link DaemonSignalTest}: the echo test device behind DaemonCommand, run in a child JVM. */
@Command(name = "vhost-device-echo", mixinStandardHelpOptions = true, version = "echo test daemon")
public final class EchoDaemonMain extends DaemonCommand {
    @Override
    protected DeviceFactory deviceFactory(int socketIndex) {
        return EchoDevice::new;
    }

    public static void main(String[] args) {
        System.exit(DaemonCommand.execute(new EchoDaemonMain(), args));
    }
}
