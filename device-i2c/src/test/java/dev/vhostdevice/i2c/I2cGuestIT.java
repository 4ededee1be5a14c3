package dev.vhostdevice.i2c;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.guest.DeviceProcess;
import dev.vhostdevice.vhostuser.guest.GuestBench;
import dev.vhostdevice.vhostuser.guest.GuestBench.Qemu;
import dev.vhostdevice.vhostuser.guest.GuestResult;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A real Linux guest under QEMU 7.2 and QEMU 10 (i2c_virtio and i2c_dev loaded at boot) uses busybox's i2c
 * tools on the simulated EEPROM of vhost-device-i2c.jar, run the way a user runs it. QEMU 10 passes only the
 * ring features the back-end offers, and its i2c queue has 4 entries: i2cget's two-message transfer fits only
 * through INDIRECT_DESC.
 */
class I2cGuestIT {
    /** Finds the virtio adapter's bus number. */
    private static final String FIND_BUS = """
            bus=
            for a in /sys/bus/i2c/devices/i2c-*; do
              grep -q i2c_virtio "$a/name" && bus=${a##*i2c-}
            done
            [ -n "$bus" ] || { echo "no i2c_virtio adapter"; i2cdetect -l; exit 1; }
            echo "bus=$bus"
            """;

    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(Qemu.class)
    void busyboxFindsWritesAndReadsTheSimulatedEeprom(Qemu qemu) throws Exception {
        // Split rings: QEMU 10 takes the packed layout from the offer, packed=on or not, so the switch keeps it off.
        GuestResult result = toolsWorkOnTheSimulatedEeprom(qemu, List.of("--no-packed-ring"));
        assertEquals("0", result.value("packed"), result.describe());
    }

    /** The same with QEMU's {@code packed=on}: the guest drives a packed virtqueue (VIRTIO_F_RING_PACKED). */
    @ParameterizedTest
    @EnumSource(Qemu.class)
    void busyboxFindsWritesAndReadsTheSimulatedEepromOverAPackedRing(Qemu qemu) throws Exception {
        GuestResult result = toolsWorkOnTheSimulatedEeprom(qemu, List.of(), "packed=on");
        assertEquals("1", result.value("packed"), "the guest negotiated VIRTIO_F_RING_PACKED: " + result.describe());
    }

    private GuestResult toolsWorkOnTheSimulatedEeprom(Qemu qemu, List<String> backendArgs, String... properties)
            throws Exception {
        Path socket = dir.resolve("i2c.sock");
        List<String> args = new ArrayList<>(List.of("--socket-path", socket.toString(), "--device-list", "sim:80"));
        args.addAll(backendArgs);
        try (DeviceProcess backend = DeviceProcess.start(socket, args.toArray(String[]::new))) {
            GuestResult result = GuestBench.guest(qemu)
                    .vhostUser("i2c", socket, properties)
                    .command(FIND_BUS + """
                            for d in /sys/bus/virtio/devices/*; do
                              [ "$(cat "$d/device")" = 0x0022 ] && echo "packed=$(cut -c35 "$d/features")"
                            done
                            i2cdetect -y "$bus" > /tmp/scan || exit 2
                            cat /tmp/scan
                            echo "found=$(tail -n +2 /tmp/scan | cut -c5- | tr -s ' ' '\\n' | grep -E '^([0-9a-f]{2}|UU)$' | tr '\\n' ' ')"
                            echo "initial=$(i2cget -y "$bus" 0x50 0x11)"
                            i2cset -y "$bus" 0x50 0x10 0xab || exit 3
                            echo "get=$(i2cget -y "$bus" 0x50 0x10)"
                            i2ctransfer -y "$bus" w4@0x50 0x20 0x12 0x34 0x56 || exit 4
                            echo "xfer=$(i2ctransfer -y "$bus" w1@0x50 0x20 r4)"
                            if i2cget -y "$bus" 0x51 0x00 2>/dev/null; then echo absent=answered; else echo absent=nack; fi
                            """)
                    .run();
            String all = result.describe() + "\n--- back-end\n" + backend.log();
            assertEquals(0, result.status(), all);
            assertEquals("50", result.value("found").strip(), "only the EEPROM answers the scan: " + all);
            assertEquals("0x11", result.value("initial"), all);
            assertEquals("0xab", result.value("get"), all);
            assertEquals("0x12 0x34 0x56 0x23", result.value("xfer").strip(), all);
            assertEquals("nack", result.value("absent"), all);
            assertTrue(backend.isAlive(), backend.log());
            assertFalse(backend.log().contains("WARN") || backend.log().contains("ERROR"),
                    "a bus scan and a NACK log nothing: " + backend.log());
            return result;
        }
    }

    @ParameterizedTest
    @EnumSource(Qemu.class)
    void aGuestBootedLaterSeesWhatTheFirstWroteBecauseTheAdaptersOutliveConnections(Qemu qemu) throws Exception {
        Path socket = dir.resolve("i2c.sock");
        try (DeviceProcess backend = DeviceProcess.start(socket, "-s", socket.toString(), "-l", "sim:80:82")) {
            GuestResult first = GuestBench.guest(qemu)
                    .vhostUser("i2c", socket)
                    .command(FIND_BUS + "i2cset -y \"$bus\" 0x52 0x05 0x5a || exit 2\n")
                    .run();
            assertEquals(0, first.status(), first.describe() + "\n--- back-end\n" + backend.log());
            GuestResult second = GuestBench.guest(qemu)
                    .vhostUser("i2c", socket)
                    .command(FIND_BUS + """
                            echo "eeprom52=$(i2cget -y "$bus" 0x52 0x05)"
                            echo "eeprom50=$(i2cget -y "$bus" 0x50 0x05)"
                            """)
                    .run();
            assertEquals(0, second.status(), second.describe() + "\n--- back-end\n" + backend.log());
            assertEquals("0x5a", second.value("eeprom52"), second.describe());
            assertEquals("0x05", second.value("eeprom50"), second.describe());
        }
    }
}
