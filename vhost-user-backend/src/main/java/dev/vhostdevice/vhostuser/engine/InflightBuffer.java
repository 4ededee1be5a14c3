package dev.vhostdevice.vhostuser.engine;

import dev.vhostdevice.vhostuser.protocol.Payload;
import dev.vhostdevice.vhostuser.protocol.ProtocolException;
import dev.vhostdevice.virtqueue.VirtioRing;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.memory.MemoryMapper;
import java.lang.foreign.MemorySegment;

/**
 * The shared inflight buffer from SET_INFLIGHT_FD: one {@link InflightQueueRegion} per queue, back to back.
 * The front-end keeps the fd across back-end restarts, so what one back-end records the next one resubmits.
 */
final class InflightBuffer implements AutoCloseable {
    private final GuestMemory mapping;
    private final int queues;
    private final int queueSize;

    /** The mapped bytes: a buffer from GET_INFLIGHT_FD without packed rings offered has no room for packed regions. */
    private final long bytes;

    private InflightBuffer(GuestMemory mapping, int queues, int queueSize, long bytes) {
        this.mapping = mapping;
        this.queues = queues;
        this.queueSize = queueSize;
        this.bytes = bytes;
    }

    /** The split layout's size (libvhost-user's): what a buffer must at least have. */
    static long sizeFor(Payload.Inflight request) {
        return request.numQueues() * InflightQueueRegion.stride(request.queueSize());
    }

    /**
     * What GET_INFLIGHT_FD allocates: with packed rings offered, room for the larger packed regions (the front-end
     * may ask before SET_FEATURES, so the offer, not the choice, decides).
     */
    static long sizeFor(Payload.Inflight request, boolean packedOffered) {
        return packedOffered ? request.numQueues() * packedStride(request.queueSize()) : sizeFor(request);
    }

    /** A queue's stride when packed rings may be used: room for either layout (the packed one is the larger). */
    private static long packedStride(int queueSize) {
        return Math.max(PackedInflightRegion.stride(queueSize), InflightQueueRegion.stride(queueSize));
    }

    private static void validate(Payload.Inflight request) throws ProtocolException {
        if (request.numQueues() <= 0 || !VirtioRing.isValidSize(request.queueSize())) {
            throw ProtocolException.invalid("inflight buffer for " + request.numQueues() + " queues of "
                    + request.queueSize() + " entries");
        }
    }

    /** GET_INFLIGHT_FD: a zero-filled, size-sealed memory file for the front-end to keep. */
    static int create(MemoryMapper files, Payload.Inflight request, boolean packedOffered)
            throws ProtocolException, ErrnoException {
        validate(request);
        return files.createSealedMemoryFile("vhost-user-inflight", sizeFor(request, packedOffered));
    }

    /** SET_INFLIGHT_FD: maps the front-end's buffer (checked against the file's size). */
    static InflightBuffer map(RegionMapper mapper, Payload.Inflight request, int fd)
            throws ProtocolException, ErrnoException {
        validate(request);
        if (Long.compareUnsigned(request.mmapSize(), sizeFor(request)) < 0) {
            throw ProtocolException.invalid("inflight buffer of " + request.mmapSize() + " bytes, need " + sizeFor(request));
        }
        GuestMemory mapping = mapper.mapArea("inflight buffer", request.mmapSize(), fd, request.mmapOffset());
        return new InflightBuffer(mapping, request.numQueues(), request.queueSize(), request.mmapSize());
    }

    /**
     * The region of queue {@code index} for a ring of {@code ringSize}, or null if the buffer does not cover it.
     * A ring smaller than the buffer's queue size fits (the driver may shrink a ring); the region keeps the
     * buffer's desc_num, as libvhost-user does.
     */
    InflightQueueRegion queue(int index, int ringSize) {
        if (index >= queues || ringSize > queueSize) {
            return null;
        }
        long stride = InflightQueueRegion.stride(queueSize);
        MemorySegment all = mapping.region(0).segment();
        return new InflightQueueRegion(all.asSlice(index * stride, stride), queueSize, ringSize);
    }

    /**
     * The packed region of queue {@code index} for a ring of {@code ringSize}, or null if the buffer does not
     * cover it (too few queues, a smaller queue size, or too small for packed regions).
     */
    PackedInflightRegion packedQueue(int index, int ringSize, String name) {
        long stride = packedStride(queueSize);
        if (index >= queues || ringSize > queueSize || Long.compareUnsigned(bytes, queues * stride) < 0) {
            return null;
        }
        MemorySegment all = mapping.region(0).segment();
        return new PackedInflightRegion(name, all.asSlice(index * stride, stride), queueSize, ringSize);
    }

    int queueCount() {
        return queues;
    }

    int queueSize() {
        return queueSize;
    }

    @Override
    public void close() {
        mapping.close();
    }
}
