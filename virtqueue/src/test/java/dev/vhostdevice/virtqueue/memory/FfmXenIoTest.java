package dev.vhostdevice.virtqueue.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The real Xen seam's calls that work on any Linux host, Xen or not (xen.md §3.3 item 8). */
class FfmXenIoTest {
    // The host page size decides whether Xen regions are mapped at all: it must be the kernel's, as getconf says.
    @Test
    void pageSizeIsTheHostsAsGetconfReportsIt() throws Exception {
        Process getconf = new ProcessBuilder("getconf", "PAGESIZE").redirectErrorStream(true).start();
        String out = new String(getconf.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).trim();
        getconf.waitFor(10, TimeUnit.SECONDS);
        assertEquals(0, getconf.exitValue(), out);
        assertEquals(Long.parseLong(out), XenIo.system().pageSize());
    }
}
