/*
 * tiny_service: the one test service every supervisor in the benchmark runs.
 *
 *   tiny_service PORT
 *
 * A minimal HTTP server on 127.0.0.1:PORT. It binds and listens as the first
 * thing it does (SO_REUSEADDR, so a restart never waits on TIME_WAIT), then
 * serves one connection at a time from a single-threaded accept loop:
 *
 *   GET /health  ->  200, body "pid=P start_ns=S listen_ns=L\n"
 *   anything else -> 404
 *
 * S and L are CLOCK_MONOTONIC nanoseconds taken at the top of main() and right
 * after listen(): the measuring client (bench/measure.c, same clock) uses them
 * to tell when the replacement process began to run and when it was listening,
 * without any polling error. A port already taken is exit status 3.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    long long start_ns = now_ns();
    if (argc != 2) {
        fprintf(stderr, "usage: tiny_service PORT\n");
        return 2;
    }
    int port = atoi(argv[1]);
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "tiny_service: bad port %s\n", argv[1]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        perror("socket");
        return 1;
    }
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) {
        fprintf(stderr, "tiny_service: bind 127.0.0.1:%d: %s\n", port, strerror(errno));
        return 3;
    }
    if (listen(s, 1024) < 0) {
        perror("listen");
        return 1;
    }
    long long listen_ns = now_ns();

    char ok[256];
    int blen;
    {
        char body[128];
        blen = snprintf(body, sizeof body, "pid=%d start_ns=%lld listen_ns=%lld\n",
                        (int)getpid(), start_ns, listen_ns);
        snprintf(ok, sizeof ok,
                 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                 "Connection: close\r\n\r\n%s",
                 blen, body);
    }
    int oklen = (int)strlen(ok);
    static const char nf[] =
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    /* A client that connects and says nothing must not stall the loop for long. */
    struct timeval rto = {0, 200000};

    char buf[4096];
    for (;;) {
        int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE)
                continue;
            perror("accept");
            return 1;
        }
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &rto, sizeof rto);
        /* Read the request head (it fits one segment in practice). */
        int got = 0;
        while (got < (int)sizeof buf - 1) {
            ssize_t r = read(c, buf + got, sizeof buf - 1 - got);
            if (r <= 0)
                break;
            got += (int)r;
            buf[got] = 0;
            if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
                break;
        }
        if (got > 0) {
            buf[got] = 0;
            if (strncmp(buf, "GET /health", 11) == 0 && (buf[11] == ' ' || buf[11] == '?'))
                (void)!write(c, ok, oklen);
            else
                (void)!write(c, nf, sizeof nf - 1);
        }
        close(c);
    }
}
