#!/usr/bin/env python3
"""Minimal vhost-user rng back-end (Python 3 stdlib only) to check the bench's vhost-user plumbing.

NOT the project's back-end: it exists so bench/selftest.sh can prove, before the Java back-end exists,
that the QEMU arguments run-guest.sh builds (-u rng=SOCK, shared memfd RAM, reconnect options) carry
real guest I/O on both QEMU versions. One device, one queue, split ring, served from one thread.

Usage: vu-rng-stub.py SOCKET [--connections N] [--exit-after-requests K]
  --connections N          serve N front-end connections one after the other, then exit (default 1)
  --exit-after-requests K  drop each connection after K requests (a simulated back-end crash)
Logs one line per vhost-user message to stderr when BENCH_STUB_DEBUG=1.
"""
import mmap, os, select, socket, struct, sys

# vhost-user request codes (only those QEMU sends to rng)
GET_FEATURES, SET_FEATURES, SET_OWNER, RESET_OWNER, SET_MEM_TABLE = 1, 2, 3, 4, 5
SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE, GET_VRING_BASE = 8, 9, 10, 11
SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR = 12, 13, 14
GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, GET_QUEUE_NUM, SET_VRING_ENABLE = 15, 16, 17, 18
F_REPLY, F_NEED_REPLY = 0x4, 0x8
# Features: VERSION_1 | PROTOCOL_FEATURES | RING_EVENT_IDX | RING_INDIRECT_DESC (QEMU 7.2 gives the guest
# the last two anyway); protocol features MQ | REPLY_ACK.
FEATURES = (1 << 32) | (1 << 30) | (1 << 29) | (1 << 28)
PROTOCOL_FEATURES = 0x1 | 0x8
EVENT_IDX = 1 << 29
DESC_NEXT, DESC_WRITE, DESC_INDIRECT = 1, 2, 4
DEBUG = os.environ.get("BENCH_STUB_DEBUG") == "1"


def log(*a):
    if DEBUG:
        print("vu-rng-stub:", *a, file=sys.stderr, flush=True)


