/*
 * The machine's floor: the least a supervisor can do, in C. It keeps N copies
 * of a service running (posix_spawn, own process group, no shell) and checks
 * each with an HTTP GET every second (a blocking connect/write/read on a new
 * connection, 1 s timeout) — the same work as ours in the bench, with nothing
 * else: no state file, no audit trail, no control socket, no history.
 *
 *   floor BASE N -- SERVICE [ARGS...]     service i gets its port, BASE + i,
 *                                         as its last argument
 *
 * A SIGCHLD wakes it at once (sigtimedwait); the dead service is spawned again
 * before anything else. SIGTERM stops every group and exits. Used by
 * bench/bench.py as the "floor" column: what this machine allows.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int base, n;
static pid_t *pids;
static char **argv_tmpl;
static int argc_tmpl;

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void start(int i) {
    char port[16];
    snprintf(port, sizeof port, "%d", base + i);
    char *argv[argc_tmpl + 2];
    for (int k = 0; k < argc_tmpl; k++)
        argv[k] = argv_tmpl[k];
    argv[argc_tmpl] = port;
    argv[argc_tmpl + 1] = NULL;
    posix_spawnattr_t a;
    posix_spawnattr_init(&a);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&a, &none);
    posix_spawnattr_setflags(&a, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
    posix_spawnattr_setpgroup(&a, 0);
    if (posix_spawn(&pids[i], argv[0], NULL, &a, argv, environ) != 0)
        pids[i] = 0;
    posix_spawnattr_destroy(&a);
}

static int probe(int port) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return 0;
    struct timeval to = {1, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &to, sizeof to);
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &to, sizeof to);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    static const char req[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    char buf[512];
    int ok = connect(s, (struct sockaddr *)&sa, sizeof sa) == 0 &&
             write(s, req, sizeof req - 1) == (ssize_t)(sizeof req - 1) &&
             read(s, buf, sizeof buf) > 12 && memcmp(buf + 9, "200", 3) == 0;
    close(s);
    return ok;
}

static void reap_and_restart(void) {
    int st;
    pid_t p;
    while ((p = waitpid(-1, &st, WNOHANG)) > 0)
        for (int i = 0; i < n; i++)
            if (pids[i] == p) {
                kill(-p, SIGKILL); /* whatever it left in its group */
                start(i);
            }
}

int main(int argc, char **argv) {
    if (argc < 5 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "usage: floor BASE N -- SERVICE [ARGS...]\n");
        return 2;
    }
    base = atoi(argv[1]);
    n = atoi(argv[2]);
    argv_tmpl = argv + 4;
    argc_tmpl = argc - 4;
    pids = calloc((size_t)n, sizeof *pids);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    for (int i = 0; i < n; i++)
        start(i);
    long long next = now_ns() + 1000000000LL;
    for (;;) {
        long long left = next - now_ns();
        if (left <= 0) {
            for (int i = 0; i < n; i++)
                (void)probe(base + i);
            next += 1000000000LL;
            continue;
        }
        struct timespec ts = {left / 1000000000LL, left % 1000000000LL};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGCHLD) {
            reap_and_restart();
        } else if (sig == SIGTERM || sig == SIGINT) {
            for (int i = 0; i < n; i++)
                if (pids[i] > 0)
                    kill(-pids[i], SIGKILL);
            while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
                ;
            return 0;
        }
    }
}
