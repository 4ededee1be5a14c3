package dev.vhostdevice.scmi;

import java.util.List;

/**
 * The Base protocol (0x10), version 2.0 (DEN0056 v3.x §4.2): discovery of the vendor, the implementation, the
 * protocols and the agents. There is one agent, the guest (id 1, "OSPM"); id 0 is the platform itself. The
 * optional messages (NOTIFY_ERRORS and the permission messages) are not implemented and answer NOT_SUPPORTED.
 */
public final class BaseProtocol extends ScmiProtocol {
    public static final int ID = 0x10;
    public static final int VERSION = 0x2_0000;
    public static final int DISCOVER_VENDOR = 0x3;
    public static final int DISCOVER_SUB_VENDOR = 0x4;
    public static final int DISCOVER_IMPLEMENTATION_VERSION = 0x5;
    public static final int DISCOVER_LIST_PROTOCOLS = 0x6;
    public static final int DISCOVER_AGENT = 0x7;
    /** DISCOVER_AGENT's "the agent that sends this". */
    public static final int CALLING_AGENT = 0xFFFF_FFFF;
    public static final int PLATFORM_AGENT_ID = 0;
    public static final int GUEST_AGENT_ID = 1;
    public static final String VENDOR = "vhost-device";
    public static final String SUB_VENDOR = "java";
    /** This implementation's version, 0.1.0 as major 31:16, minor 15:8, patch 7:0 (the format is vendor's). */
    public static final int IMPLEMENTATION_VERSION = 0x0000_0100;

    private static final byte[] VENDOR_NAME = ScmiResponse.name(VENDOR);
    private static final byte[] SUB_VENDOR_NAME = ScmiResponse.name(SUB_VENDOR);
    private static final byte[] PLATFORM_NAME = ScmiResponse.name("platform");
    private static final byte[] GUEST_NAME = ScmiResponse.name("OSPM");

    /** The other protocols' ids, ascending: what DISCOVER_LIST_PROTOCOLS pages through. */
    private final byte[] protocolIds;

    /** Base for a platform whose other protocols are {@code others}; only the {@linkplain #listed listed} count. */
    public BaseProtocol(List<ScmiProtocol> others) {
        super(ID, VERSION, -1);
        protocolIds = new byte[(int) others.stream().filter(ScmiProtocol::listed).count()];
        int i = 0;
        for (ScmiProtocol p : others.stream().filter(ScmiProtocol::listed).sorted(
                java.util.Comparator.comparingInt(ScmiProtocol::id)).toList()) {
            protocolIds[i++] = (byte) p.id();
        }
    }

    @Override
    protected int parameterCount(int messageId) {
        return switch (messageId) {
            case DISCOVER_VENDOR, DISCOVER_SUB_VENDOR, DISCOVER_IMPLEMENTATION_VERSION -> 0;
            case DISCOVER_LIST_PROTOCOLS, DISCOVER_AGENT -> 1;
            default -> commonParameterCount(messageId);
        };
    }

    @Override
    protected void protocolAttributes(ScmiResponse response) {
        // bits 7:0 protocols other than base, 15:8 agents (the platform is not counted)
        response.putInt(protocolIds.length | 1 << 8);
    }

    @Override
    protected void handle(ScmiRequest request, ScmiResponse response) {
        switch (request.messageId()) {
            case DISCOVER_VENDOR -> response.status(ScmiStatus.SUCCESS).putName(VENDOR_NAME);
            case DISCOVER_SUB_VENDOR -> response.status(ScmiStatus.SUCCESS).putName(SUB_VENDOR_NAME);
            case DISCOVER_IMPLEMENTATION_VERSION -> response.status(ScmiStatus.SUCCESS).putInt(IMPLEMENTATION_VERSION);
            case DISCOVER_LIST_PROTOCOLS -> listProtocols(Integer.toUnsignedLong(request.parameter(0)), response);
            case DISCOVER_AGENT -> discoverAgent(request.parameter(0), response);
            default -> response.status(ScmiStatus.NOT_SUPPORTED);
        }
    }

    /** As many ids after {@code skip} as the agent's buffer holds, four to a word. */
    private void listProtocols(long skip, ScmiResponse response) {
        if (skip > protocolIds.length) {
            response.status(ScmiStatus.INVALID_PARAMETERS);
            return;
        }
        int remaining = protocolIds.length - (int) skip;
        int fit = Math.max(0, (response.room() - 8) / 4) * 4;
        int count = Math.min(remaining, fit);
        response.status(ScmiStatus.SUCCESS).putInt(count).putPackedBytes(protocolIds, (int) skip, count);
    }

    private static void discoverAgent(int agentId, ScmiResponse response) {
        if (agentId == PLATFORM_AGENT_ID) {
            response.status(ScmiStatus.SUCCESS).putInt(PLATFORM_AGENT_ID).putName(PLATFORM_NAME);
        } else if (agentId == GUEST_AGENT_ID || agentId == CALLING_AGENT) {
            response.status(ScmiStatus.SUCCESS).putInt(GUEST_AGENT_ID).putName(GUEST_NAME);
        } else {
            response.status(ScmiStatus.NOT_FOUND);
        }
    }
}
