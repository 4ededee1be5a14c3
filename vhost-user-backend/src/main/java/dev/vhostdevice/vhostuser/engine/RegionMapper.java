package dev.vhostdevice.vhostuser.engine;

import dev.vhostdevice.vhostuser.protocol.Payload.MemoryRegion;
import dev.vhostdevice.vhostuser.protocol.ProtocolException;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import dev.vhostdevice.virtqueue.memory.GuestMemory;

/**
 * Turns one region description and its fd into mapped guest memory. The standard kind maps the fd
 * (memfd, hugetlbfs) with mmap; a Xen kind (XEN_MMAP: foreign or grant mappings through privcmd/gntdev) slots
 * in here without touching the table logic. The mapper never keeps {@code fd}; the caller closes it.
 */
public interface RegionMapper {

    /** A single-region memory owning its mapping (closing it unmaps). */
    GuestMemory map(MemoryRegion region, int fd) throws ProtocolException, ErrnoException;
}
