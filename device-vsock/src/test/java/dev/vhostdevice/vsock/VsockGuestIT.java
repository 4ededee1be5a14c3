package dev.vhostdevice.vsock;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.guest.DeviceProcess;
import dev.vhostdevice.vhostuser.guest.GuestBench;
import dev.vhostdevice.vhostuser.guest.GuestBench.Qemu;
import dev.vhostdevice.vhostuser.guest.GuestResult;
import dev.vhostdevice.vhostuser.guest.RunningGuest;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Real Linux guests under QEMU 7.2 and QEMU 10 (TCG) talk through vhost-device-vsock.jar, run as a user runs it,
 * with the static guest program {@code vsock-xfer} (bench/tools/vsock-xfer.c) on the guest side and real Unix
 * sockets on the host side. Every transferred byte is checked on the receiving side. The rings are split (the
 * daemon runs with {@code --no-packed-ring}: QEMU 10 would take the packed layout from the back-end's offer)
 * except in the packed test, where the -device has {@code packed=on}.
 */
class VsockGuestIT {
    private static final int MIB16 = 16 << 20;

    /** Prints the guest's view of bit 34 (VIRTIO_F_RING_PACKED) for each virtio device of id $1 (19 = vsock). */
    private static final String PACKED_BITS = """
            packed_bits() {
              for d in /sys/bus/virtio/devices/*; do
                [ "$(cat "$d/device")" = "$1" ] && printf '%s' "$(cut -c35 "$d/features")"
              done
              echo
            }
            echo "packed=$(packed_bits 0x0013)"
            """;

    @TempDir
    Path dir;

    private final ExecutorService host = Executors.newCachedThreadPool();

    @AfterEach
    void stopHost() throws InterruptedException {
        host.shutdownNow();
        host.awaitTermination(10, TimeUnit.SECONDS);
    }

    private Path uds(String name) {
        return dir.resolve(name);
    }

    /** The host end of port {@code port}: accepts one connection and runs {@code action} on it. */
    private <T> Future<T> serve(Path uds, int port, int type, HostAction<T> action) throws Exception {
        int listener = UnixPeer.listen(Path.of(uds + "_" + port), type);
        return host.submit(() -> {
            try (UnixPeer peer = UnixPeer.accept(listener, 170_000)) {
                return action.run(peer);
            } finally {
                UnixPeer.SOCKETS.close(listener);
            }
        });
    }

    @FunctionalInterface
    private interface HostAction<T> {
        T run(UnixPeer peer) throws Exception;
    }

    @ParameterizedTest
    @EnumSource(Qemu.class)
    void aGuestMovesSixteenMebibytesEachWayAndEveryOtherScenarioHolds(Qemu qemu) throws Exception {
        Path socket = dir.resolve("vsock.sock");
        Path uds = uds("vm3.vsock");
        try (DeviceProcess backend = DeviceProcess.start(socket, "--vm",
                "guest-cid=3,socket=" + socket + ",uds-path=" + uds, "--no-packed-ring")) {
            Future<Long> toHost = serve(uds, 5000, HostSockets.SOCK_STREAM, peer -> {
                long got = peer.readPatternToEnd();
                peer.writeText("ok " + got + "\n");
                return got;
            });
            Future<Void> toGuest = serve(uds, 5001, HostSockets.SOCK_STREAM, peer -> {
                peer.writePattern(MIB16);
                return null;
            });
            // Half-close: the host sees the guest's EOF, then still answers, then closes.
            Future<Long> halfClose = serve(uds, 5002, HostSockets.SOCK_STREAM, peer -> {
                long got = peer.readPatternToEnd();
                peer.writePattern(50_000);
                return got;
            });
            // SEQPACKET: each message echoed as it came.
            Future<List<Integer>> seqpacket = serve(uds, 5003, HostSockets.SOCK_SEQPACKET, peer -> {
                List<Integer> sizes = new ArrayList<>();
                for (int m = 0; m < 7; m++) {
                    byte[] message = peer.read(1 << 17);
                    sizes.add(message.length);
                    peer.write(message);
                }
                return sizes;
            });
            RunningGuest guest = GuestBench.guest(qemu)
                    .vhostUser("vsock", socket)
                    .timeoutSeconds(170)
                    .command(PACKED_BITS + """
                            vsock-xfer send 2 5000 16777216 || exit 1
                            vsock-xfer recv 2 5001 16777216 || exit 2
                            vsock-xfer refused 2 5999 || exit 3
                            vsock-xfer halfclose 2 5002 || exit 4
                            vsock-xfer seqpacket 2 5003 || exit 5
                            vsock-xfer serve 6000 1048576 || exit 6
                            """)
                    .start();
            // Host-initiated: a guest port nobody listens on is closed without OK; then one that listens gets
            // OK and the bytes sent in the same write as the CONNECT line.
            assertTrue(guest.awaitConsole("listening=6000", Duration.ofSeconds(170)), "guest never listened");
            try (UnixPeer refused = UnixPeer.connect(uds, HostSockets.SOCK_STREAM)) {
                refused.writeText("CONNECT 6001\n");
                assertNull(refused.readLine(), "a guest port without listener must close the socket without OK");
            }
            String ok;
            String reply;
            try (UnixPeer peer = UnixPeer.connect(uds, HostSockets.SOCK_STREAM)) {
                byte[] first = UnixPeer.pattern(0, 1000);
                byte[] line = "CONNECT 6000\n".getBytes();
                byte[] both = new byte[line.length + first.length];
                System.arraycopy(line, 0, both, 0, line.length);
                System.arraycopy(first, 0, both, line.length, first.length);
                peer.write(both);
                ok = peer.readLine();
                for (long off = 1000; off < 1 << 20; off += 65536) {
                    peer.write(UnixPeer.pattern(off, (int) Math.min(65536, (1 << 20) - off)));
                }
                peer.shutdownOutput();
                reply = peer.readLine();
            }
            GuestResult result = guest.awaitResult();
            String log = result.describe() + "\n--- back-end\n" + backend.log();
            assertEquals(0, result.status(), log);
            assertEquals("0", result.value("packed"), "split rings: " + log);
            assertTrue(ok != null && ok.matches("OK \\d+"), "OK line: " + ok + "\n" + log);
            assertEquals("ok 1048576", reply, log);
            assertEquals(MIB16, toHost.get(10, TimeUnit.SECONDS), log);
            assertEquals("ok 16777216", result.value("reply"), log);
            assertEquals(Integer.toString(MIB16), result.value("recv_bytes"), log);
            assertEquals("ECONNRESET", result.value("refused_errno"), log);
            assertTrue(Double.parseDouble(result.value("refused_ms")) < 1000, "a refused connect is fast: " + log);
            assertEquals(100_000L, halfClose.get(10, TimeUnit.SECONDS), log);
            assertEquals("50000", result.value("halfclose_reply_bytes"), log);
            assertEquals(List.of(1, 100, 3000, 3733, 20000, 65536, 7), seqpacket.get(10, TimeUnit.SECONDS), log);
            assertEquals("7", result.value("seqpacket_messages"), log);
            toGuest.get(10, TimeUnit.SECONDS);
            // A measurement, not an assertion: TCG timings vary with the machine's load.
            System.out.printf("%s: vsock 16 MiB guest->host %s MB/s (%s ms), host->guest %s MB/s (%s ms)%n", qemu,
                    result.value("send_mbps"), result.value("send_ms"), result.value("recv_mbps"),
                    result.value("recv_ms"));
            assertTrue(backend.isAlive(), backend.log());
        }
    }

    /**
     * 16 MiB each way through packed virtqueues: {@code packed=on}, the back-end offering VIRTIO_F_RING_PACKED,
     * the bit checked in the guest's negotiated features, every byte checked on the receiving side.
     */
    @ParameterizedTest
    @EnumSource(Qemu.class)
    void aGuestMovesSixteenMebibytesEachWayThroughPackedRings(Qemu qemu) throws Exception {
        Path socket = dir.resolve("vsock.sock");
        Path uds = uds("vm3.vsock");
        try (DeviceProcess backend = DeviceProcess.start(socket, "--vm",
                "guest-cid=3,socket=" + socket + ",uds-path=" + uds)) {
            Future<Long> toHost = serve(uds, 5000, HostSockets.SOCK_STREAM, peer -> {
                long got = peer.readPatternToEnd();
                peer.writeText("ok " + got + "\n");
                return got;
            });
            Future<Void> toGuest = serve(uds, 5001, HostSockets.SOCK_STREAM, peer -> {
                peer.writePattern(MIB16);
                return null;
            });
            GuestResult result = GuestBench.guest(qemu)
                    .vhostUser("vsock", socket, "packed=on")
                    .timeoutSeconds(170)
                    .command(PACKED_BITS + """
                            vsock-xfer send 2 5000 16777216 || exit 1
                            vsock-xfer recv 2 5001 16777216 || exit 2
                            """)
                    .run();
            String log = result.describe() + "\n--- back-end\n" + backend.log();
            assertEquals(0, result.status(), log);
            assertEquals("1", result.value("packed"), "the guest negotiated VIRTIO_F_RING_PACKED: " + log);
            assertEquals(MIB16, toHost.get(10, TimeUnit.SECONDS), log);
            assertEquals("ok 16777216", result.value("reply"), log);
            assertEquals(Integer.toString(MIB16), result.value("recv_bytes"), log);
            toGuest.get(10, TimeUnit.SECONDS);
            System.out.printf("%s: vsock packed 16 MiB guest->host %s MB/s (%s ms), host->guest %s MB/s (%s ms)%n",
                    qemu, result.value("send_mbps"), result.value("send_ms"), result.value("recv_mbps"),
                    result.value("recv_ms"));
            assertTrue(backend.isAlive(), backend.log());
        }
    }

    @ParameterizedTest
    @EnumSource(Qemu.class)
    void twoGuestsOfOneGroupTalkByCidAndAThirdOutsideIsRefused(Qemu qemu) throws Exception {
        Path[] sockets = {dir.resolve("a.sock"), dir.resolve("b.sock"), dir.resolve("c.sock")};
        try (DeviceProcess backend = DeviceProcess.start(sockets[2],
                "--vm", "guest-cid=3,socket=" + sockets[0] + ",uds-path=" + uds("a.vsock") + ",groups=team",
                "--vm", "guest-cid=4,socket=" + sockets[1] + ",uds-path=" + uds("b.vsock") + ",groups=other+team",
                "--vm", "guest-cid=5,socket=" + sockets[2] + ",uds-path=" + uds("c.vsock") + ",groups=other",
                "--no-packed-ring")) {
            RunningGuest a = GuestBench.guest(qemu).vhostUser("vsock", sockets[0]).timeoutSeconds(170)
                    .command("vsock-xfer serve 7000 4194304").start();
            assertTrue(a.awaitConsole("listening=7000", Duration.ofSeconds(170)), "guest A never listened");
            CompletableFuture<GuestResult> c = CompletableFuture.supplyAsync(() -> run(GuestBench.guest(qemu)
                    .vhostUser("vsock", sockets[2]).timeoutSeconds(170).command("vsock-xfer refused 3 7000")), host);
            GuestResult b = GuestBench.guest(qemu).vhostUser("vsock", sockets[1]).timeoutSeconds(170)
                    .command("vsock-xfer send 3 7000 4194304").run();
            GuestResult resultA = a.awaitResult();
            GuestResult resultC = c.get(200, TimeUnit.SECONDS);
            String log = "\n--- A\n" + resultA.describe() + "\n--- B\n" + b.describe() + "\n--- C\n"
                    + resultC.describe() + "\n--- back-end\n" + backend.log();
            assertEquals(0, resultA.status(), log);
            assertEquals(0, b.status(), log);
            assertEquals("4194304", resultA.value("serve_bytes"), log);
            assertEquals("ok 4194304", b.value("reply"), log);
            assertEquals(0, resultC.status(), log);
            assertEquals("ECONNRESET", resultC.value("refused_errno"), log);
            System.out.printf("%s: vsock sibling 4 MiB guest->guest %s MB/s%n", qemu, b.value("send_mbps"));
        }
    }

    private static GuestResult run(GuestBench.GuestSpec spec) {
        try {
            return spec.run();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
