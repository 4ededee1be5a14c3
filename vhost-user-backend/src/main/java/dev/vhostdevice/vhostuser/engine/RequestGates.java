package dev.vhostdevice.vhostuser.engine;

import dev.vhostdevice.vhostuser.protocol.FrontendRequest;
import dev.vhostdevice.vhostuser.protocol.ProtocolException;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import dev.vhostdevice.vhostuser.protocol.VirtioFeatures;

/** The feature each request needs negotiated first (the Gate column of vhost-user-protocol.md §2.1). */
final class RequestGates {
    private RequestGates() {
    }

    static void check(VhostUserSession session, FrontendRequest request) throws ProtocolException {
        ProtocolFeature needed = switch (request) {
            case GET_QUEUE_NUM -> ProtocolFeature.MQ;
            case SET_LOG_BASE, SET_LOG_FD -> ProtocolFeature.LOG_SHMFD;
            case SEND_RARP -> ProtocolFeature.RARP;
            case NET_SET_MTU -> ProtocolFeature.MTU;
            case SET_BACKEND_REQ_FD -> ProtocolFeature.BACKEND_REQ;
            case SET_VRING_ENDIAN -> ProtocolFeature.CROSS_ENDIAN;
            case GET_CONFIG, SET_CONFIG -> ProtocolFeature.CONFIG;
            case CREATE_CRYPTO_SESSION, CLOSE_CRYPTO_SESSION -> ProtocolFeature.CRYPTO_SESSION;
            case POSTCOPY_ADVISE, POSTCOPY_LISTEN, POSTCOPY_END -> ProtocolFeature.PAGEFAULT;
            case GET_INFLIGHT_FD, SET_INFLIGHT_FD -> ProtocolFeature.INFLIGHT_SHMFD;
            case RESET_DEVICE -> ProtocolFeature.RESET_DEVICE;
            case VRING_KICK -> ProtocolFeature.INBAND_NOTIFICATIONS;
            case GET_MAX_MEM_SLOTS, ADD_MEM_REG, REM_MEM_REG -> ProtocolFeature.CONFIGURE_MEM_SLOTS;
            case SET_STATUS, GET_STATUS -> ProtocolFeature.STATUS;
            case GET_SHARED_OBJECT -> ProtocolFeature.SHARED_OBJECT;
            case SET_DEVICE_STATE_FD, CHECK_DEVICE_STATE -> ProtocolFeature.DEVICE_STATE;
            case GET_SHMEM_CONFIG -> ProtocolFeature.SHMEM;
            default -> null;
        };
        if (needed != null && !session.protocolAcked(needed)) {
            throw ProtocolException.invalid("protocol feature " + needed + " not negotiated");
        }
        if (request == FrontendRequest.SET_VRING_ENABLE
                && !session.featureAcked(VirtioFeatures.VHOST_USER_F_PROTOCOL_FEATURES)) {
            throw ProtocolException.invalid("VHOST_USER_F_PROTOCOL_FEATURES not negotiated");
        }
        if (request == FrontendRequest.IOTLB_MSG && !session.featureAcked(VirtioFeatures.VIRTIO_F_ACCESS_PLATFORM)) {
            throw ProtocolException.invalid("VIRTIO_F_ACCESS_PLATFORM not negotiated");
        }
    }
}
