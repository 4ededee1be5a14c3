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
 */
final class DeviceStateTransfer {
    private static final Logger LOG = LoggerFactory.getLogger(DeviceStateTransfer.class);

    private final Thread thread;
    private volatile boolean ok;

    DeviceStateTransfer(Linux linux, VirtioDevice device, int fd, boolean save, String name) {
        this.thread = Thread.ofPlatform().name(name + "-state-" + (save ? "save" : "load")).daemon(true).unstarted(() -> {
            try (Arena arena = Arena.ofConfined()) {
                linux.setBlocking(fd);
                if (save) {
                    OutputStream out = FdStreams.output(linux, fd, arena);
                    device.saveState(out);
                    out.flush();
                } else {
                    InputStream in = FdStreams.input(linux, fd, arena);
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
}
