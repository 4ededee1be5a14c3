package dev.vhostdevice.scmi;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.scmi.ScmiAgent.Message;
import dev.vhostdevice.vhostuser.guest.DeviceProcess;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The "done when": {@code java -jar vhost-device-scmi.jar -s SOCKET -d fake,name=accel0}, run as a user
 * runs it, serves Linux's probe, a reading, an asynchronous reading and notifications over its socket.
 */
class ScmiJarIT {
    @TempDir
    Path dir;

    @Test
    void theJarServesAnAgentOverItsSocket() throws Exception {
        Path socket = dir.resolve("vscmi.sock");
        try (DeviceProcess jar = DeviceProcess.start(socket, "-s", socket.toString(), "-d", "fake,name=accel0",
                "-d", "power,name=gpu");
                ScmiAgent agent = ScmiAgent.connect(socket)) {
            assertEquals(BaseProtocol.VERSION, agent.callExpecting(4, BaseProtocol.ID, 0).word(1));
            assertEquals("vhost-device", agent.callExpecting(16, BaseProtocol.ID, BaseProtocol.DISCOVER_VENDOR).name(1));
            Message list = agent.call(BaseProtocol.ID, BaseProtocol.DISCOVER_LIST_PROTOCOLS, 0);
            assertEquals(2, list.word(1));
            assertEquals(SensorProtocol.ID << 8 | PowerProtocol.ID, list.word(2));
            assertEquals("accel0", agent.call(SensorProtocol.ID, SensorProtocol.SENSOR_DESCRIPTION_GET, 0).name(5));
            Message reading = agent.call(SensorProtocol.ID, SensorProtocol.SENSOR_READING_GET, 0, 0);
            assertEquals(0, reading.status());
            assertEquals(reading.longAt(1) + 200, reading.longAt(9));

            agent.postEventBuffers(4);
            assertEquals(0, agent.call(SensorProtocol.ID, SensorProtocol.SENSOR_READING_GET, 0, 1).status());
            assertEquals(ScmiHeader.TYPE_DELAYED_RESPONSE, ScmiHeader.type(agent.awaitEvent().header()));
            agent.call(SensorProtocol.ID, SensorProtocol.SENSOR_CONFIG_SET, 0, 2 << 16 | (-2 & 0x1F) << 11 | 1);
            agent.call(SensorProtocol.ID, SensorProtocol.SENSOR_CONTINUOUS_UPDATE_NOTIFY, 0, 1);
            assertEquals(0x5701, agent.awaitEvent().header());
            assertEquals(0x5701, agent.awaitEvent().header());
            assertTrue(jar.isAlive(), jar.log());
        }
    }
}
