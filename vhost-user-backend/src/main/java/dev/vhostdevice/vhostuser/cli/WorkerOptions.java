package dev.vhostdevice.vhostuser.cli;

import dev.vhostdevice.vhostuser.engine.WorkerTuning;
import dev.vhostdevice.vhostuser.sys.ThreadPlacement;
import java.util.List;
import java.util.TreeSet;

/**
 * The worker options every device daemon shares: {@code --poll-us} (how long a worker polls the rings after a
 * kick before it sleeps again) and {@code --worker-cpus} (where the workers run).
 */
public final class WorkerOptions {
    public static final Option POLL_US = Option.value(null, "--poll-us", Option.Type.LONG, "US",
            "Microseconds a worker polls the rings for the next request after serving one before it sleeps; "
                    + "0 never polls.").withDefault(Long.toString(WorkerTuning.DEFAULT_POLL_NANOS / 1000));
    public static final Option WORKER_CPUS = Option.value(null, "--worker-cpus", Option.Type.STRING, "LIST",
            "CPUs the device workers may run on, e.g. 1 or 0,2-3 (default: any).");
    public static final List<Option> OPTIONS = List.of(POLL_US, WORKER_CPUS);

    private WorkerTuning tuning = WorkerTuning.DEFAULT;

    /** Takes the values from a parsed command line; throws IllegalArgumentException for bad values. */
    public void read(ParsedArgs args) {
        long micros = args.longValue(POLL_US);
        if (micros < 0 || micros > WorkerTuning.MAX_POLL_NANOS / 1000) {
            throw new IllegalArgumentException("--poll-us must be 0 to " + WorkerTuning.MAX_POLL_NANOS / 1000
                    + ", got " + micros);
        }
        int[] cpus = args.isSet(WORKER_CPUS) ? cpuList(args.string(WORKER_CPUS)) : new int[0];
        tuning = new WorkerTuning(micros * 1000, cpus);
    }

    public WorkerTuning tuning() {
        return tuning;
    }

    /** A CPU list as taskset and /sys print them: {@code N}, {@code N-M}, comma-separated. */
    static int[] cpuList(String list) {
        TreeSet<Integer> cpus = new TreeSet<>();
        for (String part : list.split(",", -1)) {
            String[] range = part.trim().split("-", -1);
            int first;
            int last;
            try {
                first = Integer.parseInt(range[0].trim());
                last = range.length == 2 ? Integer.parseInt(range[1].trim()) : first;
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--worker-cpus: '" + part + "' is not a CPU or range");
            }
            if (range.length > 2 || first < 0 || last < first
                    || last >= ThreadPlacement.MAX_CPUS) {
                throw new IllegalArgumentException("--worker-cpus: '" + part + "' is not a CPU or range of 0-"
                        + (ThreadPlacement.MAX_CPUS - 1));
            }
            for (int cpu = first; cpu <= last; cpu++) {
                cpus.add(cpu);
            }
        }
        return cpus.stream().mapToInt(Integer::intValue).toArray();
    }
}
