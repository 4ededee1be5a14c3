package dev.vhostdevice.gpio;

import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.readable;
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.writable;

import dev.vhostdevice.vhostuser.device.EmbeddedDeviceHost;
import dev.vhostdevice.vhostuser.sys.EpollEvents;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.SplitQueue;
import dev.vhostdevice.virtqueue.VirtioRing;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.testing.DriverQueue;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Used;
import java.lang.foreign.Arena;
import java.util.HashMap;
import java.util.Map;

/**
 * A gpio device driven in-process as a guest driver would: both queues in real guest memory
 * ({@link DriverQueue}), run by an {@link EmbeddedDeviceHost} whose fd watching is a real epoll set, so the
 * device's interrupts travel through eventfds and epoll exactly as under the vhost-user worker. Readiness is
 * delivered only by {@link #pump()}: a test sees what is decided on the worker's next wake-up, and when.
 */
final class GpioHarness implements AutoCloseable {
    static final int QUEUE_SIZE = 64;
    private static final long REQUEST_RING = 0x1000;
    private static final long EVENT_RING = 0x10000;
    private static final long F_VERSION_1 = 1L << VirtioRing.VIRTIO_F_VERSION_1;

    /** A request as the driver built it: where its response lives. */
    record Request(int head, long response, int length) {
    }

    final GpioDevice device;
    final DriverQueue requests;
    final DriverQueue events;
    final EmbeddedDeviceHost host;
    private final GuestMemory memory;
    private final Linux linux = Linux.system();
    private final int epollFd;
    private final Arena arena = Arena.ofConfined();
    private final EpollEvents ready = new EpollEvents(64, arena);
    /** fd → events it is watched for, as the device asked. */
    final Map<Integer, Integer> watched = new HashMap<>();
    private long nextBuffer = 0x40000;

    GpioHarness(GpioChip chip) throws Exception {
        this(chip, true);
    }

    GpioHarness(GpioChip chip, boolean irqFeature) throws Exception {
        memory = GuestMemory.allocate(0, 4 << 20);
        requests = DriverQueue.layout(memory, QUEUE_SIZE, REQUEST_RING);
        events = DriverQueue.layout(memory, QUEUE_SIZE, EVENT_RING);
        SplitQueue requestQueue = new SplitQueue("gpio-requests", GpioDevice.MAX_QUEUE_SIZE);
        SplitQueue eventQueue = new SplitQueue("gpio-events", GpioDevice.MAX_QUEUE_SIZE);
        requests.configure(requestQueue);
        events.configure(eventQueue);
        requestQueue.activate(memory);
        eventQueue.activate(memory);
        epollFd = linux.epollCreate();
        device = new GpioDevice(chip);
        host = new EmbeddedDeviceHost(device, new SplitQueue[] {requestQueue, eventQueue}, q -> { }, null,
                new EmbeddedDeviceHost.FdWatcher() {
                    @Override
                    public void watch(int fd, int eventMask, int token) {
                        epoll(() -> linux.epollAdd(epollFd, fd, eventMask, token));
                        watched.put(fd, eventMask);
                    }

                    @Override
                    public void change(int fd, int eventMask, int token) {
                        epoll(() -> linux.epollModify(epollFd, fd, eventMask, token));
                        watched.put(fd, eventMask);
                    }

                    @Override
                    public void unwatch(int fd) {
                        epoll(() -> linux.epollDelete(epollFd, fd));
                        watched.remove(fd);
                    }
                });
        host.setFeatures(F_VERSION_1 | (irqFeature ? 1L << GpioDevice.VIRTIO_GPIO_F_IRQ : 0));
    }

    private interface EpollCall {
        void run() throws ErrnoException;
    }

    private static void epoll(EpollCall call) {
        try {
            call.run();
        } catch (ErrnoException e) {
            throw new IllegalStateException(e.getMessage(), e);
        }
    }

