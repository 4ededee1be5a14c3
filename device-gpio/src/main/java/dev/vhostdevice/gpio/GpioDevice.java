package dev.vhostdevice.gpio;

import dev.vhostdevice.vhostuser.device.DeviceContext;
import dev.vhostdevice.vhostuser.device.DeviceQueue;
import dev.vhostdevice.vhostuser.device.VirtioDevice;
import dev.vhostdevice.virtqueue.Chain;
import dev.vhostdevice.virtqueue.ChainReader;
import dev.vhostdevice.virtqueue.ChainWriter;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import java.nio.charset.StandardCharsets;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * virtio-gpio (virtio 1.2 §5.18, device id 41): a request queue and, with VIRTIO_GPIO_F_IRQ, an event queue.
 *
 * <p>Request queue: each chain carries {@code virtio_gpio_request} (8 readable bytes: le16 type, le16 gpio,
 * le32 value) and a writable response: a status byte and one value byte, or for GET_LINE_NAMES the status and
 * the {@code gpio_names_size}-byte names block. Only byte counts are relied on, not descriptor boundaries. A
 * request that is malformed, names a line that does not exist, carries an invalid value, or offers a response of
 * the wrong size gets VIRTIO_GPIO_STATUS_ERR (and a zero byte where there is room: used length 2, or 1 into a
 * one-byte buffer); a chain with no writable byte, or a faulty one, completes with length 0. The device carries
 * on after each.
 *
 * <p>Event queue: each chain carries {@code virtio_gpio_irq_request} (le16 gpio) and a one-byte writable
 * {@code virtio_gpio_irq_response}. A buffer for a line with its irq enabled waits (held by the device) until the
 * line has an interrupt, then completes VALID; a buffer for a line with irq NONE, a second buffer for the same
 * line, or a malformed one completes INVALID at once. Disabling the irq, SET_DIRECTION NONE, the queue stopping
 * and a memory change return the waiting buffers INVALID at once. An edge while no buffer waits is latched (like
 * an edge-triggered controller's pending bit): the next buffer for the line completes VALID at once, and later
 * edges up to then are coalesced into it. Level types complete while the level holds.
 *
 * <p>Allocation: the chains that may wait are a pool of one per line plus one, allocated up front; nothing per
 * request.
 */
public final class GpioDevice implements VirtioDevice {
    public static final int VIRTIO_ID_GPIO = 41;
    public static final int VIRTIO_GPIO_F_IRQ = 0;

    public static final int VIRTIO_GPIO_MSG_GET_LINE_NAMES = 0x0001;
    public static final int VIRTIO_GPIO_MSG_GET_DIRECTION = 0x0002;
    public static final int VIRTIO_GPIO_MSG_SET_DIRECTION = 0x0003;
    public static final int VIRTIO_GPIO_MSG_GET_VALUE = 0x0004;
    public static final int VIRTIO_GPIO_MSG_SET_VALUE = 0x0005;
    public static final int VIRTIO_GPIO_MSG_IRQ_TYPE = 0x0006;

    public static final int VIRTIO_GPIO_STATUS_OK = 0;
    public static final int VIRTIO_GPIO_STATUS_ERR = 1;

    public static final int VIRTIO_GPIO_DIRECTION_NONE = 0;
    public static final int VIRTIO_GPIO_DIRECTION_OUT = 1;
    public static final int VIRTIO_GPIO_DIRECTION_IN = 2;

    public static final int VIRTIO_GPIO_IRQ_TYPE_NONE = 0;
    public static final int VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING = 1;
    public static final int VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING = 2;
    public static final int VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH = 3;
    public static final int VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH = 4;
    public static final int VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW = 8;

    public static final int VIRTIO_GPIO_IRQ_STATUS_INVALID = 0;
    public static final int VIRTIO_GPIO_IRQ_STATUS_VALID = 1;

    /** {@code struct virtio_gpio_config}: le16 ngpio, le16 padding, le32 gpio_names_size. */
    public static final int CONFIG_SIZE = 8;
    public static final int REQUEST_SIZE = 8;
    /** Status and value byte. */
    public static final int RESPONSE_SIZE = 2;
    public static final int IRQ_REQUEST_SIZE = 2;
    public static final int IRQ_RESPONSE_SIZE = 1;
    public static final int MAX_QUEUE_SIZE = 1024;
    public static final int REQUEST_QUEUE = 0;
    public static final int EVENT_QUEUE = 1;
    /** Refusals logged in full before the log thins to one line in 1024. */
    private static final int LOGGED_IN_FULL = 16;
    private static final Logger LOG = LoggerFactory.getLogger(GpioDevice.class);

    /** Why a request got VIRTIO_GPIO_STATUS_ERR (or an irq buffer INVALID) without reaching the chip. */
    enum Refusal {
        FAULTY_CHAIN("malformed descriptor chain"),
        NO_RESPONSE("no device-writable byte for the status"),
        WRONG_REQUEST_SIZE("request is not " + GpioDevice.REQUEST_SIZE + " device-readable bytes"),
        WRONG_RESPONSE_SIZE("response buffer has the wrong size for the request"),
        UNKNOWN_TYPE("unknown request type"),
        NO_SUCH_LINE("line number out of range"),
        BAD_VALUE("value is not 0 or 1"),
        BAD_DIRECTION("direction is not NONE, OUT or IN"),
        NO_VALUE("direction OUT before any SET_VALUE"),
        BAD_IRQ_TYPE("irq type is not NONE, an edge type or a level type"),
        UNSUPPORTED_IRQ_TYPE("the chip detects no levels, only edges"),
        RELEASED_LINE("irq on a line whose direction is NONE"),
        WRONG_IRQ_SIZES("irq request is not " + GpioDevice.IRQ_REQUEST_SIZE + " readable and " + GpioDevice.IRQ_RESPONSE_SIZE
                + " writable byte(s)"),
        IRQ_NOT_NEGOTIATED("interrupts used without VIRTIO_GPIO_F_IRQ");

        final String description;

        Refusal(String description) {
            this.description = description;
        }
    }

    private final GpioChip chip;
    private final int lineCount;
    private final byte[] config = new byte[CONFIG_SIZE];
    /** The GET_LINE_NAMES block: every name NUL-terminated; empty when no line has a name. */
    private final byte[] names;
    private final int[] direction;
    /** The value the guest last set, or -1 for none. */
    private final int[] cachedValue;
    private final int[] irqType;
    /** An edge arrived while no buffer waited for the line. */
    private final boolean[] latched;
    /** The event buffer waiting for each line, or null. */
    private final Chain[] waiting;
    /** Free chains for the event queue: at most one waits per line, plus the one being popped into. */
    private final Chain[] spare;
    private int spareCount;
    private final Chain request = new Chain();
    private DeviceContext context;
    private long refusals;

    public GpioDevice(GpioChip chip) {
        this.chip = chip;
        this.lineCount = chip.lineCount();
        this.direction = new int[lineCount];
        this.cachedValue = new int[lineCount];
        this.irqType = new int[lineCount];
        this.latched = new boolean[lineCount];
        this.waiting = new Chain[lineCount];
        this.spare = new Chain[lineCount + 1];
        for (int i = 0; i < spare.length; i++) {
            spare[i] = new Chain();
        }
        spareCount = spare.length;
        this.names = namesBlock(chip);
        for (int line = 0; line < lineCount; line++) {
            direction[line] = chip.initialDirection(line);
            cachedValue[line] = -1;
        }
        config[0] = (byte) lineCount;
        config[1] = (byte) (lineCount >>> 8);
        int size = names.length;
        config[4] = (byte) size;
        config[5] = (byte) (size >>> 8);
        config[6] = (byte) (size >>> 16);
        config[7] = (byte) (size >>> 24);
    }

    private static byte[] namesBlock(GpioChip chip) {
        StringBuilder block = new StringBuilder();
        boolean any = false;
        for (int line = 0; line < chip.lineCount(); line++) {
            String name = chip.lineName(line);
            any |= !name.isEmpty();
            block.append(name).append('\0');
        }
        return any ? block.toString().getBytes(StandardCharsets.UTF_8) : new byte[0];
    }

    @Override
    public int queueCount() {
        return 2;
    }

    @Override
    public int maxQueueSize() {
        return MAX_QUEUE_SIZE;
    }

    @Override
    public long deviceFeatures() {
        return 1L << VIRTIO_GPIO_F_IRQ;
    }

    @Override
    public int configSize() {
        return CONFIG_SIZE;
    }

    @Override
    public void readConfig(int offset, byte[] destination) {
        System.arraycopy(config, offset, destination, 0, destination.length);
    }

    @Override
    public void attach(DeviceContext deviceContext) {
        context = deviceContext;
        chip.start(deviceContext, this::edge);
    }

    @Override
    public void handleQueue(DeviceQueue queue) {
        if (queue.index() == REQUEST_QUEUE) {
            while (queue.pop(request)) {
                serve(queue, request);
            }
        } else {
            Chain chain;
            while (spareCount > 0 && queue.pop(chain = spare[spareCount - 1])) {
                spareCount--;
                if (!waitForIrq(queue, chain)) {
                    spare[spareCount++] = chain;
                }
            }
        }
    }

    // ------------------------------------------------------------------ request queue

    private void serve(DeviceQueue queue, Chain chain) {
        if (!chain.isValid()) {
            queue.complete(chain); // the walker logged the fault
            return;
        }
        long writable = chain.writableBytes();
        if (writable < 1) {
            refused(Refusal.NO_RESPONSE, chain);
            queue.complete(chain);
            return;
        }
        if (chain.readableBytes() != REQUEST_SIZE) {
            fail(queue, chain, Refusal.WRONG_REQUEST_SIZE);
            return;
        }
        ChainReader reader = chain.reader();
        int type = reader.readUnsignedShort();
        int line = reader.readUnsignedShort();
        long value = Integer.toUnsignedLong(reader.readInt());
        long expected = type == VIRTIO_GPIO_MSG_GET_LINE_NAMES ? 1L + names.length : RESPONSE_SIZE;
        Refusal refusal;
        if (type < VIRTIO_GPIO_MSG_GET_LINE_NAMES || type > VIRTIO_GPIO_MSG_IRQ_TYPE) {
            refusal = Refusal.UNKNOWN_TYPE;
        } else if (writable != expected) {
            refusal = Refusal.WRONG_RESPONSE_SIZE;
        } else if (type != VIRTIO_GPIO_MSG_GET_LINE_NAMES && line >= lineCount) {
            refusal = Refusal.NO_SUCH_LINE;
        } else {
            refusal = switch (type) {
                case VIRTIO_GPIO_MSG_GET_LINE_NAMES -> {
                    ChainWriter writer = chain.writer();
                    writer.writeByte(VIRTIO_GPIO_STATUS_OK);
                    writer.write(names, 0, names.length);
                    yield null;
                }
                case VIRTIO_GPIO_MSG_GET_DIRECTION -> answer(chain, direction[line]);
                case VIRTIO_GPIO_MSG_SET_DIRECTION -> setDirection(chain, line, value);
                case VIRTIO_GPIO_MSG_GET_VALUE -> {
                    int level = chip.value(line);
                    yield level < 0 ? null : answer(chain, level);
                }
                case VIRTIO_GPIO_MSG_SET_VALUE -> setValue(chain, line, value);
                default -> setIrqType(chain, line, value);
            };
        }
        if (refusal != null) {
            fail(queue, chain, refusal);
        } else if (chain.writer().bytesWritten() == 0) {
            failSilently(queue, chain); // the chip failed and logged it
        } else {
            queue.complete(chain);
        }
    }

    /** Writes OK and {@code value}; null (no refusal). */
    private static Refusal answer(Chain chain, int value) {
        ChainWriter writer = chain.writer();
        writer.writeByte(VIRTIO_GPIO_STATUS_OK);
        writer.writeByte(value);
        return null;
    }

    private Refusal setDirection(Chain chain, int line, long requested) {
        if (requested != VIRTIO_GPIO_DIRECTION_NONE && requested != VIRTIO_GPIO_DIRECTION_OUT
                && requested != VIRTIO_GPIO_DIRECTION_IN) {
            return Refusal.BAD_DIRECTION;
        }
        int wanted = (int) requested;
        if (wanted == VIRTIO_GPIO_DIRECTION_OUT && cachedValue[line] < 0) {
            return Refusal.NO_VALUE;
        }
        int type = wanted == VIRTIO_GPIO_DIRECTION_NONE ? VIRTIO_GPIO_IRQ_TYPE_NONE : irqType[line];
        if (chip.configure(line, wanted, Math.max(cachedValue[line], 0), type) < 0) {
            return null; // nothing written: failed by the caller
        }
        direction[line] = wanted;
        if (wanted == VIRTIO_GPIO_DIRECTION_NONE) {
            cachedValue[line] = -1;
            disableIrq(line);
        }
        return answer(chain, 0);
    }

    private Refusal setValue(Chain chain, int line, long value) {
        if (value > 1) {
            return Refusal.BAD_VALUE;
        }
        // The guest sets the value before making a line an output: only cached until then.
        if (direction[line] == VIRTIO_GPIO_DIRECTION_OUT && chip.setValue(line, (int) value) < 0) {
            return null;
        }
        cachedValue[line] = (int) value;
        return answer(chain, 0);
    }

    private Refusal setIrqType(Chain chain, int line, long type) {
        if (type != VIRTIO_GPIO_IRQ_TYPE_NONE && type != VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING
                && type != VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING && type != VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH
                && type != VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH && type != VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW) {
            return Refusal.BAD_IRQ_TYPE;
        }
        int wanted = (int) type;
        if (wanted != VIRTIO_GPIO_IRQ_TYPE_NONE && (context.ackedFeatures() & (1L << VIRTIO_GPIO_F_IRQ)) == 0) {
            return Refusal.IRQ_NOT_NEGOTIATED;
        }
        if (isLevel(wanted) && !chip.detectsLevels()) {
            return Refusal.UNSUPPORTED_IRQ_TYPE;
        }
        if (wanted != VIRTIO_GPIO_IRQ_TYPE_NONE && direction[line] == VIRTIO_GPIO_DIRECTION_NONE) {
            return Refusal.RELEASED_LINE;
        }
        if (wanted != irqType[line]) {
            if (chip.configure(line, direction[line], Math.max(cachedValue[line], 0), wanted) < 0) {
                return null;
            }
            if (wanted == VIRTIO_GPIO_IRQ_TYPE_NONE) {
                disableIrq(line);
            } else {
                irqType[line] = wanted;
                latched[line] = false;
                chip.listen(line, true);
            }
        }
        return answer(chain, 0);
    }

    private static boolean isLevel(int type) {
        return type == VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH || type == VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW;
    }

    // ------------------------------------------------------------------ event queue

    /** Handles a popped event buffer; true if it now waits (the chain is kept). */
    private boolean waitForIrq(DeviceQueue queue, Chain chain) {
        if (!chain.isValid()) {
            completeIrq(queue, chain, VIRTIO_GPIO_IRQ_STATUS_INVALID);
            return false;
        }
        if (chain.readableBytes() != IRQ_REQUEST_SIZE || chain.writableBytes() != IRQ_RESPONSE_SIZE) {
            refused(Refusal.WRONG_IRQ_SIZES, chain);
            completeIrq(queue, chain, VIRTIO_GPIO_IRQ_STATUS_INVALID);
            return false;
        }
        int line = chain.reader().readUnsignedShort();
        if ((context.ackedFeatures() & (1L << VIRTIO_GPIO_F_IRQ)) == 0) {
            refused(Refusal.IRQ_NOT_NEGOTIATED, chain);
            completeIrq(queue, chain, VIRTIO_GPIO_IRQ_STATUS_INVALID);
            return false;
        }
        if (line >= lineCount) {
            refused(Refusal.NO_SUCH_LINE, chain);
            completeIrq(queue, chain, VIRTIO_GPIO_IRQ_STATUS_INVALID);
            return false;
        }
        int type = irqType[line];
        if (type == VIRTIO_GPIO_IRQ_TYPE_NONE || waiting[line] != null) {
            completeIrq(queue, chain, VIRTIO_GPIO_IRQ_STATUS_INVALID);
            return false;
        }
        boolean fire;
        if (isLevel(type)) {
            fire = chip.levelActive(line, type);
        } else {
            fire = latched[line];
            if (fire) {
                latched[line] = false;
                chip.listen(line, true);
            }
        }
        if (fire) {
            completeIrq(queue, chain, VIRTIO_GPIO_IRQ_STATUS_VALID);
            return false;
        }
        waiting[line] = chain;
        return true;
    }

    /** The chip saw an interrupt condition on {@code line} (on the worker, from {@link #handleHostFd}). */
    private void edge(int line) {
        if (line < 0 || line >= lineCount || irqType[line] == VIRTIO_GPIO_IRQ_TYPE_NONE) {
            return;
        }
        Chain chain = waiting[line];
        if (chain != null) {
            waiting[line] = null;
            completeWaiting(chain, VIRTIO_GPIO_IRQ_STATUS_VALID);
        } else if (!isLevel(irqType[line])) {
            latched[line] = true;
            chip.listen(line, false); // nothing more to learn until a buffer takes this one
        }
    }

    /** irq NONE: no more edges, and the waiting buffer comes back INVALID now (the driver re-arms it later). */
    private void disableIrq(int line) {
        irqType[line] = VIRTIO_GPIO_IRQ_TYPE_NONE;
        latched[line] = false;
        chip.listen(line, false);
        Chain chain = waiting[line];
        if (chain != null) {
            waiting[line] = null;
            completeWaiting(chain, VIRTIO_GPIO_IRQ_STATUS_INVALID);
        }
    }

    private void completeWaiting(Chain chain, int status) {
        DeviceQueue queue = context.queue(EVENT_QUEUE);
        try {
            if (queue.isReady()) {
                completeIrq(queue, chain, status);
            }
        } finally {
            spare[spareCount++] = chain;
        }
    }

    private static void completeIrq(DeviceQueue queue, Chain chain, int status) {
        if (chain.isValid() && chain.writableBytes() >= IRQ_RESPONSE_SIZE) {
            chain.writer().writeByte(status);
        }
        queue.complete(chain);
    }

    /** Returns every waiting buffer INVALID (or forgets them when the queue can no longer take them). */
    private void returnWaiting() {
        for (int line = 0; line < lineCount; line++) {
            Chain chain = waiting[line];
            if (chain != null) {
                waiting[line] = null;
                completeWaiting(chain, VIRTIO_GPIO_IRQ_STATUS_INVALID);
            }
        }
    }

    /** Number of event buffers waiting (tests). */
    int waitingCount() {
        int n = 0;
        for (Chain chain : waiting) {
            n += chain != null ? 1 : 0;
        }
        return n;
    }

    @Override
    public void handleHostFd(int token, int readyEvents) {
        chip.ready(token, readyEvents);
    }

    @Override
    public void queueStopping(DeviceQueue queue) {
        if (queue.index() == EVENT_QUEUE) {
            returnWaiting();
        }
    }

    @Override
    public void memoryChanged(GuestMemory memory) {
        // Waiting chains point into the old mapping, which is released once this returns.
        returnWaiting();
    }

    @Override
    public void reset() {
        returnWaiting();
        chip.reset();
        for (int line = 0; line < lineCount; line++) {
            direction[line] = chip.initialDirection(line);
            cachedValue[line] = -1;
            irqType[line] = VIRTIO_GPIO_IRQ_TYPE_NONE;
            latched[line] = false;
        }
    }

    @Override
    public void close() {
        chip.close();
    }

    // ------------------------------------------------------------------ answers

    private void fail(DeviceQueue queue, Chain chain, Refusal refusal) {
        refused(refusal, chain);
        failSilently(queue, chain);
    }

    /** Status ERR and a zero value byte where there is room; used length what was written. */
    private static void failSilently(DeviceQueue queue, Chain chain) {
        ChainWriter writer = chain.writer();
        writer.writeByte(VIRTIO_GPIO_STATUS_ERR);
        if (writer.size() >= RESPONSE_SIZE) {
            writer.writeByte(0);
        }
        queue.complete(chain);
    }

    private void refused(Refusal refusal, Chain chain) {
        refusals++;
        if (refusals <= LOGGED_IN_FULL || (refusals & 1023) == 0) {
            LOG.warn("gpio: request at head {} refused: {} ({} refused so far; the device carries on)",
                    chain.head(), refusal.description, refusals);
        }
    }
}
