package dev.vhostdevice.vhostuser.protocol;

/** Back-end → front-end request codes, on the socket from SET_BACKEND_REQ_FD. */
public enum BackendRequest {
    BACKEND_IOTLB_MSG(1),
    BACKEND_CONFIG_CHANGE_MSG(2),
    BACKEND_VRING_HOST_NOTIFIER_MSG(3),
    BACKEND_VRING_CALL(4),
    BACKEND_VRING_ERR(5),
    BACKEND_SHARED_OBJECT_ADD(6),
    BACKEND_SHARED_OBJECT_REMOVE(7),
    BACKEND_SHARED_OBJECT_LOOKUP(8),
    BACKEND_SHMEM_MAP(9),
    BACKEND_SHMEM_UNMAP(10);

    private final int code;

    BackendRequest(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }
}
