package dev.vhostdevice.rng;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.guest.DeviceProcess;
import dev.vhostdevice.vhostuser.guest.GuestBench;
import dev.vhostdevice.vhostuser.guest.GuestBench.Qemu;
import dev.vhostdevice.vhostuser.guest.GuestResult;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A real Linux guest under QEMU 7.2 and QEMU 10 reads /dev/hwrng through vhost-device-rng.jar, the way a user
 * runs it. Each test boots one or more guests under TCG (about 5 s each).
 */
class RngGuestIT {
    /** Reads N bytes of the current hwrng and reports count, seconds, rate and gzip size; fails if short. */
    private static final String READ_HWRNG = """
            read_hwrng() {
              t0=$(cut -d' ' -f1 /proc/uptime)
              head -c "$1" /dev/hwrng > /tmp/rng.bin
              t1=$(cut -d' ' -f1 /proc/uptime)
              bytes=$(wc -c < /tmp/rng.bin)
              gz=$(gzip -c /tmp/rng.bin | wc -c)
              awk -v p="$2" -v b="$bytes" -v g="$gz" -v a="$t0" -v z="$t1" 'BEGIN {
                s = z - a; printf "%s_bytes=%d\\n%s_gzip=%d\\n%s_kibps=%.0f\\n", p, b, p, g, p, (s > 0 ? b / 1024 / s : 0) }'
              [ "$bytes" -eq "$1" ]
            }
            """;

    /** Prints the guest's view of bit 34 (VIRTIO_F_RING_PACKED) for each virtio device of id $1 (4 = rng). */
    private static final String PACKED_BITS = """
            packed_bits() {
              for d in /sys/bus/virtio/devices/*; do
                [ "$(cat "$d/device")" = "$1" ] && printf '%s' "$(cut -c35 "$d/features")"
              done
              echo
            }
            """;

    @TempDir
    Path dir;

    /**
     * With QEMU's {@code packed=on} the guest drives a packed virtqueue (the back-end offers
     * VIRTIO_F_RING_PACKED): 1 MiB through it, the bit checked in the guest's negotiated features.
     */
    @ParameterizedTest
    @EnumSource(Qemu.class)
    void aGuestReadsAMebibyteThroughAPackedRing(Qemu qemu) throws Exception {
        Path socket = dir.resolve("rng.sock");
        try (DeviceProcess backend = DeviceProcess.start(socket, "--socket-path", socket.toString())) {
            GuestResult result = GuestBench.guest(qemu)
                    .vhostUser("rng", socket, "packed=on")
                    .command(READ_HWRNG + PACKED_BITS + """
                            echo "packed=$(packed_bits 0x0004)"
                            read_hwrng 1048576 packed || exit 1
                            """)
                    .run();
            String all = result.describe() + "\n--- back-end\n" + backend.log();
            assertEquals(0, result.status(), all);
            assertEquals("1", result.value("packed"), "the guest negotiated VIRTIO_F_RING_PACKED: " + all);
            assertEquals("1048576", result.value("packed_bytes"), all);
            assertTrue(Long.parseLong(result.value("packed_gzip")) > 1_040_000, all);
            assertTrue(backend.isAlive(), backend.log());
        }
    }

    /**
     * The guest bench's packed-versus-split figure: one guest, two back-ends, the first with
     * {@code --no-packed-ring}, the second plugged in with {@code packed=on}; each device reads 1 MiB, in turn,
     * twice. (QEMU 10's vhost-user-base devices take the ring layout from the back-end's offer, {@code packed=on}
     * or not, so only the switch keeps a ring split there.) A measurement (TCG timings vary with the load),
     * recorded in BENCHMARKS.md; the assertions are only that each layout served everything.
     */
    @ParameterizedTest
    @EnumSource(Qemu.class)
    void splitAndPackedRingsReadSideBySideInOneGuest(Qemu qemu) throws Exception {
        Path split = dir.resolve("split.sock");
        Path packed = dir.resolve("packed.sock");
        try (DeviceProcess splitBackend = DeviceProcess.start(split, "--socket-path", split.toString(),
                "--no-packed-ring");
             DeviceProcess backend = DeviceProcess.start(packed, "--socket-path", packed.toString())) {
            GuestResult result = GuestBench.guest(qemu)
                    .qemuArgs("-chardev", "socket,id=vusplit,path=" + split,
                            "-device", "vhost-user-rng-pci,chardev=vusplit,addr=0x10",
                            "-chardev", "socket,id=vupacked,path=" + packed,
                            "-device", "vhost-user-rng-pci,chardev=vupacked,addr=0x11,packed=on")
                    .command(READ_HWRNG + PACKED_BITS + """
                            echo "bits=$(packed_bits 0x0004)"
                            for round in 1 2; do
                              echo virtio_rng.0 > /sys/class/misc/hw_random/rng_current
                              read_hwrng 1048576 split$round || exit 1
                              echo virtio_rng.1 > /sys/class/misc/hw_random/rng_current
                              read_hwrng 1048576 packed$round || exit 2
                            done
                            """)
                    .run();
            String all = result.describe() + "\n--- back-ends\n" + splitBackend.log() + backend.log();
            assertEquals(0, result.status(), all);
            assertEquals("01", result.value("bits"), "split first, packed second: " + all);
            for (int round = 1; round <= 2; round++) {
                assertEquals("1048576", result.value("split" + round + "_bytes"), all);
                assertEquals("1048576", result.value("packed" + round + "_bytes"), all);
                System.out.printf("%s: round %d hwrng read rate: split %s KiB/s, packed %s KiB/s%n", qemu, round,
                        result.value("split" + round + "_kibps"), result.value("packed" + round + "_kibps"));
            }
            assertTrue(splitBackend.isAlive() && backend.isAlive(), all);
        }
    }

