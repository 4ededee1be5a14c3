package dev.vhostdevice.i2c;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The device list: upstream's grammar and validation (minus the off-by-one), sysfs names, opening the bus. */
class DeviceListTest {
    @TempDir
    Path sysfs;

    @Test
    void numbersNamesAndSimAreAdaptersWithDecimalAddresses() {
        DeviceList list = DeviceList.parse(" 6:32:41 , my adapter:10,sim:80 ");
        assertEquals(List.of(
                new DeviceList.Entry(new DeviceList.Numbered(6), List.of(32, 41)),
                new DeviceList.Entry(new DeviceList.Named("my adapter"), List.of(10)),
                new DeviceList.Entry(new DeviceList.Simulated(), List.of(80))), list.entries());
    }

    @Test
    void anAdapterWithoutAddressesIsAccepted() {
        assertEquals(List.of(), DeviceList.parse("3").entries().getFirst().addresses());
    }

    @Test
    void addresses0To127AreAccepted() {
        assertEquals(List.of(0, 127), DeviceList.parse("sim:0:127").entries().getFirst().addresses());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "sim:128|--device-list: adapter sim: address 128 is out of the 7-bit range 0 to 127",
        "1:0x50|--device-list: adapter 1: address '0x50' is not a decimal number from 0 to 127",
        "1:-1|--device-list: adapter 1: address '-1' is not a decimal number from 0 to 127",
        "1:|--device-list: adapter 1: address '' is not a decimal number from 0 to 127",
        "1:0050|--device-list: adapter 1: address '0050' is not a decimal number from 0 to 127",
        "1:80:80|--device-list: address 80 is listed twice (the guest sees one bus: an address can be on one adapter only)",
        "1:80,2:80|--device-list: address 80 is listed twice (the guest sees one bus: an address can be on one adapter only)",
        "1:80,1:81|--device-list: adapter 1 is listed twice",
        "sim:80,sim:81|--device-list: adapter sim is listed twice",
        "foo:1,foo:2|--device-list: adapter foo is listed twice",
        "1:80,,2:81|--device-list: entry '' names no adapter",
        ":80|--device-list: entry ':80' names no adapter",
        "99999999999:1|--device-list: adapter number 99999999999 is out of range",
    })
    void badListsAreRefusedWithOneLine(String list, String message) {
        assertEquals(message, assertThrows(IllegalArgumentException.class, () -> DeviceList.parse(list)).getMessage());
    }

    @Test
    void anEmptyListIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> DeviceList.parse("  "));
    }

    private void adapter(String dir, String name) throws Exception {
        Files.createDirectories(sysfs.resolve(dir));
        if (name != null) {
            Files.writeString(sysfs.resolve(dir).resolve("name"), name + "\n");
        }
    }

    @Test
    void aNameIsLookedUpAmongAdaptersInSysfs() throws Exception {
        adapter("i2c-0", "SMBus I801 adapter at f000");
        adapter("i2c-7", "my adapter");
        adapter("7-0050", "my adapter"); // a client device, not an adapter
        adapter("i2c-9", null); // no readable name: skipped, not fatal (upstream fails here)
        assertEquals(7, I2cBus.resolve("my adapter", sysfs));
    }

    @Test
    void anUnknownOrAmbiguousNameIsRefused() throws Exception {
        adapter("i2c-1", "twin");
        adapter("i2c-4", "twin");
        assertEquals("--device-list: no I2C adapter is named 'other'",
                assertThrows(IllegalArgumentException.class, () -> I2cBus.resolve("other", sysfs)).getMessage());
        assertEquals("--device-list: adapters i2c-1, i2c-4 share the name 'twin'",
                assertThrows(IllegalArgumentException.class, () -> I2cBus.resolve("twin", sysfs)).getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> I2cBus.resolve("x", sysfs.resolve("missing"))).getMessage().contains("is not readable"));
    }

    @Test
    void theBusMapsEachAddressToItsAdapter() throws Exception {
        adapter("i2c-5", "named");
        ScriptedHost host = new ScriptedHost();
        try (I2cBus bus = I2cBus.open(DeviceList.parse("3:32:33,named:40,sim:80"), host, sysfs)) {
            assertInstanceOf(HostAdapter.class, bus.adapterFor(32));
            assertSame(bus.adapterFor(32), bus.adapterFor(33));
            assertEquals("/dev/i2c-5 (\"named\")", bus.adapterFor(40).describe());
            assertInstanceOf(SimulatedAdapter.class, bus.adapterFor(80));
            assertNull(bus.adapterFor(81));
            assertNull(bus.adapterFor(-1));
            assertNull(bus.adapterFor(128));
            assertEquals(List.of("open /dev/i2c-3", "funcs", "slave 0x20", "slave 0x21", "open /dev/i2c-5", "funcs",
                    "slave 0x28"), host.calls);
        }
        assertEquals(List.of(ScriptedHost.FD, ScriptedHost.FD), host.closed);
    }

    @Test
    void aNameResolvingToAListedNumberIsADuplicateAndOpenedAdaptersAreClosed() throws Exception {
        adapter("i2c-3", "three");
        ScriptedHost host = new ScriptedHost();
        assertEquals("--device-list: adapter i2c-3 is listed twice (as 'three' too)",
                assertThrows(IllegalArgumentException.class,
                        () -> I2cBus.open(DeviceList.parse("3:32,three:40"), host, sysfs)).getMessage());
        assertEquals(List.of(ScriptedHost.FD), host.closed);
    }
}
