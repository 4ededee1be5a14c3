/*
 * vsock-xfer: the guest side of the vsock guest tests (built static by bench/setup.sh, copied into every guest
 * as /bin/vsock-xfer). Every byte sent is pattern(offset), every byte received is checked against it.
 *
 *   vsock-xfer send CID PORT BYTES       connect, write BYTES, shut down writing, read the peer's reply to EOF
 *   vsock-xfer recv CID PORT BYTES       connect, read to EOF; fails unless exactly BYTES arrived intact
 *   vsock-xfer serve PORT BYTES          listen, accept one, read to EOF (BYTES checked), reply "ok N\n"
 *   vsock-xfer refused CID PORT          connect must fail with ECONNRESET; prints how long it took
 *   vsock-xfer halfclose CID PORT        write, SHUT_WR, then the peer's reply must still arrive, then EOF
 *   vsock-xfer seqpacket CID PORT        SOCK_SEQPACKET: each message echoed back with its own boundaries
 * Prints key=value lines; exit status 0 on success.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

/*
 * The checked pattern: byte i is table[i % PERIOD], PERIOD a prime that no packet or buffer size divides, so a
 * lost, repeated or reordered piece shows up; the table is doubled so any window up to PERIOD is contiguous, and
 * filling and checking are memcpy/memcmp: the guest (under TCG) measures the transport, not a per-byte loop.
 */
#define PERIOD 65521
static unsigned char table[2 * PERIOD];

static void init_pattern(void) {
    for (uint32_t k = 0; k < PERIOD; k++) table[k] = table[k + PERIOD] = (unsigned char)((k * 2654435761u) >> 13);
}

