package dev.vhostdevice.gpio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.guest.DeviceProcess;
import dev.vhostdevice.vhostuser.guest.GuestBench;
import dev.vhostdevice.vhostuser.guest.GuestBench.Qemu;
import dev.vhostdevice.vhostuser.guest.GuestResult;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A real Linux guest under QEMU 7.2 and QEMU 10 (gpio-virtio loaded at boot) drives the simulated chip of
 * vhost-device-gpio.jar, run the way a user runs it, through sysfs with busybox only: lines 0 and 1 are wired,
 * so one reads what the other drives. QEMU 10 passes VIRTIO_GPIO_F_IRQ: the input's interrupt count in
 * /proc/interrupts then rises by exactly one per toggle of its partner, and not at all after {@code none}.
 * QEMU 7.2 strips the feature, and the guest has no {@code edge} file. The rings are split (the daemon runs with
 * {@code --no-packed-ring}: QEMU 10 would take the packed layout from the back-end's offer) except in the packed
 * test, where the -device has {@code packed=on}.
 */
class GpioGuestIT {
    /** Finds the virtio chip, shows its names, exports lines 0 and 1 (sysfs names them after the lines). */
    private static final String SETUP = """
            chip=
            for c in /sys/class/gpio/gpiochip*; do
              case $(cat "$c/label") in virtio*) chip=$c ;; esac
            done
            [ -n "$chip" ] || { echo "no virtio gpiochip"; ls /sys/class/gpio; exit 1; }
            base=$(cat "$chip/base")
            echo "ngpio=$(cat "$chip/ngpio")"
            mount -t debugfs none /sys/kernel/debug 2>/dev/null
            echo "names=$(grep -o 'sim-[0-9]*' /sys/kernel/debug/gpio | tr '\\n' ' ')"
            echo "$base" > /sys/class/gpio/export || exit 2
            echo "$((base + 1))" > /sys/class/gpio/export || exit 2
            l0=/sys/class/gpio/sim-0
            l1=/sys/class/gpio/sim-1
            [ -d "$l0" ] && [ -d "$l1" ] || { ls /sys/class/gpio; exit 3; }
            """;

    /** Drives line 0 and reads line 1, then the other way round. */
    private static final String VALUES = """
            echo "start=$(cat "$l1/direction") $(cat "$l1/value")"
            echo in > "$l1/direction" || exit 4
            echo out > "$l0/direction" || exit 4
            echo 1 > "$l0/value"; echo "high=$(cat "$l1/value")"
            echo 0 > "$l0/value"; echo "low=$(cat "$l1/value")"
            echo in > "$l0/direction" || exit 5
            echo high > "$l1/direction" || exit 5
            echo "swapped_high=$(cat "$l0/value") $(cat "$l1/direction")"
            echo 0 > "$l1/value"; echo "swapped_low=$(cat "$l0/value")"
            echo in > "$l1/direction"
            """;

    /**
     * Line 1 is the interrupt input, line 0 toggles it. Each toggle waits (up to 5 s) for its interrupt; then the
     * count must not move for a second. After {@code none}, three toggles must raise nothing. Re-enabling must
     * work again (a buffer held after {@code none} would trip the driver's WARN_ON).
     */
    private static final String INTERRUPTS = """
            count() { awk -v n="$irq:" '$1 == n { print $2 }' /proc/interrupts; }
            echo low > "$l0/direction" || exit 6
            echo both > "$l1/edge" || exit 6
            irq=$(awk '/gpiolib/ { sub(":", "", $1); print $1 }' /proc/interrupts)
            [ -n "$irq" ] || { cat /proc/interrupts; exit 7; }
            before=$(count)
            v=0
            for i in 1 2 3 4 5 6; do
              v=$((1 - v)); echo $v > "$l0/value"
              t=0
              while [ "$(count)" -lt $((before + i)) ] && [ $t -lt 50 ]; do usleep 100000; t=$((t + 1)); done
            done
            sleep 1
            echo "toggles=$(( $(count) - before ))"
            echo none > "$l1/edge" || exit 8
            after=$(count)
            for i in 1 2 3; do v=$((1 - v)); echo $v > "$l0/value"; done
            sleep 1
            echo "after_none=$(( $(count) - after ))"
            echo rising > "$l1/edge" || exit 9
            again=$(count)
            echo 0 > "$l0/value"; echo 1 > "$l0/value"
            t=0
            while [ "$(count)" -lt $((again + 1)) ] && [ $t -lt 50 ]; do usleep 100000; t=$((t + 1)); done
            sleep 1
            echo "rising=$(( $(count) - again ))"
            echo none > "$l1/edge"
            echo "warnings=$(dmesg | grep -c -e WARNING -e 'GPIO request failed')"
            """;

    private static final String NO_IRQ = """
            if [ -e "$l1/edge" ]; then echo edge=present; else echo edge=absent; fi
            echo "warnings=$(dmesg | grep -c -e WARNING -e 'GPIO request failed')"
            """;

    /** Prints the guest's view of bit 34 (VIRTIO_F_RING_PACKED) for each virtio device of id $1 (41 = gpio). */
    private static final String PACKED_BITS = """
            packed_bits() {
              for d in /sys/bus/virtio/devices/*; do
                [ "$(cat "$d/device")" = "$1" ] && printf '%s' "$(cut -c35 "$d/features")"
              done
              echo
            }
            echo "packed=$(packed_bits 0x0029)"
            """;

    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(Qemu.class)
    void theGuestSeesEightNamedLinesAndEachOfAWiredPairReadsWhatTheOtherDrives(Qemu qemu) throws Exception {
        Path socket = dir.resolve("gpio.sock");
        try (DeviceProcess backend = DeviceProcess.start(socket, "--socket-path", socket.toString(),
                "--device-list", "s8", "--no-packed-ring")) {
            GuestResult result = GuestBench.guest(qemu)
                    .vhostUser("gpio", socket)
                    .command(PACKED_BITS + SETUP + VALUES + (qemu == Qemu.QEMU_10 ? INTERRUPTS : NO_IRQ))
                    .run();
            String all = result.describe() + "\n--- back-end\n" + backend.log();
            assertEquals(0, result.status(), all);
            assertEquals("0", result.value("packed"), "split rings: " + all);
            assertValues(result, all);
            if (qemu == Qemu.QEMU_10) {
                assertInterrupts(result, all);
            } else {
                assertEquals("absent", result.value("edge"), "QEMU 7.2 strips VIRTIO_GPIO_F_IRQ: " + all);
            }
            assertEquals("0", result.value("warnings"), all);
            assertTrue(backend.isAlive(), backend.log());
            assertFalse(backend.log().contains("WARN") || backend.log().contains("ERROR"), backend.log());
        }
    }

    /**
     * The same wired pair and interrupt counts through packed virtqueues: {@code packed=on}, the back-end offering
     * VIRTIO_F_RING_PACKED, the bit checked in the guest's negotiated features. QEMU 7.2's vhost-user-gpio cannot
     * do this with any back-end: it lets the guest negotiate bit 34 but acks to the back-end only the bits of its
     * own feature list, which lacks it, and then sends the packed base 0x80008000 for what is a split ring to the
     * back-end. The back-end must refuse that SET_VRING_BASE and stay up; the guest's driver then waits for ever in
     * its probe, so that run is cut short by the guest timeout.
     */
    @ParameterizedTest
    @EnumSource(Qemu.class)
    void theWiredPairWorksThroughPackedRingsAndQemu72IsRefusedCleanly(Qemu qemu) throws Exception {
        Path socket = dir.resolve("gpio.sock");
        try (DeviceProcess backend = DeviceProcess.start(socket, "--socket-path", socket.toString(),
                "--device-list", "s8")) {
            GuestBench.GuestSpec spec = GuestBench.guest(qemu)
                    .vhostUser("gpio", socket, "packed=on")
                    .command(PACKED_BITS + SETUP + VALUES + INTERRUPTS);
            if (qemu == Qemu.QEMU_7_2) {
                GuestResult result = spec.timeoutSeconds(90).run();
                String all = result.describe() + "\n--- back-end\n" + backend.log();
                assertTrue(backend.log().contains("SET_VRING_BASE refused: vring 0: base 0x80008000"), all);
                assertTrue(backend.isAlive(), all);
                return;
            }
            GuestResult result = spec.run();
            String all = result.describe() + "\n--- back-end\n" + backend.log();
            assertEquals(0, result.status(), all);
            assertEquals("1", result.value("packed"), "the guest negotiated VIRTIO_F_RING_PACKED: " + all);
            assertValues(result, all);
            assertInterrupts(result, all);
            assertEquals("0", result.value("warnings"), all);
            assertTrue(backend.isAlive(), backend.log());
            assertFalse(backend.log().contains("WARN") || backend.log().contains("ERROR"), backend.log());
        }
    }

    @Test
    void threeGuestsInARowOnOneDaemonEachGetAFreshChipWithWorkingInterrupts() throws Exception {
        Path socket = dir.resolve("gpio.sock");
        try (DeviceProcess backend = DeviceProcess.start(socket, "-s", socket.toString(), "-l", "s8",
                "--no-packed-ring")) {
            for (int guest = 1; guest <= 3; guest++) {
                // The previous guest left line 0 driving low and line 1 an input: a fresh chip has inputs only.
                GpioGuestResult run = new GpioGuestResult(GuestBench.guest(Qemu.QEMU_10)
                        .vhostUser("gpio", socket)
                        .command(SETUP + VALUES + INTERRUPTS)
                        .run(), backend);
                assertEquals(0, run.result.status(), "guest " + guest + ": " + run.all);
                assertValues(run.result, "guest " + guest + ": " + run.all);
                assertInterrupts(run.result, "guest " + guest + ": " + run.all);
                assertTrue(backend.isAlive(), backend.log());
            }
            assertFalse(backend.log().contains("WARN") || backend.log().contains("ERROR"), backend.log());
        }
    }

    private record GpioGuestResult(GuestResult result, String all) {
        GpioGuestResult(GuestResult result, DeviceProcess backend) {
            this(result, result.describe() + "\n--- back-end\n" + backend.log());
        }
    }

    private static void assertValues(GuestResult result, String all) {
        assertEquals("8", result.value("ngpio"), all);
        assertEquals("sim-0 sim-1 sim-2 sim-3 sim-4 sim-5 sim-6 sim-7", result.value("names").strip(), all);
        assertEquals("in 0", result.value("start"), "every line starts as an input reading 0: " + all);
        assertEquals("1", result.value("high"), all);
        assertEquals("0", result.value("low"), all);
        assertEquals("1 out", result.value("swapped_high"), all);
        assertEquals("0", result.value("swapped_low"), all);
    }

    private static void assertInterrupts(GuestResult result, String all) {
        assertEquals("6", result.value("toggles"), "one interrupt per toggle with edge=both: " + all);
        assertEquals("0", result.value("after_none"), all);
        assertEquals("1", result.value("rising"), "rising: one for 0 -> 1, none for 1 -> 0: " + all);
    }
}
