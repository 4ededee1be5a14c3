package dev.vhostdevice.virtqueue.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Guest memory mapped from real memfds through the FFM seam, and the seam substituted to inject failures. */
class MappedGuestMemoryTest {
    private final MemoryMapper mapper = MemoryMapper.system();
    private int fd = -1;

    @BeforeEach
    void setUp() throws Exception {
        fd = mapper.createMemoryFile("guest-ram", 0x40000);
    }

    @AfterEach
    void tearDown() {
        mapper.close(fd);
    }

    @Test
    void theFileSizeIsReadWithFstat() throws Exception {
        assertEquals(0x40000, mapper.fileSize(fd));
    }

    @Test
    void aPlainMemoryFileIsResizableAndASealedOneIsNot() throws Exception {
        // Without MFD_ALLOW_SEALING the kernel sets only F_SEAL_SEAL (1): the plain file can still be resized.
        assertEquals(0x1, mapper.seals(fd));
        int sealed = mapper.createSealedMemoryFile("shared-area", 0x3000);
        try {
            assertEquals(0x3000, mapper.fileSize(sealed));
            assertEquals(MemoryMapper.SEALS_FIXED_SIZE, mapper.seals(sealed) & MemoryMapper.SEALS_FIXED_SIZE);
        } finally {
            mapper.close(sealed);
        }
        ErrnoException e = assertThrows(ErrnoException.class, () -> mapper.createSealedMemoryFile("empty", 0));
        assertEquals(Errno.EINVAL, e.errno());
    }

    @Test
    void theAreaMapperMapsAFileAreaAsAOneRegionMemory() throws Exception {
        try (GuestMemory area = new AreaMapper(mapper).mapShared(0, 0x1000, fd, 0x2000)) {
            assertEquals(1, area.regionCount());
            assertEquals(0x1000, area.region(0).size());
        }
        assertThrows(IllegalArgumentException.class, () -> new AreaMapper(mapper).mapShared(0, 0x1000, fd, 0x40000));
    }

    @Test
    void twoMappingsOfOneFileShareTheirBytes() throws Exception {
        try (GuestMemory a = GuestMemory.builder().mapFile(0x1000_0000L, 0x40000, fd, 0).build();
                GuestMemory b = GuestMemory.builder().mapFile(0, 0x10000, fd, 0x30000).build()) {
            a.slice(0x1000_0000L + 0x30010, 8).set(ValueLayout.JAVA_LONG, 0, 0x1122334455667788L);
            assertEquals(0x1122334455667788L, b.slice(0x10, 8).get(ValueLayout.JAVA_LONG, 0));
        }
    }

    @Test
    void anOffsetThatIsNotPageAlignedIsMappedFromThePageBelow() throws Exception {
        try (GuestMemory whole = GuestMemory.builder().mapFile(0, 0x40000, fd, 0).build();
                GuestMemory odd = GuestMemory.builder().mapFile(0x8000_0000L, 0x100, fd, 0x1234).build()) {
            whole.slice(0x1234, 1).set(ValueLayout.JAVA_BYTE, 0, (byte) 77);
            assertEquals(77, odd.slice(0x8000_0000L, 1).get(ValueLayout.JAVA_BYTE, 0));
            assertEquals(0x100, odd.region(0).size());
        }
    }

    @Test
    void aRegionLargerThanItsFileIsRefusedBeforeMapping() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> GuestMemory.builder().mapFile(0, 0x40001, fd, 0));
        assertTrue(e.getMessage().contains("exceeds the file"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> GuestMemory.builder().mapFile(0, 0x1000, fd, 0x3F001));
        assertThrows(IllegalArgumentException.class,
                () -> GuestMemory.builder().mapFile(0, 0x1000, fd, Long.MAX_VALUE - 0x10));
    }

    @Test
    void aClosedFdIsAnErrnoNotACrash() throws Exception {
        int closed = mapper.createMemoryFile("closed", 0x1000);
        mapper.close(closed);
        ErrnoException e = assertThrows(ErrnoException.class,
                () -> GuestMemory.builder().mapFile(0, 0x1000, closed, 0));
        assertEquals(Errno.EBADF, e.errno());
        assertEquals("fstat", e.call());
    }

    @Test
    void theMappingOutlivesTheFdAndEndsWithTheMemory() throws Exception {
        int own = mapper.createMemoryFile("short-lived", 0x1000);
        GuestMemory memory = GuestMemory.builder().mapFile(0, 0x1000, own, 0).build();
        mapper.close(own);
        MemorySegment ram = memory.slice(0, 0x1000);
        ram.set(ValueLayout.JAVA_INT, 0, 5);
        assertEquals(5, ram.get(ValueLayout.JAVA_INT, 0));
        memory.close();
        assertFalse(ram.scope().isAlive());
    }

    /** A seam over plain native memory whose mmap fails at call {@code failAt} (never if 0). */
    private static final class ScriptedMapper implements MemoryMapper {
        final List<MemorySegment> mapped = new ArrayList<>();
        private final int failAt;
        private int calls;

        ScriptedMapper(int failAt) {
            this.failAt = failAt;
        }

        @Override
        public long fileSize(int fd) {
            return 0x10000;
        }

        @Override
        public MemorySegment map(int fd, long offset, long length, Arena arena) throws ErrnoException {
            if (++calls == failAt) {
                throw new ErrnoException("mmap", Errno.ENOMEM);
            }
            MemorySegment segment = arena.allocate(length, 4096);
            mapped.add(segment);
            return segment;
        }

        @Override
        public int createMemoryFile(String name, long size) {
            throw new UnsupportedOperationException();
        }

        @Override
        public int createSealedMemoryFile(String name, long size) {
            throw new UnsupportedOperationException();
        }

        @Override
        public int seals(int fd) {
            throw new UnsupportedOperationException();
        }

        @Override
        public void close(int fd) {
        }
    }

    @Test
    void aFailedMapLeavesNothingMappedOnceTheBuilderIsDiscarded() {
        ScriptedMapper seam = new ScriptedMapper(2);
        GuestMemory.Builder builder = GuestMemory.builder(seam);
        ErrnoException e = assertThrows(ErrnoException.class,
                () -> builder.mapFile(0, 0x1000, 3, 0).mapFile(0x1000, 0x1000, 4, 0));
        assertEquals(Errno.ENOMEM, e.errno());
        builder.discard();
        assertFalse(seam.mapped.getFirst().scope().isAlive());
    }

    @Test
    void overlappingMappedRegionsReleaseTheirMappingsWhenRefused() {
        ScriptedMapper seam = new ScriptedMapper(0);
        GuestMemory.Builder builder = GuestMemory.builder(seam);
        assertThrows(IllegalArgumentException.class,
                () -> builder.mapFile(0, 0x2000, 3, 0).mapFile(0x1000, 0x1000, 4, 0).build());
        assertFalse(seam.mapped.getFirst().scope().isAlive());
    }
}
