package dev.vhostdevice.vsock;

/**
 * Connections by (host port, guest port), open addressing with linear probing and backward-shift deletion: a
 * lookup per packet allocates nothing (a {@code HashMap<Long, …>} would box the key).
 */
final class ConnectionTable {
    private long[] keys;
    private Connection[] values;
    private int size;

    ConnectionTable() {
        keys = new long[64];
        values = new Connection[64];
    }

    static long key(int hostPort, int guestPort) {
        return ((long) hostPort << 32) | (guestPort & 0xFFFF_FFFFL);
    }

    int size() {
        return size;
    }

    private int slot(long key) {
        long h = key * 0x9E37_79B9_7F4A_7C15L;
        return (int) (h >>> 40) & (keys.length - 1);
    }

    Connection get(long key) {
        int mask = keys.length - 1;
        for (int i = slot(key); values[i] != null; i = (i + 1) & mask) {
            if (keys[i] == key) {
                return values[i];
            }
        }
        return null;
    }

    void put(long key, Connection connection) {
        if ((size + 1) * 2 > keys.length) {
            grow();
        }
        int mask = keys.length - 1;
        int i = slot(key);
        while (values[i] != null) {
            if (keys[i] == key) {
                values[i] = connection;
                return;
            }
            i = (i + 1) & mask;
        }
        keys[i] = key;
        values[i] = connection;
        size++;
    }

    void remove(long key) {
        int mask = keys.length - 1;
        int i = slot(key);
        while (values[i] != null && keys[i] != key) {
            i = (i + 1) & mask;
        }
        if (values[i] == null) {
            return;
        }
        values[i] = null;
        size--;
        // Shift back the entries of the cluster that probed past the hole.
        int hole = i;
        for (int j = (i + 1) & mask; values[j] != null; j = (j + 1) & mask) {
            int home = slot(keys[j]);
            boolean movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
            if (movable) {
                keys[hole] = keys[j];
                values[hole] = values[j];
                values[j] = null;
                hole = j;
            }
        }
    }

    /** Every connection, for close. */
    void forEach(java.util.function.Consumer<Connection> action) {
        for (Connection c : values.clone()) {
            if (c != null) {
                action.accept(c);
            }
        }
    }

    private void grow() {
        long[] oldKeys = keys;
        Connection[] oldValues = values;
        keys = new long[oldKeys.length * 2];
        values = new Connection[oldKeys.length * 2];
        size = 0;
        for (int i = 0; i < oldKeys.length; i++) {
            if (oldValues[i] != null) {
                put(oldKeys[i], oldValues[i]);
            }
        }
    }
}
