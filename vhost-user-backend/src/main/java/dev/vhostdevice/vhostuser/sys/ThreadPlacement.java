package dev.vhostdevice.vhostuser.sys;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * The native seam for CPU placement: {@code sched_setaffinity(2)} of the calling thread, once when a worker
 * starts (linked at first use, so a daemon that is not asked to pin never links it).
 */
public final class ThreadPlacement {
    /** CPUs a mask may name: glibc's cpu_set_t (1024 bits). */
    public static final int MAX_CPUS = 1024;

    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));

    private ThreadPlacement() {
    }

    private static final class Native {
        static final MethodHandle SCHED_SETAFFINITY = Linker.nativeLinker().downcallHandle(
                Linker.nativeLinker().defaultLookup().find("sched_setaffinity").orElseThrow(),
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS),
                Linker.Option.captureCallState("errno"));
    }

    /** Restricts the calling thread to {@code cpus} (not empty, each below {@link #MAX_CPUS}). */
    public static void pinCurrentThread(int[] cpus) throws ErrnoException {
        if (cpus.length == 0) {
            throw new IllegalArgumentException("no CPU given");
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment mask = arena.allocate(MAX_CPUS / 8, 8);
            for (int cpu : cpus) {
                if (cpu < 0 || cpu >= MAX_CPUS) {
                    throw new IllegalArgumentException("CPU " + cpu + " out of range 0-" + (MAX_CPUS - 1));
                }
                long word = mask.getAtIndex(JAVA_LONG, cpu / 64);
                mask.setAtIndex(JAVA_LONG, cpu / 64, word | (1L << (cpu % 64)));
            }
            MemorySegment state = arena.allocate(CALL_STATE);
            int rc = (int) Native.SCHED_SETAFFINITY.invokeExact(state, 0, mask.byteSize(), mask);
            if (rc != 0) {
                throw new ErrnoException("sched_setaffinity", (int) ERRNO.get(state, 0L));
            }
        } catch (ErrnoException | IllegalArgumentException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("sched_setaffinity downcall failed", t);
        }
    }
}
