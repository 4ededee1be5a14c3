package dev.vhostdevice.vhostuser.engine;

import static dev.vhostdevice.vhostuser.protocol.VirtioFeatures.VHOST_F_LOG_ALL;
import static dev.vhostdevice.vhostuser.protocol.VirtioFeatures.VHOST_USER_F_PROTOCOL_FEATURES;
import static dev.vhostdevice.vhostuser.protocol.VirtioFeatures.VIRTIO_RING_F_EVENT_IDX;
import static dev.vhostdevice.vhostuser.protocol.VirtioFeatures.VIRTIO_RING_F_INDIRECT_DESC;
import static dev.vhostdevice.vhostuser.protocol.VirtioFeatures.VIRTIO_F_RING_PACKED;

import dev.vhostdevice.vhostuser.device.VirtioDevice;
import dev.vhostdevice.vhostuser.protocol.FrontendRequest;
import dev.vhostdevice.vhostuser.protocol.Payload;
import dev.vhostdevice.vhostuser.protocol.ProtocolException;
import dev.vhostdevice.vhostuser.protocol.VirtioFeatures;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.vhostuser.sys.ReceivedFds;
import dev.vhostdevice.virtqueue.DirtyLog;
import dev.vhostdevice.virtqueue.PackedQueue;
import dev.vhostdevice.virtqueue.QueueConfigException;
import dev.vhostdevice.virtqueue.QueueState;
import dev.vhostdevice.virtqueue.VirtQueue;
import dev.vhostdevice.virtqueue.VirtioRing;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The rings' lifecycle (vhost-user-protocol.md §4.1) and everything the worker does with them. Control
 * requests arrive on the control thread and run on the worker through {@link Worker#call}; kicks and host-fd
 * events arrive on the worker directly.
 *
 * <p>Rules kept here: a ring starts at SET_VRING_KICK and stops at GET_VRING_BASE; started and enabled are
 * independent; without PROTOCOL_FEATURES rings are enabled at SET_FEATURES, with it they wait for
 * SET_VRING_ENABLE; enabling (or starting an enabled ring) re-scans the ring, because QEMU kicks before it
 * enables.
 */
final class RingControl implements Worker.Events {
    private static final Logger LOG = LoggerFactory.getLogger(RingControl.class);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final VhostUserSession session;
    private final Linux linux;
    private final VirtioDevice device;
    private final MemoryControl memory;
    private Worker worker;
    private Vring[] vrings;
    private DirtyLogArea log;
    private int logFd = -1;
    private InflightBuffer inflight;

    RingControl(VhostUserSession session) {
        this.session = session;
        this.linux = session.linux();
        this.device = session.device();
        this.memory = new MemoryControl(session.regionMapper(), this);
    }

    void attach(Worker w, Vring[] rings) {
        this.worker = w;
        this.vrings = rings;
    }

    Worker worker() {
        return worker;
    }

    MemoryControl memory() {
        return memory;
    }

    private Vring vring(int index) throws ProtocolException {
        if (index < 0 || index >= vrings.length) {
            throw ProtocolException.invalid("vring index " + Integer.toUnsignedString(index) + " out of range (device has "
                    + vrings.length + " queues)");
        }
        return vrings[index];
    }

    // ------------------------------------------------------------------------------------ worker events

    @Override
    public void kick(int queueIndex, int readyEvents) {
        Vring v = vrings[queueIndex];
        if ((readyEvents & (Linux.EPOLLHUP | Linux.EPOLLERR)) != 0) {
            // A kick fd whose other end is gone (a pipe or socket passed instead of an eventfd) stays "ready"
            // for ever: stop watching it, or the worker spins. The ring is still served on every other event.
            LOG.error("{}: queue {}: the kick fd hung up; no more kicks from it", session.name(), queueIndex);
            worker.unwatch(v.kickFd);
        }
        // A kick on a disabled ring is not lost: enabling re-scans the ring.
        if (!v.isRunning()) {
            drainKick(v);
            return;
        }
        if (worker.polls()) {
            // The worker polls next: notifications stay off, so the driver does not kick meanwhile.
            if (v.deviceQueue.poll(device)) {
                signalLog();
            }
            drainKick(v);
            return;
        }
        // Served first, the kick counter read after the call: no syscall between kick and call. A kick that
        // came after the service's re-check is consumed by that read, so look at the ring once more.
        service(v);
        drainKick(v);
        if (v.isRunning() && v.queue.hasAvailable()) {
            service(v);
        }
    }

    private void drainKick(Vring v) {
        if (v.kickFd < 0) {
            return;
        }
        try {
            linux.readEventfd(v.kickFd);
        } catch (ErrnoException e) {
            LOG.error("{}: queue {}: reading the kick fd failed: {}", session.name(), v.index, e.getMessage());
        }
    }

    @Override
    public boolean poll() {
        boolean served = false;
        for (Vring v : vrings) {
            if (v.isRunning() && v.deviceQueue.poll(device)) {
                served = true;
            }
        }
        if (served) {
            signalLog();
        }
        return served;
    }

    @Override
    public void endPoll() {
        for (Vring v : vrings) {
            if (v.isRunning()) {
                v.deviceQueue.endPoll(device);
            }
        }
        signalLog();
    }

    @Override
    public void hostFd(int token, int events) {
        try {
            device.handleHostFd(token, events);
        } catch (RuntimeException e) {
            LOG.error("{}: device failed handling host fd token {}: {}", session.name(), token, e.toString(), e);
        }
        for (Vring v : vrings) {
            if (v.queue.isReady()) {
                v.deviceQueue.afterCallback();
            }
        }
        signalLog();
    }

    @Override
    public void backendChannel() {
        session.backendChannelReadable();
    }

    private void service(Vring v) {
        v.deviceQueue.service(device);
        // A device may complete chains of other queues while serving this one (gpio returns an eventq buffer
        // when a requestq message disables its interrupt): their notification, and on a packed ring the
        // publication of their used batch, is decided here too, not at that queue's next kick.
        for (Vring other : vrings) {
            if (other != v && other.queue.isReady()) {
                other.deviceQueue.afterCallback();
            }
        }
        signalLog();
    }

    private void signalLog() {
        DirtyLogArea area = log;
        if (area != null && area.takeDirtied() && logFd >= 0) {
            try {
                linux.writeEventfd(logFd, 1);
            } catch (ErrnoException e) {
                LOG.error("{}: signalling the log fd failed: {}", session.name(), e.getMessage());
            }
        }
    }

    // ---------------------------------------------------------------------------------- ring requests

    void setFeatures(long features) throws Exception {
        long unknown = features & ~session.offeredFeatures;
        if (unknown != 0) {
            throw ProtocolException.invalid("acks features never offered: 0x" + Long.toHexString(unknown));
        }
        worker.call(() -> {
            useLayouts(VirtioFeatures.has(features, VIRTIO_F_RING_PACKED));
            session.ackedFeatures = features;
            boolean enableAll = !VirtioFeatures.has(features, VHOST_USER_F_PROTOCOL_FEATURES);
            for (Vring v : vrings) {
                // Applied here, not at SET_VRING_BASE: some front-ends never send that (rust-vmm #240).
                v.queue.setEventIdx(VirtioFeatures.has(features, VIRTIO_RING_F_EVENT_IDX));
                v.queue.setIndirectAllowed(VirtioFeatures.has(features, VIRTIO_RING_F_INDIRECT_DESC));
            }
            applyDirtyLog();
            device.featuresAcked(features);
            if (enableAll) {
                for (Vring v : vrings) {
                    enable(v, true);
                }
            }
            return null;
        });
    }

    /**
     * On the worker, at SET_FEATURES: every ring takes the layout the front-end acked. A front-end re-sends
     * SET_FEATURES while rings run (LOG_ALL for migration); that is fine as long as the layout stays.
     */
    private void useLayouts(boolean packedRing) throws ProtocolException {
        for (Vring v : vrings) {
            if (v.queue.isPacked() != packedRing && (v.started || v.queue.isParked() || v.queue.isReady())) {
                throw ProtocolException.invalid("vring " + v.index + ": SET_FEATURES switches to the "
                        + (packedRing ? "packed" : "split") + " layout while the ring runs");
            }
        }
        for (Vring v : vrings) {
            v.useLayout(packedRing);
        }
    }

    void setNum(Payload.VringState state) throws Exception {
        Vring v = vring(state.index());
        worker.call(() -> {
            v.queue.setSize(state.num());
            return null;
        });
    }

    /**
     * SET_VRING_BASE on a split ring: both the next available and the next used index resume at the base (a
     * stopped split ring has completed all it popped, so the two are equal). On a stopped ring the base waits
     * for the start; on a started ring that is not enabled (a front-end that lays resumed rings out after the
     * kick) the ring restarts at it at once. A running, parked or busy ring refuses it whole.
     */
    void setBase(Payload.VringState state) throws Exception {
        Vring v = vring(state.index());
        if (VirtioFeatures.has(session.ackedFeatures, VIRTIO_F_RING_PACKED)) {
            setPackedBase(v, state.num());
            return;
        }
        if ((state.num() & ~0xFFFF) != 0) {
            throw ProtocolException.invalid("vring " + state.index() + ": base 0x" + Integer.toHexString(state.num())
                    + " has reserved bits set (VIRTIO_F_RING_PACKED was not acked)");
        }
        int base = state.num();
        worker.call(() -> {
            if (!v.started) {
                v.queue.restore(new QueueState(base, base, v.queue.eventIdx()));
                return null;
            }
            String busy = v.enabled ? "is enabled (GET_VRING_BASE stops it first)"
                    : v.queue.isParked() ? "is parked (its rings are not in guest memory)"
                    : v.queue.inFlightCount() > 0 ? "holds " + v.queue.inFlightCount() + " request(s) in flight" : null;
            if (busy != null) {
                throw ProtocolException.invalid("vring " + v.index + ": SET_VRING_BASE " + base + " refused: the ring "
                        + busy);
            }
            GuestMemory mem = memory.table().memory();
            QueueState before = v.queue.state();
            v.queue.stop();
            try {
                v.queue.restore(new QueueState(base, base, before.eventIdx()));
                resume(v, mem);
            } catch (Exception e) {
                // Nothing half applied: the ring runs on where it was (it was ready in this very table).
                v.queue.stop();
                v.queue.restore(before);
                v.queue.activate(mem);
                throw e;
            }
            return null;
        });
    }

    /**
     * SET_VRING_BASE for a packed ring: next-avail slot (bits 0-14) and wrap (15), next-used slot (16-30) and
     * wrap (31); a fresh start is 0x80008000. Slots at or beyond the ring size are refused (packed-ring.md H1).
     */
    private void setPackedBase(Vring v, int num) throws Exception {
        worker.call(() -> {
            if (v.queue.isReady()) {
                throw ProtocolException.invalid("vring " + v.index + ": SET_VRING_BASE while the ring runs");
            }
            try {
                v.queue.restore(new QueueState(num & 0xFFFF, num >>> 16, v.queue.eventIdx()));
            } catch (QueueConfigException e) {
                throw ProtocolException.invalid("vring " + v.index + ": packed base 0x" + Integer.toHexString(num)
                        + ": " + e.getMessage());
            }
            return null;
        });
    }

    /** GET_VRING_BASE's answer: the next available index (split), or both packed positions. */
    private static int base(VirtQueue queue) {
        return queue.isPacked() ? queue.nextAvail() | queue.nextUsed() << 16 : queue.nextAvail();
    }

    void setAddress(Payload.VringAddress address) throws Exception {
        Vring v = vring(address.index());
        if ((address.flags() & ~Payload.VringAddress.VHOST_VRING_F_LOG) != 0) {
            throw ProtocolException.invalid("vring " + address.index() + ": unknown flags 0x"
                    + Integer.toHexString(address.flags()));
        }
        RegionTable table = memory.table();
        if (table.isEmpty()) {
            throw ProtocolException.invalid("vring " + address.index() + ": SET_VRING_ADDR before SET_MEM_TABLE");
        }
        worker.call(() -> {
            // Ring addresses are front-end user addresses: translate them through the region table.
            // For a packed ring: the descriptor ring and the driver and device event suppression areas.
            long desc = table.userToGuest(address.descUserAddr(), v.queue.descAreaBytes(), "descriptor table");
            long avail = table.userToGuest(address.availUserAddr(), v.queue.availAreaBytes(), "available ring");
            long used = table.userToGuest(address.usedUserAddr(), v.queue.usedAreaBytes(), "used ring");
            if (v.queue.isReady()) {
                if (desc != v.queue.descAddress() || avail != v.queue.availAddress() || used != v.queue.usedAddress()) {
                    throw ProtocolException.invalid("vring " + v.index + ": ring addresses changed while the ring runs");
                }
            } else {
                v.queue.setAddresses(desc, avail, used);
            }
            v.addressesSet = true;
            v.logUsed = address.logUsed();
            v.logGuestAddr = address.logGuestAddr();
            applyDirtyLog();
            return null;
        });
    }

    void setRingFd(FrontendRequest request, Payload.VringFd message, ReceivedFds fds) throws Exception {
        Vring v = vring(message.index());
        if (request == FrontendRequest.SET_VRING_KICK && message.noFd()) {
            throw ProtocolException.invalid("vring " + v.index + ": polling mode (NOFD kick) is not supported");
        }
        if (!message.noFd()) {
            linux.setNonBlocking(fds.peek(0)); // a blocking pipe as call fd would wedge the worker once full
        }
        int fd = message.noFd() ? -1 : fds.take(0);
        worker.call(() -> {
            switch (request) {
                case SET_VRING_CALL -> {
                    int old = v.callFd;
                    v.callFd = fd;
                    linux.close(old);
                }
                case SET_VRING_ERR -> {
                    int old = v.errFd;
                    v.errFd = fd;
                    linux.close(old);
                }
                default -> installKick(v, fd);
            }
            return null;
        });
    }

    /** SET_VRING_KICK: the new kick fd replaces the old, and the ring starts (spec: "start on kick"). */
    private void installKick(Vring v, int fd) throws Exception {
        if (v.kickFd >= 0) {
            worker.unwatch(v.kickFd);
            linux.close(v.kickFd);
        }
        v.kickFd = fd;
        worker.watch(fd, Worker.KIND_KICK, v.index, Linux.EPOLLIN);
        if (v.queue.isReady() || v.queue.isParked()) {
            return; // a new kick fd for a started ring: it keeps its position
        }
        GuestMemory mem = memory.table().memory();
        if (memory.table().isEmpty() || !v.addressesSet) {
            throw ProtocolException.invalid("vring " + v.index + ": SET_VRING_KICK before "
                    + (memory.table().isEmpty() ? "SET_MEM_TABLE" : "SET_VRING_ADDR") + " (ring not started)");
        }
        resume(v, mem);
        v.started = true;
        applyDirtyLog();
        if (v.enabled) {
            service(v);
        }
    }

    /**
     * Starts a stopped ring at the position it holds (the base), in {@code mem}. next_used comes from the ring
     * itself: the driver's view, which a rebooted guest zeroed (rust-vmm #180); a base that disagrees with it is
     * logged. With an inflight buffer, the requests a previous back-end left in flight are resubmitted first.
     */
    private void resume(Vring v, GuestMemory mem) throws Exception {
        if (v.queue.isPacked()) {
            resumePacked(v, mem);
            return;
        }
        MemorySegment usedIdx = mem.slice(v.queue.usedAddress() + VirtioRing.USED_IDX, 2);
        if (usedIdx == null) {
            throw ProtocolException.invalid("vring " + v.index + ": used ring outside guest memory");
        }
        int used = Short.toUnsignedInt(usedIdx.get(U16, 0));
        int nextAvail = v.queue.nextAvail();
        v.inflight = inflight == null ? null : inflight.queue(v.index, v.queue.size());
        if (inflight != null && v.inflight == null) {
            LOG.warn("{}: queue {}: the inflight buffer ({} queues of {}) does not cover this ring of {}; "
                    + "its requests are not tracked", session.name(), v.index, inflight.queueCount(),
                    inflight.queueSize(), v.queue.size());
        }
        if (v.inflight != null) {
            int inFlight = v.inflight.prepare(used);
            nextAvail = (used + inFlight) & 0xFFFF;
            if (inFlight > 0) {
                LOG.info("{}: queue {}: resubmitting {} request(s) left in flight", session.name(), v.index, inFlight);
            }
        } else if (used != v.queue.nextUsed()) {
            LOG.warn("{}: queue {}: used idx {} in guest memory differs from the base {}; completions continue at {}",
                    session.name(), v.index, used, v.queue.nextUsed(), used);
        }
        v.queue.restore(new QueueState(nextAvail, used, v.queue.eventIdx()));
        v.deviceQueue.setInflightTracker(v.inflight);
        v.queue.activate(mem);
    }

    /**
     * Starts a packed ring where SET_VRING_BASE put it (nothing in guest memory holds the cursors). With an
     * inflight buffer, the region's committed positions win over the base: the buffers a previous back-end left in
     * flight are resubmitted first, from their copied descriptors, and next-avail resumes past them.
     */
    private void resumePacked(Vring v, GuestMemory mem) throws Exception {
        PackedQueue packed = (PackedQueue) v.queue;
        v.inflight = null;
        v.packedInflight = inflight == null ? null
                : inflight.packedQueue(v.index, v.queue.size(), session.name() + ": queue " + v.index);
        if (inflight != null && v.packedInflight == null) {
            LOG.warn("{}: queue {}: the inflight buffer ({} queues of {}) has no packed region for this ring of {}; "
                    + "its requests are not tracked", session.name(), v.index, inflight.queueCount(),
                    inflight.queueSize(), v.queue.size());
        }
        if (v.packedInflight != null) {
            MemorySegment ring = mem.slice(v.queue.descAddress(), (long) VirtioRing.DESCRIPTOR_SIZE * v.queue.size());
            if (ring == null) {
                throw ProtocolException.invalid("vring " + v.index + ": descriptor ring outside guest memory");
            }
            int base = v.queue.nextAvail() | v.queue.nextUsed() << 16;
            int resumeAt = v.packedInflight.prepare(base, ring);
            if (resumeAt != base) {
                LOG.info("{}: queue {}: packed base 0x{}, the inflight region resumes at 0x{}", session.name(), v.index,
                        Integer.toHexString(base), Integer.toHexString(resumeAt));
                v.queue.restore(new QueueState(resumeAt & 0xFFFF, resumeAt >>> 16, v.queue.eventIdx()));
            }
            if (v.packedInflight.resubmitCount() > 0) {
                LOG.info("{}: queue {}: resubmitting {} request(s) left in flight", session.name(), v.index,
                        v.packedInflight.resubmitCount());
            }
        }
        packed.setDescriptorRecorder(v.packedInflight);
        v.deviceQueue.setInflightTracker(v.packedInflight);
        v.queue.activate(mem);
    }

    void setEnable(Payload.VringState state) throws Exception {
        Vring v = vring(state.index());
        if (state.num() != 0 && state.num() != 1) {
            throw ProtocolException.invalid("vring " + v.index + ": enable value " + state.num() + " is not 0 or 1");
        }
        worker.call(() -> {
            enable(v, state.num() == 1);
            return null;
        });
    }

    private void enable(Vring v, boolean on) {
        v.enabled = on;
        // QEMU kicks before it enables: re-scan so that kick is not lost (rust-vmm #247).
        if (on && v.isRunning()) {
            service(v);
        }
    }

    /**
     * GET_VRING_BASE: lets the device complete what it holds, waits for in-flight chains, stops the ring and
     * returns the next available index.
     */
    int stopForBase(int index) throws Exception {
        Vring v = vring(index);
        drainForStop(v);
        return worker.call(() -> {
            stopRing(v, true);
            return base(v.queue);
        });
    }

    /**
     * A second SET_OWNER on the connection: the guest driver probed the device again (the Xen bridge, xen.md
     * §2.7 #11 and §4.1) and the front-end is about to send the whole ring setup anew, to rings that still run.
     * Every started ring stops as at GET_VRING_BASE (the device completes what it holds, kick and call fds
     * closed) and is disabled, so that the setup sent again is taken as a fresh start. The memory table, the
     * features and each ring's position stay: the front-end sends what changed. (QEMU's multi-queue net sends
     * a SET_OWNER per queue pair on one connection, all before any ring starts: nothing to stop then.)
     */
    void reprobe() throws Exception {
        int stopped = 0;
        for (Vring v : vrings) {
            boolean started = worker.call(() -> v.started || v.queue.isReady() || v.queue.isParked());
            if (!started) {
                continue;
            }
            drainForStop(v);
            worker.call(() -> {
                stopRing(v, true);
                v.enabled = false;
                return null;
            });
            stopped++;
        }
        if (stopped > 0) {
            LOG.info("{}: SET_OWNER again: the front-end re-probes the device; {} started ring(s) stopped",
                    session.name(), stopped);
        }
    }

    /** Before a ring stops: the device completes what it holds; waits (bounded) for chains still in flight. */
    private void drainForStop(Vring v) throws Exception {
        int index = v.index;
        long deadline = System.nanoTime() + VhostUserSession.STOP_DRAIN_MILLIS * 1_000_000;
        while (true) {
            int inFlight = worker.call(() -> {
                if (!v.queue.isReady()) {
                    return 0;
                }
                device.queueStopping(v.deviceQueue);
                v.deviceQueue.afterCallback();
                return v.queue.inFlightCount();
            });
            if (inFlight == 0) {
                break;
            }
            if (System.nanoTime() > deadline) {
                LOG.error("{}: queue {}: {} request(s) still in flight after {} ms; stopping anyway", session.name(),
                        index, inFlight, VhostUserSession.STOP_DRAIN_MILLIS);
                break;
            }
            Thread.sleep(1);
        }
    }

    /** Stops a ring without forgetting its position; closes its kick fd (and call fd when asked). */
    private void stopRing(Vring v, boolean closeCall) {
        if (v.kickFd >= 0) {
            worker.unwatch(v.kickFd);
            linux.close(v.kickFd);
            v.kickFd = -1;
        }
        if (closeCall) {
            int old = v.callFd;
            v.callFd = -1;
            linux.close(old);
        }
        v.queue.stop();
        v.started = false;
        v.deviceQueue.setInflightTracker(null);
        v.inflight = null;
        if (v.packedInflight != null) {
            ((PackedQueue) v.queue).setDescriptorRecorder(null);
            v.packedInflight = null;
        }
    }

    boolean anyStarted() throws Exception {
        return worker.call(() -> {
            for (Vring v : vrings) {
                if (v.started) {
                    return true;
                }
            }
            return false;
        });
    }

    /** RESET_OWNER (disable only) or disconnect (everything, fds included). */
    void stopAll(boolean disconnect) throws Exception {
        worker.call(() -> {
            for (Vring v : vrings) {
                if (v.queue.isReady()) {
                    try {
                        device.queueStopping(v.deviceQueue);
                    } catch (RuntimeException e) {
                        LOG.error("{}: queue {}: device failed while stopping: {}", session.name(), v.index, e.toString());
                    }
                }
                stopRing(v, disconnect);
                v.enabled = false;
            }
            return null;
        });
    }

    /** RESET_DEVICE / SET_STATUS 0: rings stopped and reset, features forgotten, device reset. */
    void resetDevice() throws Exception {
        stopAll(false);
        worker.call(() -> {
            for (Vring v : vrings) {
                v.queue.reset();
                v.useLayout(false); // features forgotten: split until the next SET_FEATURES
                v.addressesSet = false;
                v.deviceQueue.clearBrokenReport();
            }
            session.ackedFeatures = 0;
            session.status.set(0);
            device.reset();
            return null;
        });
    }

    /**
     * The worker installed a new memory table. A started ring whose rings are no longer in it is parked, not
     * broken: QEMU removes a changed region and then adds it back (REM_MEM_REG, ADD_MEM_REG), and libvhost-user
     * likewise unmaps the rings and maps them again on demand. A parked ring processes nothing (its kicks are
     * re-scanned when it resumes) until a table holds its rings again.
     */
    void memoryChanged(GuestMemory mem) {
        boolean[] resumed = null;
        for (Vring v : vrings) {
            boolean wasParked = v.queue.isParked();
            boolean wasReady = v.queue.isReady();
            if (v.queue.remap(mem)) { // keeps the position and the in-flight heads
                if (wasParked) {
                    LOG.info("{}: queue {}: rings are in guest memory again, resuming", session.name(), v.index);
                    if (resumed == null) {
                        resumed = new boolean[vrings.length];
                    }
                    resumed[v.index] = true;
                }
            } else if (wasReady) {
                LOG.warn("{}: queue {}: parked until its rings are in guest memory again", session.name(), v.index);
            }
        }
        device.memoryChanged(mem);
        for (Vring v : vrings) {
            if (resumed != null && resumed[v.index] && v.isRunning()) {
                service(v);
            } else if (v.queue.isReady()) {
                v.deviceQueue.afterCallback();
            }
        }
    }

    // --------------------------------------------------------------------------------------- config

    byte[] readConfig(Payload.Config config) throws Exception {
        checkConfigRange(config);
        byte[] data = new byte[config.size()];
        worker.call(() -> {
            device.readConfig(config.offset(), data);
            return null;
        });
        return data;
    }

    void writeConfig(Payload.Config config) throws Exception {
        checkConfigRange(config);
        if (config.flags() != 0 && config.flags() != Payload.Config.VHOST_SET_CONFIG_TYPE_MIGRATION) {
            throw ProtocolException.invalid("SET_CONFIG flags 0x" + Integer.toHexString(config.flags()));
        }
        boolean migration = config.flags() == Payload.Config.VHOST_SET_CONFIG_TYPE_MIGRATION;
        boolean accepted = worker.call(() -> device.writeConfig(config.offset(), config.data(), migration));
        if (!accepted) {
            throw ProtocolException.invalid("device refused the config write at " + config.offset() + " (+"
                    + config.size() + ")");
        }
    }

    private void checkConfigRange(Payload.Config config) throws ProtocolException {
        long end = Integer.toUnsignedLong(config.offset()) + config.size();
        if (end > device.configSize()) {
            throw ProtocolException.invalid("config range " + Integer.toUnsignedString(config.offset()) + "+"
                    + config.size() + " exceeds the config space of " + device.configSize() + " bytes");
        }
    }

    // ------------------------------------------------------------------------------------- logging, inflight

    void setLogBase(Payload.LogArea area, int fd) throws Exception {
        if (area.mmapSize() <= 0 || (area.mmapOffset() & 7) != 0 || area.mmapOffset() < 0) {
            throw ProtocolException.invalid("log area of 0x" + Long.toHexString(area.mmapSize()) + " bytes at offset 0x"
                    + Long.toHexString(area.mmapOffset()));
        }
        GuestMemory mapping = session.regionMapper().mapArea("log area", area.mmapSize(), fd, area.mmapOffset());
        DirtyLogArea next = new DirtyLogArea(mapping);
        DirtyLogArea old = worker.call(() -> {
            DirtyLogArea previous = log;
            log = next;
            applyDirtyLog();
            return previous;
        });
        if (old != null) {
            old.close();
        }
    }

    void setLogFd(int fd) throws Exception {
        try {
            linux.setNonBlocking(fd);
        } catch (ErrnoException e) {
            linux.close(fd);
            throw e;
        }
        worker.call(() -> {
            int old = logFd;
            logFd = fd;
            linux.close(old);
            return null;
        });
    }

    /** On the worker: queues log their writes while LOG_ALL is acked and a log is mapped. */
    private void applyDirtyLog() {
        DirtyLogArea area = log;
        boolean on = area != null && VirtioFeatures.has(session.ackedFeatures, VHOST_F_LOG_ALL);
        for (Vring v : vrings) {
            v.queue.setDirtyLog(on ? queueLog(v, area) : null);
        }
    }

    /** Used-ring writes go to log_guest_addr (and only with VHOST_VRING_F_LOG); buffer writes by their GPA. */
    private static DirtyLog queueLog(Vring v, DirtyLogArea area) {
        long usedStart = v.queue.usedAddress();
        long usedBytes = v.queue.usedAreaBytes(); // packed: used descriptors go to the descriptor ring, by GPA
        boolean logUsed = v.logUsed;
        long logGuestAddr = v.logGuestAddr;
        return (gpa, length) -> {
            long offset = gpa - usedStart;
            if (offset >= 0 && offset < usedBytes) {
                if (logUsed) {
                    area.mark(logGuestAddr + offset, length);
                }
            } else {
                area.mark(gpa, length);
            }
        };
    }

    void setInflight(InflightBuffer buffer) throws Exception {
        worker.call(() -> {
            inflight = buffer;
            return null;
        });
    }

    /** At disconnect, after the worker stopped: every fd and mapping this class holds. */
    void releaseAll() {
        for (Vring v : vrings) {
            linux.close(v.kickFd);
            linux.close(v.callFd);
            linux.close(v.errFd);
            v.kickFd = v.callFd = v.errFd = -1;
        }
        linux.close(logFd);
        logFd = -1;
        if (log != null) {
            log.close();
            log = null;
        }
        memory.releaseAll();
    }
}
