package dev.vhostdevice.rng;

import dev.vhostdevice.virtqueue.ChainWriter;
import java.io.Closeable;

/**
 * Where the device's random bytes come from. Fills guest memory piece by piece ({@link ChainWriter.Source}):
 * returns the bytes written, or -1 at end of data. Shared by the devices of all sockets, so thread-safe.
 */
public interface EntropySource extends ChainWriter.Source, Closeable {
    /** For messages: the file or device behind the source. */
    String name();
}
