package dev.vhostdevice.vhostuser.protocol;

/**
 * Front-end → back-end request codes (QEMU docs/interop/vhost-user.rst, spec at f6b615b plus GET_SHMEM_CONFIG),
 * with the fd policy of each: how many fds it may carry.
 */
public enum FrontendRequest {
    NONE(0, Fds.NONE),
    GET_FEATURES(1, Fds.NONE),
    SET_FEATURES(2, Fds.NONE),
    SET_OWNER(3, Fds.NONE),
    RESET_OWNER(4, Fds.NONE),
    SET_MEM_TABLE(5, Fds.PER_REGION),
    SET_LOG_BASE(6, Fds.ONE),
    SET_LOG_FD(7, Fds.ONE),
    SET_VRING_NUM(8, Fds.NONE),
    SET_VRING_ADDR(9, Fds.NONE),
    SET_VRING_BASE(10, Fds.NONE),
    GET_VRING_BASE(11, Fds.NONE),
    SET_VRING_KICK(12, Fds.ONE_UNLESS_NOFD),
    SET_VRING_CALL(13, Fds.ONE_UNLESS_NOFD),
    SET_VRING_ERR(14, Fds.ONE_UNLESS_NOFD),
    GET_PROTOCOL_FEATURES(15, Fds.NONE),
    SET_PROTOCOL_FEATURES(16, Fds.NONE),
    GET_QUEUE_NUM(17, Fds.NONE),
    SET_VRING_ENABLE(18, Fds.NONE),
    SEND_RARP(19, Fds.NONE),
    NET_SET_MTU(20, Fds.NONE),
    SET_BACKEND_REQ_FD(21, Fds.ONE),
    IOTLB_MSG(22, Fds.NONE),
    SET_VRING_ENDIAN(23, Fds.NONE),
    GET_CONFIG(24, Fds.NONE),
    SET_CONFIG(25, Fds.NONE),
    CREATE_CRYPTO_SESSION(26, Fds.NONE),
    CLOSE_CRYPTO_SESSION(27, Fds.NONE),
    POSTCOPY_ADVISE(28, Fds.NONE),
    POSTCOPY_LISTEN(29, Fds.NONE),
    POSTCOPY_END(30, Fds.NONE),
    GET_INFLIGHT_FD(31, Fds.NONE),
    SET_INFLIGHT_FD(32, Fds.ONE),
    GPU_SET_SOCKET(33, Fds.ONE),
    RESET_DEVICE(34, Fds.NONE),
    VRING_KICK(35, Fds.NONE),
    GET_MAX_MEM_SLOTS(36, Fds.NONE),
    ADD_MEM_REG(37, Fds.ONE),
    /** Spec: SHOULD carry none; a back-end MAY accept one from old front-ends and close it unused. */
    REM_MEM_REG(38, Fds.AT_MOST_ONE),
    SET_STATUS(39, Fds.NONE),
    GET_STATUS(40, Fds.NONE),
    GET_SHARED_OBJECT(41, Fds.NONE),
    SET_DEVICE_STATE_FD(42, Fds.ONE),
    CHECK_DEVICE_STATE(43, Fds.NONE),
    GET_SHMEM_CONFIG(44, Fds.NONE);

    /** How many fds a request may carry. */
    public enum Fds { NONE, ONE, AT_MOST_ONE, ONE_UNLESS_NOFD, PER_REGION }

    private static final FrontendRequest[] BY_CODE = values();

    private final int code;
    private final Fds fds;

    FrontendRequest(int code, Fds fds) {
        this.code = code;
        this.fds = fds;
    }

    public int code() {
        return code;
    }

    public Fds fds() {
        return fds;
    }

    /** The request with {@code code}, or null for an unknown code. */
    public static FrontendRequest of(int code) {
        return code >= 0 && code < BY_CODE.length ? BY_CODE[code] : null;
    }
}
