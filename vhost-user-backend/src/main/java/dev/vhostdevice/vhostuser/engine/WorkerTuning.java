package dev.vhostdevice.vhostuser.engine;

import dev.vhostdevice.vhostuser.sys.ThreadPlacement;
import java.util.Arrays;

/**
 * How a session's worker waits for the guest (the common {@code --poll-us} and {@code --worker-cpus} options).
 *
 * @param pollNanos how long the worker keeps polling the available rings after serving a kick before it goes
 *                  back to sleep in epoll (0: never polls). While it polls the driver does not kick (notifications
 *                  stay off), so a guest sending one request after another skips the kick and the worker's
 *                  wake-up; a quiet guest costs nothing once the budget has passed.
 * @param cpus      the CPUs the worker thread may run on (empty: wherever the scheduler puts it)
 */
public record WorkerTuning(long pollNanos, int[] cpus) {
    /** Chosen by measurement on a 2-CPU machine shared with the guest's vCPU (BENCHMARKS.md, "Request latency"). */
    public static final long DEFAULT_POLL_NANOS = 0;
    /** A sane bound (a guest that takes this long between requests is not waiting on us; tests use it). */
    public static final long MAX_POLL_NANOS = 1_000_000_000;
    public static final WorkerTuning DEFAULT = new WorkerTuning(DEFAULT_POLL_NANOS, new int[0]);
    /** No polling, no placement: the worker sleeps in epoll between kicks (embedding hosts, tests). */
    public static final WorkerTuning SLEEPING = new WorkerTuning(0, new int[0]);

    public WorkerTuning {
        if (pollNanos < 0 || pollNanos > MAX_POLL_NANOS) {
            throw new IllegalArgumentException("poll budget must be 0 to " + MAX_POLL_NANOS / 1000 + " µs, got "
                    + pollNanos / 1000 + " µs");
        }
        cpus = cpus.clone();
        for (int cpu : cpus) {
            if (cpu < 0 || cpu >= ThreadPlacement.MAX_CPUS) {
                throw new IllegalArgumentException("CPU " + cpu + " out of range 0-" + (ThreadPlacement.MAX_CPUS - 1));
            }
        }
    }

    @Override
    public int[] cpus() {
        return cpus.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof WorkerTuning t && t.pollNanos == pollNanos && Arrays.equals(t.cpus, cpus);
    }

    @Override
    public int hashCode() {
        return Long.hashCode(pollNanos) * 31 + Arrays.hashCode(cpus);
    }

    @Override
    public String toString() {
        return "WorkerTuning[poll=" + pollNanos / 1000 + " µs, cpus=" + (cpus.length == 0 ? "any" : Arrays.toString(cpus))
                + "]";
    }
}
