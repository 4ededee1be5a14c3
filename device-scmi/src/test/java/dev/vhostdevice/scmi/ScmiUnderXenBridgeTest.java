package dev.vhostdevice.scmi;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.vhostdevice.vhostuser.device.DeviceFactory;
import dev.vhostdevice.vhostuser.xen.XenBridgeContract;
import dev.vhostdevice.vhostuser.xen.XenBridgeSimulator;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * vhost-device-scmi under the Xen bridge: the bridge's device table has no scmi entry (xen.md §1.3: i2c, gpio,
 * fs, vsock), so this runs it as the bridge runs its other 1024-entry devices, with scmi's two queues (cmdq,
 * eventq). Base-protocol commands go through grant and foreign mappings on the cmdq, and an asynchronous sensor
 * reading's delayed response on the eventq: it waits for a buffer, so with requests served one at a time the
 * eventq buffer is posted after the command's immediate answer.
 */
class ScmiUnderXenBridgeTest extends XenBridgeContract {
    private int token;

    @Override
    protected DeviceFactory factory() {
        ScmiCommand command = new ScmiCommand();
        command.parseArgs(new String[] {"-s", dir.resolve("unused.sock").toString(), "-d", "fake"});
        return command.deviceFactory(0);
    }

    @Override
    protected String name() {
        return "scmi";
    }

    @Override
    protected int queueCount() {
        return 2;
    }

    @Override
    protected int configSize() {
        return 0;
    }

    @Override
    protected long driverFeatures() {
        return 1L << ScmiDevice.VIRTIO_SCMI_F_P2A_CHANNELS; // Linux's scmi virtio transport acks it when offered
    }

    /** One command on the cmdq (header and parameters in one readable buffer), its response of {@code words}. */
    private ByteBuffer call(XenBridgeSimulator guest, int protocol, int message, int words, int... parameters)
            throws Exception {
        int header = ScmiHeader.of(protocol, message, ScmiHeader.TYPE_COMMAND, token++ & 0x3FF);
        ByteBuffer request = ByteBuffer.allocate(4 + 4 * parameters.length).order(ByteOrder.LITTLE_ENDIAN);
        request.putInt(header);
        for (int p : parameters) {
            request.putInt(p);
        }
        // Linux's response buffer: larger than any answer here.
        XenBridgeSimulator.Used used = guest.exchange(ScmiDevice.CMDQ, List.of(request.array()), 128);
        assertEquals(4 * words, used.length(), "response length");
        ByteBuffer response = ByteBuffer.wrap(used.bytes()).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(header, response.getInt(0), "the command's header, echoed");
        return response;
    }

    @Override
    protected void exchange(XenBridgeSimulator guest) throws Exception {
        ByteBuffer version = call(guest, BaseProtocol.ID, ScmiProtocol.PROTOCOL_VERSION, 3);
        assertEquals(ScmiStatus.SUCCESS.code, version.getInt(4));
        assertEquals(BaseProtocol.VERSION, version.getInt(8));
        ByteBuffer list = call(guest, BaseProtocol.ID, BaseProtocol.DISCOVER_LIST_PROTOCOLS, 4, 0);
        assertEquals(ScmiStatus.SUCCESS.code, list.getInt(4));
        assertEquals(1, list.getInt(8), "one protocol besides base");
        assertEquals(SensorProtocol.ID, list.getInt(12), "the fake sensor's protocol");
        ByteBuffer unknown = call(guest, 0x99, ScmiProtocol.PROTOCOL_VERSION, 2);
        assertEquals(ScmiStatus.NOT_SUPPORTED.code, unknown.getInt(4), "an unknown protocol: NOT_SUPPORTED");

        ByteBuffer immediate = call(guest, SensorProtocol.ID, SensorProtocol.SENSOR_READING_GET, 2, 0,
                SensorProtocol.READ_ASYNC);
        assertEquals(ScmiStatus.SUCCESS.code, immediate.getInt(4), "an asynchronous read is accepted at once");
        XenBridgeSimulator.Used event = guest.exchange(ScmiDevice.EVENTQ, List.of(), 128);
        assertEquals(4 + 4 + 4 + 3 * 16, event.length(), "header, status, sensor id, three axes' readings");
        ByteBuffer delayed = ByteBuffer.wrap(event.bytes()).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(ScmiHeader.delayedResponse(immediate.getInt(0)), delayed.getInt(0), "the command's, type 2");
        assertEquals(ScmiStatus.SUCCESS.code, delayed.getInt(4));
        assertEquals(0, delayed.getInt(8), "sensor id");
    }
}