    @ParameterizedTest
    @EnumSource(Qemu.class)
    void aGuestReadsAMebibyteOfRandomBytesThroughOurDeviceAndThroughQemusOwn(Qemu qemu) throws Exception {
        Path socket = dir.resolve("rng.sock");
        // Split rings here (QEMU 10 would take the packed layout from the offer); packed: the test above.
        try (DeviceProcess backend = DeviceProcess.start(socket, "--socket-path", socket.toString(),
                "--no-packed-ring")) {
            // Explicit PCI slots: ours (0x10) is probed before QEMU's built-in device (0x11), so it is virtio_rng.0.
            GuestResult result = GuestBench.guest(qemu)
                    .qemuArgs("-chardev", "socket,id=vurng,path=" + socket,
                            "-device", "vhost-user-rng-pci,chardev=vurng,addr=0x10",
                            "-device", "virtio-rng-pci,addr=0x11")
                    .command(READ_HWRNG + """
                            echo "available=$(cat /sys/class/misc/hw_random/rng_available)"
                            echo virtio_rng.0 > /sys/class/misc/hw_random/rng_current
                            read_hwrng 1048576 ours || exit 1
                            echo virtio_rng.1 > /sys/class/misc/hw_random/rng_current
                            read_hwrng 1048576 builtin || exit 2
                            """)
                    .run();
            assertEquals(0, result.status(), result.describe());
            assertEquals("1048576", result.value("ours_bytes"), result.describe());
            assertTrue(Long.parseLong(result.value("ours_gzip")) > 1_040_000,
                    "random bytes do not compress: " + result.describe());
            double ours = Double.parseDouble(result.value("ours_kibps"));
            double builtin = Double.parseDouble(result.value("builtin_kibps"));
            // A measurement, not an assertion: TCG timings vary with the machine's load.
            System.out.printf("%s: hwrng read rate: vhost-device-rng %.0f KiB/s, QEMU virtio-rng-pci %.0f KiB/s,"
                    + " ratio %.2f%n", qemu, ours, builtin, builtin > 0 ? ours / builtin : 0);
            assertTrue(backend.isAlive(), backend.log());
        }
    }

    @ParameterizedTest
    @EnumSource(Qemu.class)
    void theGuestDriverCanBeUnloadedAndLoadedAgain(Qemu qemu) throws Exception {
        Path socket = dir.resolve("rng.sock");
        try (DeviceProcess backend = DeviceProcess.start(socket, "--socket-path", socket.toString())) {
            GuestResult result = GuestBench.guest(qemu)
                    .vhostUser("rng", socket)
                    .command(READ_HWRNG + """
                            read_hwrng 65536 first || exit 1
                            rmmod virtio_rng || exit 2
                            modprobe virtio_rng || exit 3
                            sleep 1
                            read_hwrng 65536 again || exit 4
                            """)
                    .run();
            assertEquals(0, result.status(), result.describe() + "\n--- back-end\n" + backend.log());
            assertEquals("65536", result.value("again_bytes"), result.describe());
        }
    }

    @ParameterizedTest
    @EnumSource(Qemu.class)
    void guestsBootedOneAfterAnotherAreServedByOneBackEnd(Qemu qemu) throws Exception {
        Path socket = dir.resolve("rng.sock");
        try (DeviceProcess backend = DeviceProcess.start(socket, "--socket-path", socket.toString())) {
            for (int guest = 0; guest < 3; guest++) {
                GuestResult result = GuestBench.guest(qemu)
                        .vhostUser("rng", socket)
                        .command(READ_HWRNG + "read_hwrng 65536 guest || exit 1\n")
                        .run();
                assertEquals(0, result.status(), "guest " + guest + ": " + result.describe() + "\n--- back-end\n"
                        + backend.log());
            }
            assertTrue(backend.isAlive());
        }
    }

    /**
     * Reconnecting (QEMU's {@code reconnect=1}, {@code reconnect-ms} in QEMU 10) is not supported by the
     * vhost-user-rng front-end of either QEMU on the bench: with reconnect the chardev connects asynchronously and
     * the device's realize sends its first message before the connection exists. QEMU 7.2 then aborts on an
     * assertion in its error path; QEMU 10.0.2 refuses to start. Pinned here (with a back-end listening), so the
     * day a front-end gains reconnect support this test fails and the kill-and-restart test can be enabled for it.
     * What our side needs for reconnects (a fresh device per connection, the next front-end accepted) is covered
     * by {@link #guestsBootedOneAfterAnotherAreServedByOneBackEnd} and the engine's own tests.
     */
    @ParameterizedTest
    @EnumSource(Qemu.class)
    void neitherQemuCanReconnectItsVhostUserRng(Qemu qemu) throws Exception {
        Path socket = dir.resolve("rng.sock");
        try (DeviceProcess backend = DeviceProcess.start(socket, "--socket-path", socket.toString())) {
            GuestResult result = GuestBench.guest(qemu)
                    .vhostUser("rng", socket)
                    .reconnect(1)
                    .timeoutSeconds(60)
                    .command("head -c 4096 /dev/hwrng | wc -c")
                    .run();
            assertEquals(125, result.status(), "QEMU started a reconnecting vhost-user-rng: " + result.describe());
            String expected = qemu == Qemu.QEMU_7_2
                    ? "error_setv: Assertion `*errp == NULL' failed"
                    : "vhost_backend_init failed: Protocol error";
            assertTrue(result.summary().contains(expected) || result.console().contains(expected)
                    || result.output().contains(expected), result.describe());
            assertTrue(backend.isAlive(), "the back-end survives the front-end's failure: " + backend.log());
        }
    }
}
