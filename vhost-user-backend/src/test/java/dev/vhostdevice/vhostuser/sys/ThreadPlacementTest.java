package dev.vhostdevice.vhostuser.sys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** sched_setaffinity of the calling thread, checked against what the kernel reports for it. */
class ThreadPlacementTest {

    private static String allowedCpusAfterPinning(int... cpus) throws Exception {
        AtomicReference<Object> result = new AtomicReference<>();
        Thread t = Thread.ofPlatform().start(() -> {
            try {
                ThreadPlacement.pinCurrentThread(cpus);
                result.set(Files.readAllLines(Path.of("/proc/thread-self/status")).stream()
                        .filter(l -> l.startsWith("Cpus_allowed_list:")).findFirst().orElseThrow()
                        .substring("Cpus_allowed_list:".length()).trim());
            } catch (Exception e) {
                result.set(e);
            }
        });
        t.join();
        if (result.get() instanceof Exception e) {
            throw e;
        }
        return (String) result.get();
    }

    @Test
    void aPinnedThreadRunsOnlyOnTheGivenCpu() throws Exception {
        assertEquals("0", allowedCpusAfterPinning(0));
    }

    @Test
    void aCpuTheMachineDoesNotHaveIsRefusedWithEinval() {
        ErrnoException e = assertThrows(ErrnoException.class, () -> allowedCpusAfterPinning(1023));
        assertEquals(dev.vhostdevice.virtqueue.memory.Errno.EINVAL, e.errno());
    }

    @Test
    void outOfRangeAndEmptyListsAreRefusedBeforeTheCall() {
        assertThrows(IllegalArgumentException.class, () -> ThreadPlacement.pinCurrentThread(new int[0]));
        assertThrows(IllegalArgumentException.class, () -> ThreadPlacement.pinCurrentThread(new int[] {1024}));
    }
}