class Conn:
    def __init__(self, sock, exit_after):
        self.sock, self.exit_after = sock, exit_after
        self.regions = []  # (gpa, size, uva, mmap, mmap_offset)
        self.features = self.protocol = 0
        self.num = 0
        self.desc = self.avail = self.used = None  # guest physical or uva already translated to (map, off)
        self.last_avail = 0
        self.kick = self.call = None
        self.enabled = False
        self.requests = 0

    # --- memory
    def _find(self, addr, key):  # key 0: guest physical, 2: QEMU virtual
        for r in self.regions:
            if r[key] <= addr < r[key] + r[1]:
                return r[3], r[4] + addr - r[key]
        raise ValueError("address %#x not in guest memory" % addr)

    def gpa(self, addr):
        return self._find(addr, 0)

    def u16(self, loc, off=0):
        m, o = loc
        return struct.unpack_from("<H", m, o + off)[0]

    def put(self, loc, off, fmt, *v):
        m, o = loc
        struct.pack_into(fmt, m, o + off, *v)

    # --- queue
    def chain(self, head):
        """Yield (gpa, len, flags) of a descriptor chain, following indirect tables."""
        table, size, i = self.desc, self.num, head
        while True:
            m, o = table
            addr, length, flags, nxt = struct.unpack_from("<QIHH", m, o + 16 * i)
            if flags & DESC_INDIRECT:
                table, size, i = self.gpa(addr), length // 16, 0
                continue
            yield addr, length, flags
            if not flags & DESC_NEXT:
                return
            i = nxt

    def process(self):
        if not (self.enabled and self.kick is not None and self.desc):
            return
        served = 0
        while True:
            avail_idx = self.u16(self.avail, 2)
            while self.last_avail != avail_idx:
                head = self.u16(self.avail, 4 + 2 * (self.last_avail % self.num))
                total = 0
                for addr, length, flags in self.chain(head):
                    if flags & DESC_WRITE:
                        m, o = self.gpa(addr)
                        m[o:o + length] = os.urandom(length)
                        total += length
                used_idx = self.u16(self.used, 2)
                self.put(self.used, 4 + 8 * (used_idx % self.num), "<II", head, total)
                self.put(self.used, 2, "<H", (used_idx + 1) & 0xFFFF)
                self.last_avail = (self.last_avail + 1) & 0xFFFF
                self.requests += 1
                served += 1
                if self.exit_after and self.requests >= self.exit_after:
                    raise ConnectionAbortedError("exit after %d requests" % self.requests)
            if self.features & EVENT_IDX:
                # avail_event: kick me when the guest adds the entry after last_avail; then re-check, or a
                # buffer added meanwhile would wait for a kick that never comes.
                self.put(self.used, 4 + 8 * self.num, "<H", self.last_avail)
                if self.u16(self.avail, 2) != self.last_avail:
                    continue
            break
        if served and self.call is not None:
            os.write(self.call, struct.pack("<Q", 1))  # always signal: over-notifying is allowed

    # --- messages
    def reply(self, req, payload):
        self.sock.sendall(struct.pack("<III", req, 0x1 | F_REPLY, len(payload)) + payload)

    def handle(self, req, flags, payload, fds):
        log("msg", req, "flags=%#x" % flags, "size", len(payload), "fds", len(fds))
        u64 = struct.unpack_from("<Q", payload)[0] if len(payload) >= 8 else 0
        if req == GET_FEATURES:
            return self.reply(req, struct.pack("<Q", FEATURES))
        if req == GET_PROTOCOL_FEATURES:
            return self.reply(req, struct.pack("<Q", PROTOCOL_FEATURES))
        if req == GET_QUEUE_NUM:
            return self.reply(req, struct.pack("<Q", 1))
        if req == GET_VRING_BASE:
            self.enabled = False
            idx = struct.unpack_from("<I", payload)[0]
            return self.reply(req, struct.pack("<II", idx, self.last_avail))
        if req == SET_FEATURES:
            self.features = u64
        elif req == SET_PROTOCOL_FEATURES:
            self.protocol = u64
        elif req == SET_MEM_TABLE:
            for r in self.regions:
                r[3].close()
            n = struct.unpack_from("<I", payload)[0]
            self.regions = []
            for k in range(n):
                gpa, size, uva, off = struct.unpack_from("<QQQQ", payload, 8 + 32 * k)
                m = mmap.mmap(fds[k], size + off, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
                self.regions.append((gpa, size, uva, m, off))
            for fd in fds:
                os.close(fd)
            fds = []
        elif req == SET_VRING_NUM:
            self.num = struct.unpack_from("<II", payload)[1]
        elif req == SET_VRING_BASE:
            self.last_avail = struct.unpack_from("<II", payload)[1]
        elif req == SET_VRING_ADDR:
            _, _, desc, used, avail, _ = struct.unpack_from("<IIQQQQ", payload)
            self.desc, self.used, self.avail = (self._find(a, 2) for a in (desc, used, avail))
        elif req in (SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR):
            fd = fds.pop() if fds and not u64 & 0x100 else None
            if req == SET_VRING_KICK:
                self.kick = fd
            elif req == SET_VRING_CALL:
                self.call = fd
            elif fd is not None:
                os.close(fd)
        elif req == SET_VRING_ENABLE:
            self.enabled = struct.unpack_from("<II", payload)[1] == 1
        for fd in fds:
            os.close(fd)
        if flags & F_NEED_REPLY and self.protocol & 0x8:
            self.reply(req, struct.pack("<Q", 0))
        if req in (SET_VRING_ENABLE, SET_VRING_KICK):
            self.process()  # QEMU kicks before enabling: look at the ring as soon as it may run

    def serve(self):
        while True:
            rl = [self.sock] + ([self.kick] if self.kick is not None else [])
            ready, _, _ = select.select(rl, [], [])
            if self.kick is not None and self.kick in ready:
                os.read(self.kick, 8)
                self.process()
            if self.sock in ready:
                hdr, fds, _, _ = socket.recv_fds(self.sock, 12, 8)
                if len(hdr) < 12:
                    return  # front-end closed the connection
                req, flags, size = struct.unpack("<III", hdr)
                payload = b""
                while len(payload) < size:
                    chunk = self.sock.recv(size - len(payload))
                    if not chunk:
                        return
                    payload += chunk
                self.handle(req, flags, payload, list(fds))


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        sys.exit(__doc__)
    path, conns, exit_after = args[0], 1, 0
    if "--connections" in args:
        conns = int(args[args.index("--connections") + 1])
    if "--exit-after-requests" in args:
        exit_after = int(args[args.index("--exit-after-requests") + 1])
    if os.path.exists(path):
        os.unlink(path)  # a stale socket file would make QEMU fail with ECONNREFUSED
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    for n in range(conns):
        sock, _ = srv.accept()
        c = Conn(sock, exit_after)
        try:
            c.serve()
        except (ConnectionAbortedError, ConnectionResetError, BrokenPipeError) as e:
            log("connection", n, "ended:", e)
        print("vu-rng-stub: connection %d served %d requests" % (n, c.requests), file=sys.stderr, flush=True)
        sock.close()
    os.unlink(path)


if __name__ == "__main__":
    main()
