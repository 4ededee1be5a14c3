package dev.vhostdevice.i2c;

/**
 * A bus the guest's requests go to: a host adapter ({@code /dev/i2c-N}) or the simulated one. Shared by the
 * devices of every socket (as upstream shares its adapters), so implementations are thread-safe.
 */
public sealed interface I2cAdapter extends AutoCloseable permits HostAdapter, SimulatedAdapter {
    /** Status of a transfer that went through. */
    int OK = 0;

    /**
     * Runs the messages of {@code transfer} as one bus transaction; read messages are filled in place.
     * Returns {@link #OK} or a positive errno.
     */
    int transfer(I2cTransfer transfer);

    /** For logs and messages: {@code /dev/i2c-3 ("name")} or {@code sim}. */
    String describe();

    @Override
    void close();
}
