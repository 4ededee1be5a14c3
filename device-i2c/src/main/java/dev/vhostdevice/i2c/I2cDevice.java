package dev.vhostdevice.i2c;

import dev.vhostdevice.vhostuser.device.DeviceContext;
import dev.vhostdevice.vhostuser.device.DeviceQueue;
import dev.vhostdevice.vhostuser.device.VirtioDevice;
import dev.vhostdevice.virtqueue.Chain;
import dev.vhostdevice.virtqueue.ChainReader;
import dev.vhostdevice.virtqueue.ChainWriter;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * virtio-i2c (virtio 1.2 §5.19, device id 34): one request queue. A request is a chain of
 * {@code virtio_i2c_out_hdr} (8 readable bytes: le16 address shifted left by one, le16 padding, le32 flags),
 * an optional buffer (readable for a write, writable for a read) and {@code virtio_i2c_in_hdr} (1 writable
 * status byte). Only byte counts are relied on, not descriptor boundaries (VERSION_1 implies any layout).
 *
 * <p>Groups: the driver sets VIRTIO_I2C_FLAGS_FAIL_NEXT on every request of a transfer but the last. Each group
 * runs as one bus transaction ({@link I2cAdapter#transfer}), never merged with another and never split, however
 * the kicks fall: the chains of an unfinished group are held until its last request arrives. A group is
 * all-or-nothing on the bus: if any request of it is refused (malformed, unknown address, another adapter, too
 * large) nothing of it is executed and every request of it gets VIRTIO_I2C_MSG_ERR, the later ones without being
 * looked at. A held group is failed (not executed) when the ring cannot take the rest of it, when the queue
 * stops, and when guest memory is replaced.
 *
 * <p>Used length: the bytes of the writable part, all written: a read's data (zeros on failure) and the status.
 * A chain with no writable byte cannot carry a status and completes with 0.
 *
 * <p>Allocation: a fixed pool of {@link I2cTransfer#MAX_MESSAGES} chains and one {@link I2cTransfer}; nothing
 * per request.
 */
public final class I2cDevice implements VirtioDevice {
    public static final int VIRTIO_ID_I2C_ADAPTER = 34;
    public static final int VIRTIO_I2C_F_ZERO_LENGTH_REQUEST = 0;
    public static final int VIRTIO_I2C_FLAGS_FAIL_NEXT = 1 << 0;
    public static final int VIRTIO_I2C_FLAGS_M_RD = 1 << 1;
    public static final int VIRTIO_I2C_MSG_OK = 0;
    public static final int VIRTIO_I2C_MSG_ERR = 1;
    public static final int OUT_HDR_SIZE = 8;
    public static final int IN_HDR_SIZE = 1;
    public static final int MAX_QUEUE_SIZE = 1024;
    /** Ring descriptors the smallest request takes without an indirect table: out_hdr and in_hdr. */
    private static final int MIN_DIRECT_DESCRIPTORS = 2;
    private static final int REQUEST_QUEUE = 0;
    /** Refusals logged in full before the log thins to one line in 1024. */
    private static final int LOGGED_IN_FULL = 16;
    private static final Logger LOG = LoggerFactory.getLogger(I2cDevice.class);

    /** Why a request got VIRTIO_I2C_MSG_ERR without reaching the bus. */
    enum Refusal {
        NO_HEADER("fewer than 8 device-readable bytes: no out_hdr", true),
        NO_STATUS("no device-writable byte for the status", true),
        BUFFER_BOTH_WAYS("buffers in both directions", true),
        WRITE_BUFFER_ON_READ("device-readable buffer on a read request", true),
        READ_BUFFER_ON_WRITE("device-writable buffer on a write request", true),
        TOO_LONG("message longer than " + I2cTransfer.MAX_MESSAGE_LENGTH + " bytes", true),
        BAD_ADDRESS("address field is not a 7-bit address shifted left by one", true),
        /** Bus scans probe every address: never logged. */
        UNKNOWN_ADDRESS("no client at this address", false),
        OTHER_ADAPTER("group spans two host adapters", true),
        GROUP_TOO_LARGE("group over " + I2cTransfer.MAX_MESSAGES + " requests or " + I2cTransfer.MAX_BYTES
                + " bytes", true),
        GROUP_STRANDED("group cannot be finished: the ring has no room for its next request", true);

        final String description;
        final boolean logged;

        Refusal(String description, boolean logged) {
            this.description = description;
            this.logged = logged;
        }
    }

    private final I2cBus bus;
    private final I2cTransfer transfer = new I2cTransfer();
    /** Chain pool: slots 0..heldCount-1 are the held group; a pop goes into slot heldCount. */
    private final Chain[] held = new Chain[I2cTransfer.MAX_MESSAGES];
    private int heldCount;
    private I2cAdapter groupAdapter;
    /** A refused group's remaining requests are failed unread until its last one. */
    private boolean discarding;
    /** Held chains below this index are completed: a completion loop that throws part way leaves the rest. */
    private int heldCompleted;
    private DeviceContext context;
    private long refusals;

    public I2cDevice(I2cBus bus) {
        this.bus = bus;
        for (int i = 0; i < held.length; i++) {
            held[i] = new Chain();
        }
    }

    @Override
    public int queueCount() {
        return 1;
    }

    @Override
    public int maxQueueSize() {
        return MAX_QUEUE_SIZE;
    }

    @Override
    public long deviceFeatures() {
        // The Linux driver refuses to probe without it. INDIRECT_DESC, which a two-message transfer needs on
        // QEMU's 4-entry queue, is offered by the engine.
        return 1L << VIRTIO_I2C_F_ZERO_LENGTH_REQUEST;
    }

    @Override
    public void attach(DeviceContext deviceContext) {
        context = deviceContext;
    }

    @Override
    public void handleQueue(DeviceQueue queue) {
        try {
            while (queue.pop(held[heldCount])) {
                accept(queue, held[heldCount]);
            }
            if (heldCount > 0 && stranded(queue)) {
                refused(Refusal.GROUP_STRANDED, held[heldCount - 1]);
                failHeld(queue);
            }
        } catch (RuntimeException e) {
            // The runner only finishes chains popped in this service call, so every held chain is failed here (it
            // skips those). Ones already completed are skipped (a second completion throws); a failure here must
            // not hide e.
            for (int i = heldCompleted; i < heldCount; i++) {
                try {
                    completeWithStatus(queue, held[i], VIRTIO_I2C_MSG_ERR);
                } catch (RuntimeException f) {
                    e.addSuppressed(f);
                    LOG.warn("i2c: could not fail held head {} after {}: {}", held[i].head(), e, f.toString());
                }
            }
            forgetGroup();
            throw e;
        }
    }

    private void accept(DeviceQueue queue, Chain chain) {
        if (!chain.isValid() || chain.readableBytes() < OUT_HDR_SIZE) {
            // The flags are unknown: it cannot be placed in a group. It ends (and fails) any held one.
            if (chain.isValid()) {
                refused(Refusal.NO_HEADER, chain); // the walker logs its own faults
            }
            failHeld(queue);
            discarding = false;
            completeWithStatus(queue, chain, VIRTIO_I2C_MSG_ERR);
            return;
        }
        ChainReader reader = chain.reader();
        int addressField = reader.readUnsignedShort();
        reader.skip(2); // padding
        int flags = reader.readInt();
        boolean failNext = (flags & VIRTIO_I2C_FLAGS_FAIL_NEXT) != 0;
        if (discarding) {
            discarding = failNext;
            completeWithStatus(queue, chain, VIRTIO_I2C_MSG_ERR);
            return;
        }
        boolean read = (flags & VIRTIO_I2C_FLAGS_M_RD) != 0;
        long writeLength = chain.readableBytes() - OUT_HDR_SIZE;
        long readLength = chain.writableBytes() - IN_HDR_SIZE;
        int address = addressField >>> 1;
        I2cAdapter adapter = bus.adapterFor(address);
        Refusal refusal = null;
        if (chain.writableBytes() < IN_HDR_SIZE) {
            refusal = Refusal.NO_STATUS;
        } else if (writeLength > 0 && readLength > 0) {
            refusal = Refusal.BUFFER_BOTH_WAYS;
        } else if (read && writeLength > 0) {
            refusal = Refusal.WRITE_BUFFER_ON_READ;
        } else if (!read && readLength > 0) {
            refusal = Refusal.READ_BUFFER_ON_WRITE;
        } else if ((read ? readLength : writeLength) > I2cTransfer.MAX_MESSAGE_LENGTH) {
            refusal = Refusal.TOO_LONG;
        } else if ((addressField & 1) != 0 || addressField > 0xFF) {
            refusal = Refusal.BAD_ADDRESS;
        } else if (adapter == null) {
            refusal = Refusal.UNKNOWN_ADDRESS;
        } else if (heldCount > 0 && adapter != groupAdapter) {
            refusal = Refusal.OTHER_ADAPTER;
        } else if (!transfer.fits((int) (read ? readLength : writeLength))) {
            refusal = Refusal.GROUP_TOO_LARGE;
        }
        if (refusal != null) {
            refused(refusal, chain);
            failHeld(queue);
            discarding = failNext;
            completeWithStatus(queue, chain, VIRTIO_I2C_MSG_ERR);
            return;
        }
        int length = (int) (read ? readLength : writeLength);
        int message = transfer.add(address, read, length);
        if (!read) {
            reader.read(transfer.data(), transfer.offset(message), length);
        }
        groupAdapter = adapter;
        heldCount++;
        if (!failNext) {
            execute(queue);
        } else if (heldCount == held.length) {
            refused(Refusal.GROUP_TOO_LARGE, chain);
            failHeld(queue);
            discarding = true;
        }
    }

    /**
     * Whether the driver cannot publish the held group's next request: every ring slot is held, or (without
     * indirect tables) too few descriptors are left. With INDIRECT_DESC negotiated each request is assumed to
     * take one descriptor, as the Linux driver's are.
     */
    private boolean stranded(DeviceQueue queue) {
        int size = queue.queue().size();
        if (heldCount >= size) {
            return true;
        }
        if (queue.queue().indirectAllowed()) {
            return false;
        }
        int descriptors = 0;
        for (int i = 0; i < heldCount; i++) {
            descriptors += held[i].descriptorCount();
        }
        return size - descriptors < MIN_DIRECT_DESCRIPTORS;
    }

    private void execute(DeviceQueue queue) {
        int status;
        try {
            status = groupAdapter.transfer(transfer) == I2cAdapter.OK ? VIRTIO_I2C_MSG_OK : VIRTIO_I2C_MSG_ERR;
        } catch (RuntimeException e) {
            LOG.error("i2c: {} failed on {}: {}", groupAdapter.describe(), transfer, e.toString(), e);
            status = VIRTIO_I2C_MSG_ERR;
        }
        for (int i = heldCompleted; i < heldCount; i++) {
            Chain chain = held[i];
            if (status == VIRTIO_I2C_MSG_OK) {
                ChainWriter writer = chain.writer();
                if (transfer.isRead(i)) {
                    writer.write(transfer.data(), transfer.offset(i), transfer.length(i));
                }
                writer.writeByte(VIRTIO_I2C_MSG_OK);
                queue.complete(chain);
            } else {
                completeWithStatus(queue, chain, VIRTIO_I2C_MSG_ERR);
            }
            heldCompleted = i + 1;
        }
        forgetGroup();
    }

    /** Fails every held request (not executed) and forgets the group. */
    private void failHeld(DeviceQueue queue) {
        for (int i = heldCompleted; i < heldCount; i++) {
            completeWithStatus(queue, held[i], VIRTIO_I2C_MSG_ERR);
            heldCompleted = i + 1;
        }
        forgetGroup();
    }

    private void forgetGroup() {
        heldCount = 0;
        heldCompleted = 0;
        groupAdapter = null;
        transfer.clear();
    }

    /**
     * Completes {@code chain} with {@code status} in its last writable byte, the bytes before it zeroed (a
     * failed read returns no data). An out-of-spec buffer larger than any message is skipped, not zeroed.
     */
    private static void completeWithStatus(DeviceQueue queue, Chain chain, int status) {
        if (chain.isValid() && chain.writableBytes() >= IN_HDR_SIZE) {
            ChainWriter writer = chain.writer();
            long before = writer.size() - IN_HDR_SIZE;
            if (before <= I2cTransfer.MAX_MESSAGE_LENGTH) {
                writer.fill((byte) 0, before);
            } else {
                writer.seek(before);
            }
            writer.writeByte(status);
        }
        queue.complete(chain);
    }

    private void refused(Refusal refusal, Chain chain) {
        if (!refusal.logged) {
            return;
        }
        refusals++;
        if (refusals <= LOGGED_IN_FULL || (refusals & 1023) == 0) {
            LOG.warn("i2c: request at head {} failed: {} ({} refused so far; the device carries on)", chain.head(),
                    refusal.description, refusals);
        }
    }

    @Override
    public void queueStopping(DeviceQueue queue) {
        if (heldCount > 0) {
            LOG.info("i2c: queue stopping with {} request(s) of an unfinished group; failing them", heldCount);
            failHeld(queue);
        }
        discarding = false;
    }

    @Override
    public void memoryChanged(GuestMemory memory) {
        if (heldCount == 0) {
            return;
        }
        // Held chains point into the old mapping, which is released once this returns.
        DeviceQueue queue = context.queue(REQUEST_QUEUE);
        if (queue.isReady()) {
            LOG.info("i2c: guest memory replaced with {} request(s) of an unfinished group held; failing them",
                    heldCount);
            failHeld(queue);
        } else {
            LOG.warn("i2c: guest memory replaced while the queue is parked; {} held request(s) dropped", heldCount);
            forgetGroup();
        }
        discarding = false;
    }

    @Override
    public void reset() {
        forgetGroup();
        discarding = false;
    }

    @Override
    public void close() {
        transfer.close();
    }
}
