package dev.vhostdevice.scmi;

import java.util.ArrayList;
import java.util.List;

/**
 * The SCMI platform one guest talks to: Base plus the configured protocols, each command routed by its
 * protocol id. Independent of virtio: {@link ScmiDevice} carries its messages.
 *
 * <p>Answers (DEN0056 §4.1.4): a message type other than command, an unknown protocol or message:
 * NOT_SUPPORTED; a payload that is not the message's length: PROTOCOL_ERROR; a reply larger than the agent's
 * buffer: COMMS_ERROR. State is per guest (a platform per connection).
 */
public final class ScmiPlatform {
    private final ScmiProtocol[] byId = new ScmiProtocol[256];
    private final List<ScmiProtocol> protocols;
    private final SensorProtocol sensors;

    /** A platform with {@code sensors} and the other protocols (clock, voltage, power) in {@code others}. */
    public ScmiPlatform(SensorProtocol sensors, List<ScmiProtocol> others) {
        this.sensors = sensors;
        List<ScmiProtocol> all = new ArrayList<>();
        all.add(sensors);
        all.addAll(others);
        List<ScmiProtocol> withBase = new ArrayList<>();
        withBase.add(new BaseProtocol(all));
        withBase.addAll(all);
        for (ScmiProtocol p : withBase) {
            if (!p.listed()) {
                continue; // a protocol with no resource is not there for the agent: NOT_SUPPORTED, as unknown ones
            }
            if (byId[p.id()] != null) {
                throw new IllegalArgumentException("protocol 0x" + Integer.toHexString(p.id()) + " given twice");
            }
            byId[p.id()] = p;
        }
        this.protocols = List.copyOf(withBase);
    }

    public SensorProtocol sensors() {
        return sensors;
    }

    /** Answers {@code request} into {@code response}, which holds the header already and is limited to the agent's buffer. */
    public void process(ScmiRequest request, ScmiResponse response) {
        int header = request.header();
        ScmiProtocol protocol = byId[request.protocolId()];
        try {
            if (ScmiHeader.type(header) != ScmiHeader.TYPE_COMMAND || protocol == null) {
                response.status(ScmiStatus.NOT_SUPPORTED);
            } else {
                protocol.dispatch(request, response);
            }
        } catch (ScmiResponse.Overflow e) {
            response.begin(header, response.limit()).status(ScmiStatus.COMMS_ERROR);
        }
    }

    /** The event channel came or went (VIRTIO_SCMI_F_P2A_CHANNELS negotiated or not). */
    public void setEventsAvailable(boolean available) {
        sensors.setEventsAvailable(available);
    }

    /** Every protocol back to its start-up state. */
    public void reset() {
        for (ScmiProtocol p : protocols) {
            p.reset();
        }
    }
}
