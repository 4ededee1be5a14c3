package dev.vhostdevice.vhostuser.testkit;

import dev.vhostdevice.vhostuser.device.DeviceQueue;
import dev.vhostdevice.vhostuser.device.VirtioDevice;
import dev.vhostdevice.virtqueue.Chain;
import java.util.concurrent.atomic.AtomicInteger;

/** A test device: answers each chain with its readable bytes reversed. 8 bytes of config space, writable. */
public class EchoDevice implements VirtioDevice {
    public final AtomicInteger handled = new AtomicInteger();
    public final AtomicInteger resets = new AtomicInteger();
    private final Chain chain = new Chain();
    private final byte[] scratch = new byte[4096];
    public final byte[] config = {1, 2, 3, 4, 5, 6, 7, 8};

    @Override
    public int queueCount() {
        return 2;
    }

    @Override
    public int maxQueueSize() {
        return 256;
    }

    @Override
    public long deviceFeatures() {
        return 1;
    }

    @Override
    public int configSize() {
        return config.length;
    }

    @Override
    public void readConfig(int offset, byte[] destination) {
        System.arraycopy(config, offset, destination, 0, destination.length);
    }

    @Override
    public boolean writeConfig(int offset, byte[] data, boolean migration) {
        if (offset < 4 && !migration) {
            return false; // bytes 0-3 read-only
        }
        System.arraycopy(data, 0, config, offset, data.length);
        return true;
    }

    @Override
    public void handleQueue(DeviceQueue queue) {
        while (queue.pop(chain)) {
            if (chain.isValid()) {
                int n = (int) Math.min(chain.readableBytes(), scratch.length);
                chain.reader().read(scratch, 0, n);
                for (int i = 0; i < n / 2; i++) {
                    byte t = scratch[i];
                    scratch[i] = scratch[n - 1 - i];
                    scratch[n - 1 - i] = t;
                }
                chain.writer().write(scratch, 0, (int) Math.min(n, chain.writableBytes()));
            }
            queue.complete(chain);
            handled.incrementAndGet();
        }
    }

    @Override
    public void reset() {
        resets.incrementAndGet();
    }
}