    /** Delivers the readiness of watched fds, as the worker's epoll loop would; returns the events delivered. */
    int pump() throws ErrnoException {
        int delivered = 0;
        int n;
        while ((n = linux.epollWait(epollFd, ready, 0)) > 0) {
            for (int i = 0; i < n; i++) {
                host.hostFdReady((int) ready.data(i), ready.events(i));
            }
            delivered += n;
            if (delivered > 10_000) {
                throw new AssertionError("a watched fd stays ready: the worker would spin");
            }
        }
        return delivered;
    }

    long buffer(int length) {
        long at = nextBuffer;
        nextBuffer += (length + 15) & ~15L;
        return at;
    }

    /** Queues {@code virtio_gpio_request} with a response buffer of {@code responseLength} bytes (0xee-filled). */
    Request queue(int type, int line, long value, int responseLength) {
        long header = buffer(GpioDevice.REQUEST_SIZE);
        requests.write(header, new byte[] {(byte) type, (byte) (type >>> 8), (byte) line, (byte) (line >>> 8),
                (byte) value, (byte) (value >>> 8), (byte) (value >>> 16), (byte) (value >>> 24)});
        long response = buffer(responseLength);
        requests.write(response, filled(responseLength));
        return new Request(requests.add(readable(header, GpioDevice.REQUEST_SIZE), writable(response,
                responseLength)), response, responseLength);
    }

    static byte[] filled(int length) {
        byte[] bytes = new byte[length];
        java.util.Arrays.fill(bytes, (byte) 0xee);
        return bytes;
    }

    /** Sends one request and returns its used entry. */
    Used send(int type, int line, long value, int responseLength) {
        Request r = queue(type, line, value, responseLength);
        host.kick(GpioDevice.REQUEST_QUEUE);
        Used used = requests.pollUsed();
        if (used == null || used.head() != r.head()) {
            throw new AssertionError("request " + type + " not completed at once: " + used);
        }
        last = r;
        return used;
    }

    private Request last;

    /** The response bytes of the last {@link #send}. */
    byte[] response() {
        return requests.read(last.response(), last.length());
    }

    /** Status and value of a two-byte request; -1 for the value when the status is not OK. */
    int[] call(int type, int line, long value) {
        Used used = send(type, line, value, GpioDevice.RESPONSE_SIZE);
        byte[] r = response();
        return new int[] {r[0], used.length() == 2 ? r[1] & 0xFF : -1};
    }

    /** A request that must succeed; its value byte. */
    int ok(int type, int line, long value) {
        int[] r = call(type, line, value);
        if (r[0] != GpioDevice.VIRTIO_GPIO_STATUS_OK) {
            throw new AssertionError("request " + type + " line " + line + " value " + value + " failed");
        }
        return r[1];
    }

    /** An event buffer for {@code line}: where its status byte lives. */
    record IrqBuffer(int head, long status) {
    }

    IrqBuffer irq(int line) {
        long request = buffer(2);
        events.write(request, new byte[] {(byte) line, (byte) (line >>> 8)});
        long status = buffer(1);
        events.write(status, new byte[] {(byte) 0xee});
        IrqBuffer b = new IrqBuffer(events.add(readable(request, 2), writable(status, 1)), status);
        host.kick(GpioDevice.EVENT_QUEUE);
        return b;
    }

    IrqBuffer irq(Buffer... buffers) {
        int head = events.add(buffers);
        host.kick(GpioDevice.EVENT_QUEUE);
        return new IrqBuffer(head, -1);
    }

    /** The status of a completed event buffer (and that it was the next used entry, with length 1). */
    int completed(IrqBuffer b) {
        Used used = events.pollUsed();
        if (used == null) {
            return -1;
        }
        if (used.head() != b.head() || used.length() != 1) {
            throw new AssertionError("expected head " + b.head() + " with length 1, got " + used);
        }
        return events.read(b.status(), 1)[0];
    }

    /** Whether no event buffer has completed. */
    boolean noIrqCompleted() {
        return events.pollUsed() == null;
    }

    @Override
    public void close() {
        host.close();
        linux.close(epollFd);
        arena.close();
        memory.close();
    }
}
