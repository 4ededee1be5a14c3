package dev.vhostdevice.vhostuser.engine;

import dev.vhostdevice.vhostuser.device.VirtioDevice;
import dev.vhostdevice.vhostuser.sys.Linux;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.foreign.Arena;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One SET_DEVICE_STATE_FD transfer, run on its own thread so the control socket stays responsive; the result
 * is what CHECK_DEVICE_STATE reports. Owns the fd and closes it at the end (EOF marks the end of a SAVE).
 *
 * <p>The front-end controls the other end of the fd, so the I/O never blocks for good: the fd is made
 * non-blocking and waited on in short polls ({@link FdStreams}). {@link #cancel} ends the transfer within one
 * poll slice, and a transfer whose fd moves no byte for {@link #STALL_TIMEOUT_MILLIS} fails on its own.
 */
final class DeviceStateTransfer {
    private static final Logger LOG = LoggerFactory.getLogger(DeviceStateTransfer.class);
    /**
     * How long the fd may refuse to move a single byte before the transfer fails. Generous: QEMU pumps the pipe
     * from its migration thread, which may pause for a while, but not for half a minute.
     */
    static final long STALL_TIMEOUT_MILLIS = 30_000;

    private final Thread thread;
    private volatile boolean ok;
    private volatile boolean cancelled;

    DeviceStateTransfer(Linux linux, VirtioDevice device, int fd, boolean save, String name) {
        this(linux, device, fd, save, name, STALL_TIMEOUT_MILLIS);
    }

    DeviceStateTransfer(Linux linux, VirtioDevice device, int fd, boolean save, String name, long stallMillis) {
        this.thread = Thread.ofPlatform().name(name + "-state-" + (save ? "save" : "load")).daemon(true).unstarted(() -> {
            try (Arena arena = Arena.ofConfined()) {
                linux.setNonBlocking(fd);
                if (save) {
                    OutputStream out = FdStreams.output(linux, fd, arena, () -> cancelled, stallMillis);
                    device.saveState(out);
                    out.flush();
                } else {
                    InputStream in = FdStreams.input(linux, fd, arena, () -> cancelled, stallMillis);
                    device.loadState(in);
                }
                ok = true;
            } catch (Exception e) {
                LOG.error("{}: device state {} failed: {}", name, save ? "save" : "load", e.toString());
            } finally {
                linux.close(fd);
            }
        });
    }

    void start() {
        thread.start();
    }

    boolean isRunning() {
        return thread.isAlive();
    }

    /** Waits for the transfer; true if it succeeded within {@code millis} (at least 1). */
    boolean await(long millis) {
        try {
            thread.join(Math.max(1, TimeUnit.MILLISECONDS.toMillis(millis)));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
        return !thread.isAlive() && ok;
    }

    /**
     * Makes a running transfer fail and waits until its thread has ended and closed the fd, so the caller may
     * close the device. Bounded by one poll slice plus whatever the device does between two reads or writes.
     */
    void cancel() {
        cancelled = true;
        boolean interrupted = false;
        while (thread.isAlive()) {
            try {
                thread.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
