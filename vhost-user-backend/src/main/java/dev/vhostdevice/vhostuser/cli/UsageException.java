package dev.vhostdevice.vhostuser.cli;

/**
 * Bad command-line arguments: unknown option, missing value or required option, malformed value. The daemon
 * prints the message on one line, then a hint to try {@code --help}, and exits with status 2.
 */
public final class UsageException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    public UsageException(String message) {
        super(message);
    }
}
