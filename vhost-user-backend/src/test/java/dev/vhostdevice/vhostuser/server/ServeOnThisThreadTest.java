package dev.vhostdevice.vhostuser.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.frontend.TestFrontend;
import dev.vhostdevice.vhostuser.testkit.EchoDevice;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A server whose accept loop runs on the caller's thread (a daemon's main thread). */
class ServeOnThisThreadTest {
    @TempDir
    Path dir;

    @Test
    void theCallersThreadServesUnderTheSocketsNameAndReturnsWhenClosedFromAnotherThread() throws Exception {
        Path socket = dir.resolve("here.sock");
        VhostUserServer server = VhostUserServer.listen(socket, EchoDevice::new, ServerOptions.DEFAULTS);
        CompletableFuture<String> servingName = new CompletableFuture<>();
        Thread caller = new Thread(() -> server.serveOnThisThread(), "caller");
        try (TestFrontend frontend = TestFrontend.connect(socket)) {
            caller.start();
            frontend.getFeatures(); // answered: the caller's thread accepted and served the connection
            servingName.complete(caller.getName());
        }
        assertEquals("vhost-user here.sock", servingName.get());
        server.close();
        caller.join(TimeUnit.SECONDS.toMillis(10));
        assertFalse(caller.isAlive(), "the loop returned once closed");
        assertEquals("caller", caller.getName(), "the thread got its name back");
        assertFalse(Files.exists(socket), "socket file removed");
        assertEquals(1, server.connectionsServed());
    }

    @Test
    void aServerClosedBeforeItIsServedNeitherWaitsNorServes() throws Exception {
        Path socket = dir.resolve("never.sock");
        VhostUserServer server = VhostUserServer.listen(socket, EchoDevice::new, ServerOptions.DEFAULTS);
        long start = System.nanoTime();
        server.close();
        assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(5), "close did not wait for a loop");
        server.serveOnThisThread(); // returns at once: closed
        assertFalse(Files.exists(socket));
    }
}
