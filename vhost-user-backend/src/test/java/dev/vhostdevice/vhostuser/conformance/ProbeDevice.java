package dev.vhostdevice.vhostuser.conformance;

import dev.vhostdevice.vhostuser.device.DeviceContext;
import dev.vhostdevice.vhostuser.device.DeviceQueue;
import dev.vhostdevice.vhostuser.device.VirtioDevice;
import dev.vhostdevice.virtqueue.Chain;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The conformance suite's device: answers each chain with its readable bytes reversed (so a test sees the data
 * path end to end), and records what the engine told it. Two queues of up to 256, device feature bit 0, 8 bytes of
 * config space whose first 4 bytes are read-only.
 *
 * <p>Modes: {@link #hold} keeps popped chains in flight (completed at {@code queueStopping}, unless
 * {@link #crashOnStop} — a back-end that dies with requests in flight); a request reading {@code "config-change"}
 * makes it raise a config change before completing; with {@code state} it offers DEVICE_STATE and saves/loads
 * its config space (a load of anything but 8 bytes fails).
 */
final class ProbeDevice implements VirtioDevice {
    final AtomicInteger handled = new AtomicInteger();
    final AtomicInteger resets = new AtomicInteger();
    final AtomicInteger stops = new AtomicInteger();
    final AtomicInteger memoryChanges = new AtomicInteger();
    volatile long ackedFeatures = -1;
    volatile boolean hold;
    volatile boolean crashOnStop;
    volatile boolean closed;
    /** A state transfer touched the device after the engine closed it. */
    volatile boolean stateUsedAfterClose;
    final AtomicInteger held = new AtomicInteger();
    final byte[] config = {1, 2, 3, 4, 5, 6, 7, 8};
    private final boolean state;
    private final Deque<Chain> holding = new ArrayDeque<>();
    private final byte[] scratch = new byte[65536];
    private DeviceContext context;

    private final long protocolMask;

    ProbeDevice(boolean state) {
        this(state, -1L);
    }

    /** A device that lets the engine offer only the protocol features in {@code protocolMask}. */
    ProbeDevice(boolean state, long protocolMask) {
        this.state = state;
        this.protocolMask = protocolMask;
    }

    @Override
    public long protocolFeatures(long engineOffer) {
        return engineOffer & protocolMask;
    }

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
    public synchronized void readConfig(int offset, byte[] destination) {
        System.arraycopy(config, offset, destination, 0, destination.length);
    }

    @Override
    public synchronized boolean writeConfig(int offset, byte[] data, boolean migration) {
        if (offset < 4 && !migration) {
            return false;
        }
        System.arraycopy(data, 0, config, offset, data.length);
        return true;
    }

    @Override
    public void attach(DeviceContext ctx) {
        this.context = ctx;
    }

    @Override
    public void featuresAcked(long features) {
        ackedFeatures = features;
    }

    @Override
    public void handleQueue(DeviceQueue queue) {
        Chain chain = new Chain();
        while (queue.pop(chain)) {
            if (hold) {
                holding.add(chain);
                held.incrementAndGet();
                chain = new Chain();
                continue;
            }
            answer(queue, chain);
        }
    }

    private void answer(DeviceQueue queue, Chain chain) {
        if (chain.isValid()) {
            int n = (int) Math.min(chain.readableBytes(), scratch.length);
            chain.reader().read(scratch, 0, n);
            if (n == "config-change".length() && "config-change".equals(new String(scratch, 0, n,
                    java.nio.charset.StandardCharsets.ISO_8859_1))) {
                context.notifyConfigChanged();
            }
            for (int i = 0; i < n / 2; i++) {
                byte t = scratch[i];
                scratch[i] = scratch[n - 1 - i];
                scratch[n - 1 - i] = t;
            }
            chain.writer().write(scratch, 0, (int) Math.min(n, chain.writableBytes()));
        }
        handled.incrementAndGet(); // before the used entry: a front-end that sees it finds the count already up
        queue.complete(chain);
    }

    @Override
    public void queueStopping(DeviceQueue queue) {
        stops.incrementAndGet();
        if (crashOnStop) {
            return;
        }
        Chain c;
        while ((c = holding.poll()) != null) {
            answer(queue, c);
        }
    }

    @Override
    public void memoryChanged(GuestMemory memory) {
        memoryChanges.incrementAndGet();
    }

    @Override
    public void reset() {
        resets.incrementAndGet();
        holding.clear();
    }

    @Override
    public boolean supportsState() {
        return state;
    }

    @Override
    public synchronized void saveState(OutputStream out) throws IOException {
        out.write(config);
    }

    @Override
    public void close() {
        closed = true;
    }

    @Override
    public void loadState(InputStream in) throws IOException {
        byte[] all = in.readAllBytes();
        if (closed) {
            stateUsedAfterClose = true;
        }
        if (all.length != config.length) {
            throw new IOException("corrupt state: " + all.length + " bytes");
        }
        synchronized (this) {
            System.arraycopy(all, 0, config, 0, all.length);
        }
    }
}
