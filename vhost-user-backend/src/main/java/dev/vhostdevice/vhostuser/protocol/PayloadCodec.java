package dev.vhostdevice.vhostuser.protocol;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

import dev.vhostdevice.vhostuser.protocol.Payload.Config;
import dev.vhostdevice.vhostuser.protocol.Payload.DeviceStateTransfer;
import dev.vhostdevice.vhostuser.protocol.Payload.Empty;
import dev.vhostdevice.vhostuser.protocol.Payload.Inflight;
import dev.vhostdevice.vhostuser.protocol.Payload.LogArea;
import dev.vhostdevice.vhostuser.protocol.Payload.MemoryRegion;
import dev.vhostdevice.vhostuser.protocol.Payload.MemoryTable;
import dev.vhostdevice.vhostuser.protocol.Payload.SingleRegion;
import dev.vhostdevice.vhostuser.protocol.Payload.U64;
import dev.vhostdevice.vhostuser.protocol.Payload.VringAddress;
import dev.vhostdevice.vhostuser.protocol.Payload.VringFd;
import dev.vhostdevice.vhostuser.protocol.Payload.VringState;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * Decodes request bodies and encodes reply bodies. Pure: no sockets, no state beyond the region layout. Every
 * size is checked against the request before a field is read; a wrong size is {@link ProtocolException#invalid}.
 */
public final class PayloadCodec {
    static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.nativeOrder());
    static final ValueLayout.OfLong U64L = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.nativeOrder());
    static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.nativeOrder());

    public static final int U64_SIZE = 8;
    public static final int VRING_STATE_SIZE = 8;
    public static final int VRING_ADDRESS_SIZE = 40;
    public static final int MEMORY_TABLE_HEADER_SIZE = 8;
    public static final int SINGLE_REGION_PADDING = 8;
    public static final int LOG_SIZE = 16;
    public static final int INFLIGHT_SIZE = 24;
    public static final int CONFIG_HEADER_SIZE = 12;
    public static final int DEVICE_STATE_TRANSFER_SIZE = 8;
    /** QEMU caps config space at 256 bytes; the engine accepts up to a payload's worth. */
    public static final int MAX_CONFIG_SIZE = MessageHeader.MAX_PAYLOAD - CONFIG_HEADER_SIZE;
    /** SET_MEM_TABLE carries one fd per region, and a message at most {@link MessageHeader#MAX_FDS} fds. */
    public static final int MAX_TABLE_REGIONS = MessageHeader.MAX_FDS;

    private PayloadCodec() {
    }

    /**
     * Decodes the {@code size}-byte body of {@code request} held in {@code body}; {@code layout} is the negotiated
     * region layout, which decides the acceptable region entry sizes ({@link RegionLayout#ofEntries}).
     */
    public static Payload decode(FrontendRequest request, MemorySegment body, int size, RegionLayout layout)
            throws ProtocolException {
        return switch (request) {
            case GET_FEATURES, SET_OWNER, RESET_OWNER, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM, RESET_DEVICE,
                 GET_MAX_MEM_SLOTS, GET_STATUS, CHECK_DEVICE_STATE, SET_LOG_FD, SET_BACKEND_REQ_FD,
                 POSTCOPY_ADVISE, POSTCOPY_LISTEN, POSTCOPY_END, GPU_SET_SOCKET, GET_SHMEM_CONFIG ->
                    empty(request, size);
            case SET_FEATURES, SET_PROTOCOL_FEATURES, SET_STATUS, SEND_RARP, NET_SET_MTU, CLOSE_CRYPTO_SESSION -> {
                exact(request, size, U64_SIZE);
                yield new U64(body.get(U64L, 0));
            }
            case SET_VRING_NUM, SET_VRING_BASE, GET_VRING_BASE, SET_VRING_ENABLE, SET_VRING_ENDIAN, VRING_KICK -> {
                exact(request, size, VRING_STATE_SIZE);
                yield new VringState(body.get(U32, 0), body.get(U32, 4));
            }
            case SET_VRING_ADDR -> {
                exact(request, size, VRING_ADDRESS_SIZE);
                yield new VringAddress(body.get(U32, 0), body.get(U32, 4), body.get(U64L, 8), body.get(U64L, 16),
                        body.get(U64L, 24), body.get(U64L, 32));
            }
            case SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR -> {
                exact(request, size, U64_SIZE);
                long value = body.get(U64L, 0);
                yield new VringFd((int) (value & VringFd.INDEX_MASK), (value & VringFd.NOFD_MASK) != 0);
            }
            case SET_MEM_TABLE -> decodeTable(body, size, layout);
            case ADD_MEM_REG, REM_MEM_REG -> {
                RegionLayout entry = RegionLayout.ofEntries(size - SINGLE_REGION_PADDING, 1, layout);
                if (entry == null) {
                    throw noLayout(request, size, 1, layout);
                }
                yield new SingleRegion(region(body, SINGLE_REGION_PADDING, entry));
            }
            case SET_LOG_BASE -> {
                exact(request, size, LOG_SIZE);
                yield new LogArea(body.get(U64L, 0), body.get(U64L, 8));
            }
            case GET_INFLIGHT_FD, SET_INFLIGHT_FD -> {
                // 20 bytes of fields; QEMU, libvhost-user and rust-vmm all send sizeof = 24.
                if (size != INFLIGHT_SIZE && size != INFLIGHT_SIZE - 4) {
                    throw wrongSize(request, size, INFLIGHT_SIZE);
                }
                yield new Inflight(body.get(U64L, 0), body.get(U64L, 8),
                        Short.toUnsignedInt(body.get(U16, 16)), Short.toUnsignedInt(body.get(U16, 18)));
            }
            case GET_CONFIG, SET_CONFIG -> decodeConfig(request, body, size);
            case SET_DEVICE_STATE_FD -> {
                exact(request, size, DEVICE_STATE_TRANSFER_SIZE);
                yield new DeviceStateTransfer(body.get(U32, 0), body.get(U32, 4));
            }
            case NONE, IOTLB_MSG, CREATE_CRYPTO_SESSION, GET_SHARED_OBJECT -> new Payload.Raw(size);
        };
    }

    private static Empty empty(FrontendRequest request, int size) throws ProtocolException {
        if (size != 0) {
            throw wrongSize(request, size, 0);
        }
        return Empty.INSTANCE;
    }

    private static void exact(FrontendRequest request, int size, int expected) throws ProtocolException {
        if (size != expected) {
            throw wrongSize(request, size, expected);
        }
    }

    private static ProtocolException wrongSize(FrontendRequest request, int size, int expected) {
        return ProtocolException.invalid(request + ": payload of " + size + " bytes, expected " + expected);
    }

    private static ProtocolException noLayout(FrontendRequest request, int size, int count, RegionLayout negotiated) {
        return ProtocolException.invalid(request + ": payload of " + size + " bytes fits neither " + count
                + " regions of 32 bytes" + (negotiated == RegionLayout.XEN ? " nor of 40 bytes (XEN_MMAP)"
                : " (40-byte Xen regions need XEN_MMAP negotiated)"));
    }

    private static MemoryTable decodeTable(MemorySegment body, int size, RegionLayout layout)
            throws ProtocolException {
        if (size < MEMORY_TABLE_HEADER_SIZE) {
            throw wrongSize(FrontendRequest.SET_MEM_TABLE, size, MEMORY_TABLE_HEADER_SIZE);
        }
        int count = body.get(U32, 0);
        int padding = body.get(U32, 4);
        if (count <= 0 || count > MAX_TABLE_REGIONS) {
            throw ProtocolException.invalid("SET_MEM_TABLE: " + Integer.toUnsignedString(count)
                    + " regions, expected 1 to " + MAX_TABLE_REGIONS);
        }
        if (padding != 0) {
            throw ProtocolException.invalid("SET_MEM_TABLE: non-zero padding");
        }
        RegionLayout entry = RegionLayout.ofEntries(size - MEMORY_TABLE_HEADER_SIZE, count, layout);
        if (entry == null) {
            throw noLayout(FrontendRequest.SET_MEM_TABLE, size, count, layout);
        }
        List<MemoryRegion> regions = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            regions.add(region(body, MEMORY_TABLE_HEADER_SIZE + (long) i * entry.size(), entry));
        }
        return new MemoryTable(regions);
    }

    private static MemoryRegion region(MemorySegment body, long at, RegionLayout layout) {
        int xenFlags = layout == RegionLayout.XEN ? body.get(U32, at + 32) : 0;
        int xenData = layout == RegionLayout.XEN ? body.get(U32, at + 36) : 0;
        return new MemoryRegion(body.get(U64L, at), body.get(U64L, at + 8), body.get(U64L, at + 16),
                body.get(U64L, at + 24), xenFlags, xenData);
    }

    private static Config decodeConfig(FrontendRequest request, MemorySegment body, int size)
            throws ProtocolException {
        if (size < CONFIG_HEADER_SIZE) {
            throw wrongSize(request, size, CONFIG_HEADER_SIZE);
        }
        int offset = body.get(U32, 0);
        int length = body.get(U32, 4);
        int flags = body.get(U32, 8);
        if (length <= 0 || length > MAX_CONFIG_SIZE) {
            throw ProtocolException.invalid(request + ": config size " + Integer.toUnsignedString(length));
        }
        if (size != CONFIG_HEADER_SIZE + length) {
            throw wrongSize(request, size, CONFIG_HEADER_SIZE + length);
        }
        byte[] data = new byte[length];
        MemorySegment.copy(body, JAVA_BYTE, CONFIG_HEADER_SIZE, data, 0, length);
        return new Config(offset, length, flags, data);
    }

    // ------------------------------------------------------------------------------------------ encoding

    public static int encodeU64(MemorySegment out, long value) {
        out.set(U64L, 0, value);
        return U64_SIZE;
    }

    public static int encodeVringState(MemorySegment out, int index, int num) {
        out.set(U32, 0, index);
        out.set(U32, 4, num);
        return VRING_STATE_SIZE;
    }

    public static int encodeInflight(MemorySegment out, Inflight inflight) {
        out.set(U64L, 0, inflight.mmapSize());
        out.set(U64L, 8, inflight.mmapOffset());
        out.set(U16, 16, (short) inflight.numQueues());
        out.set(U16, 18, (short) inflight.queueSize());
        out.set(U32, 20, 0);
        return INFLIGHT_SIZE;
    }

    public static int encodeConfig(MemorySegment out, int offset, int flags, byte[] data) {
        out.set(U32, 0, offset);
        out.set(U32, 4, data.length);
        out.set(U32, 8, flags);
        MemorySegment.copy(data, 0, out, JAVA_BYTE, CONFIG_HEADER_SIZE, data.length);
        return CONFIG_HEADER_SIZE + data.length;
    }

    public static void encodeHeader(MemorySegment out, int request, int flags, int size) {
        out.set(U32, 0, request);
        out.set(U32, 4, flags);
        out.set(U32, 8, size);
    }

    public static MessageHeader decodeHeader(MemorySegment in) {
        return new MessageHeader(in.get(U32, 0), in.get(U32, 4), in.get(U32, 8));
    }
}
