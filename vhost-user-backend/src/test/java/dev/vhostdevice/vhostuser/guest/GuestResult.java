package dev.vhostdevice.vhostuser.guest;

/**
 * How a guest run ended: the guest command's exit status (124 timeout, 125 no result: QEMU failed or the guest
 * crashed), its output, what run-guest.sh reported (its summary and QEMU's own errors), and the whole console.
 */
public record GuestResult(GuestBench.Qemu qemu, int status, String output, String summary, String console) {

    /** A failure message with everything needed to see why. */
    public String describe() {
        String tail = console.length() > 4000 ? console.substring(console.length() - 4000) : console;
        return qemu + ": status " + status + "\n--- output\n" + output + "\n--- summary\n" + summary
                + "\n--- console (tail)\n" + tail;
    }

    /** The value of the first output line of the form {@code key=value}, or null. */
    public String value(String key) {
        for (String line : output.split("\n")) {
            String l = line.strip();
            if (l.startsWith(key + "=")) {
                return l.substring(key.length() + 1);
            }
        }
        return null;
    }
}
