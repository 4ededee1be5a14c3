package dev.vhostdevice.vsock;

/** virtio-vsock wire constants (virtio 1.2 §5.10): the 44-byte le header, types, ops, flags. */
final class VsockPacket {
    static final int HEADER_SIZE = 44;
    static final int OFF_SRC_CID = 0;
    static final int OFF_DST_CID = 8;
    static final int OFF_SRC_PORT = 16;
    static final int OFF_DST_PORT = 20;
    static final int OFF_LEN = 24;
    static final int OFF_TYPE = 28;
    static final int OFF_OP = 30;
    static final int OFF_FLAGS = 32;
    static final int OFF_BUF_ALLOC = 36;
    static final int OFF_FWD_CNT = 40;

    static final long VMADDR_CID_HOST = 2;

    static final int TYPE_STREAM = 1;
    static final int TYPE_SEQPACKET = 2;

    static final int OP_REQUEST = 1;
    static final int OP_RESPONSE = 2;
    static final int OP_RST = 3;
    static final int OP_SHUTDOWN = 4;
    static final int OP_RW = 5;
    static final int OP_CREDIT_UPDATE = 6;
    static final int OP_CREDIT_REQUEST = 7;

    static final int SHUTDOWN_RCV = 1;
    static final int SHUTDOWN_SEND = 2;
    static final int SEQ_EOM = 1;
    static final int SEQ_EOR = 2;

    static final int VIRTIO_VSOCK_F_STREAM = 0;
    static final int VIRTIO_VSOCK_F_SEQPACKET = 1;
    static final int VIRTIO_VSOCK_EVENT_TRANSPORT_RESET = 0;

    /** Largest payload of one packet, either way: Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE. */
    static final int MAX_PAYLOAD = 64 * 1024;

    private VsockPacket() {
    }

    static String opName(int op) {
        return switch (op) {
            case OP_REQUEST -> "REQUEST";
            case OP_RESPONSE -> "RESPONSE";
            case OP_RST -> "RST";
            case OP_SHUTDOWN -> "SHUTDOWN";
            case OP_RW -> "RW";
            case OP_CREDIT_UPDATE -> "CREDIT_UPDATE";
            case OP_CREDIT_REQUEST -> "CREDIT_REQUEST";
            default -> "op " + op;
        };
    }
}
