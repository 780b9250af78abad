/*
 * ctl-raw - sends raw bytes to a Unix stream socket and prints what comes
 * back, for tests that must send what de-ctl never would.
 *
 *   ctl-raw SOCKET [--repeat N CHAR] [--file F] [STRING]
 * STRING is sent with C escapes \n \0 \xHH decoded; --repeat sends N
 * copies of CHAR first. Prints the reply (up to 64 KiB, 2 s timeout).
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static size_t unescape(const char *s, char *out)
{
    size_t n = 0;

    for (; *s; s++) {
        if (*s != '\\' || !s[1]) {
            out[n++] = *s;
            continue;
        }
        s++;
        switch (*s) {
        case 'n': out[n++] = '\n'; break;
        case '0': out[n++] = 0; break;
        case 'x': {
            char h[3] = { s[1], s[1] ? s[2] : 0, 0 };
            out[n++] = (char)strtol(h, NULL, 16);
            s += 2;
            break;
        }
        default: out[n++] = *s; break;
        }
    }
    return n;
}

int main(int argc, char **argv)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    static char buf[1 << 16];
    int fd, ai = 2;
    long rep = 0;
    char rch = 'a';
    struct pollfd p;
    ssize_t r;
    size_t got = 0;

    if (argc < 2)
        return 2;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", argv[1]);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("ctl-raw: connect");
        return 1;
    }
    if (ai + 2 < argc && strcmp(argv[ai], "--repeat") == 0) {
        rep = atol(argv[ai + 1]);
        rch = argv[ai + 2][0];
        ai += 3;
    }
    memset(buf, rch, sizeof buf);
    while (rep > 0) {
        size_t n = rep > (long)sizeof buf ? sizeof buf : (size_t)rep;
        if (send(fd, buf, n, MSG_NOSIGNAL) < 0)
            break;      /* the daemon may hang up on an oversized line */
        rep -= (long)n;
    }
    if (ai < argc) {
        char *out = malloc(strlen(argv[ai]) + 1);
        size_t n = unescape(argv[ai], out);
        send(fd, out, n, MSG_NOSIGNAL);
        free(out);
    }
    p.fd = fd;
    p.events = POLLIN;
    while (got < sizeof buf - 1 && poll(&p, 1, 2000) > 0) {
        r = read(fd, buf + got, sizeof buf - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        if (memchr(buf, '\n', got))
            break;
    }
    buf[got] = 0;
    fputs(buf, stdout);
    if (!got || buf[got - 1] != '\n')
        putchar('\n');
    close(fd);
    return 0;
}