static unsigned char pattern(uint64_t i) {
    return table[i % PERIOD];
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int die(const char *what) {
    printf("error=%s errno=%d (%s)\n", what, errno, strerror(errno));
    return 1;
}

static int connect_to(unsigned cid, unsigned port, int type) {
    struct sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
    int fd = socket(AF_VSOCK, type, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int write_pattern(int fd, uint64_t total) {
    uint64_t off = 0;
    while (off < total) {
        size_t n = total - off < PERIOD ? total - off : PERIOD;
        ssize_t w = write(fd, table + off % PERIOD, n);
        if (w < 0) { if (errno == EINTR) continue; return -1; }
        off += w;
    }
    return 0;
}

/* Reads to EOF checking the pattern; returns the byte count, or -1 (error printed) on a mismatch. */
static int64_t read_pattern(int fd) {
    static unsigned char buf[65536];
    uint64_t off = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) { if (errno == EINTR) continue; die("read"); return -1; }
        if (n == 0) return off;
        for (ssize_t at = 0; at < n;) {
            ssize_t step = n - at < PERIOD ? n - at : PERIOD;
            if (memcmp(buf + at, table + (off + at) % PERIOD, step) == 0) { at += step; continue; }
            for (ssize_t i = at;; i++) {
                if (buf[i] == pattern(off + i)) continue;
                printf("error=mismatch offset=%llu got=%u want=%u\n", (unsigned long long)(off + i), buf[i],
                       pattern(off + i));
                return -1;
            }
        }
        off += n;
    }
}

static void rate(const char *key, uint64_t bytes, double seconds) {
    printf("%s_bytes=%llu\n%s_ms=%.0f\n%s_mbps=%.1f\n", key, (unsigned long long)bytes, key, seconds * 1000, key,
           seconds > 0 ? bytes / seconds / 1e6 : 0);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    init_pattern();
    if (argc < 3) { fprintf(stderr, "usage: see the source\n"); return 2; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "send") && argc == 5) {
        uint64_t bytes = strtoull(argv[4], NULL, 0);
        int fd = connect_to(atoi(argv[2]), atoi(argv[3]), SOCK_STREAM);
        if (fd < 0) return die("connect");
        double t0 = now();
        if (write_pattern(fd, bytes) != 0) return die("write");
        shutdown(fd, SHUT_WR);
        char reply[64] = {0};
        ssize_t got = 0, n;
        while ((n = read(fd, reply + got, sizeof reply - 1 - got)) > 0) got += n;
        double t1 = now();
        rate("send", bytes, t1 - t0);
        printf("reply=%s\n", strtok(reply, "\n") ? reply : "");
        return 0;
    }
    if (!strcmp(cmd, "recv") && argc == 5) {
        uint64_t bytes = strtoull(argv[4], NULL, 0);
        int fd = connect_to(atoi(argv[2]), atoi(argv[3]), SOCK_STREAM);
        if (fd < 0) return die("connect");
        double t0 = now();
        int64_t got = read_pattern(fd);
        double t1 = now();
        if (got < 0) return 1;
        rate("recv", got, t1 - t0);
        return (uint64_t)got == bytes ? 0 : 1;
    }
    if (!strcmp(cmd, "serve") && argc == 4) {
        uint64_t bytes = strtoull(argv[3], NULL, 0);
        struct sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = atoi(argv[2])};
        int lfd = socket(AF_VSOCK, SOCK_STREAM, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, 4) != 0)
            return die("listen");
        printf("listening=%s\n", argv[2]);
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) return die("accept");
        double t0 = now();
        int64_t got = read_pattern(fd);
        double t1 = now();
        if (got < 0) return 1;
        rate("serve", got, t1 - t0);
        char reply[64];
        int len = snprintf(reply, sizeof reply, "ok %lld\n", (long long)got);
        if (write(fd, reply, len) != len) return die("write reply");
        close(fd);
        return (uint64_t)got == bytes ? 0 : 1;
    }
    if (!strcmp(cmd, "refused") && argc == 4) {
        double t0 = now();
        int fd = connect_to(atoi(argv[2]), atoi(argv[3]), SOCK_STREAM);
        double t1 = now();
        if (fd >= 0) { printf("error=connected\n"); return 1; }
        printf("refused_errno=%s\nrefused_ms=%.1f\n", errno == ECONNRESET ? "ECONNRESET" : strerror(errno),
               (t1 - t0) * 1000);
        return errno == ECONNRESET ? 0 : 1;
    }
    if (!strcmp(cmd, "halfclose") && argc == 4) {
        int fd = connect_to(atoi(argv[2]), atoi(argv[3]), SOCK_STREAM);
        if (fd < 0) return die("connect");
        if (write_pattern(fd, 100000) != 0) return die("write");
        if (shutdown(fd, SHUT_WR) != 0) return die("shutdown");
        /* The host replies only after it saw our EOF: the reply proves both halves. */
        int64_t got = read_pattern(fd);
        if (got < 0) return 1;
        printf("halfclose_reply_bytes=%lld\n", (long long)got);
        return got == 50000 ? 0 : 1;
    }
    if (!strcmp(cmd, "seqpacket") && argc == 4) {
        static const int sizes[] = {1, 100, 3000, 3733, 20000, 65536, 7};
        static unsigned char out[65536], in[65536 + 16];
        int fd = connect_to(atoi(argv[2]), atoi(argv[3]), SOCK_SEQPACKET);
        if (fd < 0) return die("connect");
        int count = sizeof sizes / sizeof sizes[0];
        for (int m = 0; m < count; m++) {
            for (int i = 0; i < sizes[m]; i++) out[i] = pattern(i + m);
            if (send(fd, out, sizes[m], 0) != sizes[m]) return die("send");
        }
        for (int m = 0; m < count; m++) {
            ssize_t n = recv(fd, in, sizeof in, 0);
            if (n != sizes[m]) { printf("error=boundary message=%d got=%zd want=%d\n", m, n, sizes[m]); return 1; }
            for (int i = 0; i < n; i++)
                if (in[i] != pattern(i + m)) { printf("error=mismatch message=%d offset=%d\n", m, i); return 1; }
        }
        printf("seqpacket_messages=%d\n", count);
        return 0;
    }
    fprintf(stderr, "vsock-xfer: bad arguments\n");
    return 2;
}
