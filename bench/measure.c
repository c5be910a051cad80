/*
 * measure: the timing-critical half of the benchmark (bench/run.sh drives it).
 * Every loop here is bounded by a deadline given on the command line. Output
 * is one line of JSON on stdout (launch also prints "pid=N" first).
 *
 *   measure pid PORT
 *       The pid that answers GET /health on PORT (exit 1 if none does).
 *
 *   measure crash PORT TIMEOUT_MS
 *       SIGKILL the process answering /health on PORT, then poll tightly
 *       (connect + GET in a loop, no pause: a yield lets a busy
 *       neighbour keep the core for milliseconds) until a
 *       different pid answers 200. Reports, from the kill:
 *         new_process_us  when the replacement's main() began (its own
 *                         CLOCK_MONOTONIC stamp in the /health body)
 *         listen_us       when the replacement was listening (same)
 *         healthy_us      when this client got 200 from the replacement
 *
 *   measure launch [-o LOG] [-w] BASE N TIMEOUT_MS -- CMD ARGS...
 *       Start CMD (own process group, output to LOG), print "pid=N", then
 *       poll ports BASE..BASE+N-1 until all answer 200: all_healthy_us is from
 *       just before the fork. -w: afterwards wait for CMD itself to exit
 *       (for `pm2 start`, a client that returns once the daemon has the apps).
 *
 *   measure waitall BASE N TIMEOUT_MS
 *       Poll until all N ports answer 200 (no launch).
 *
 *   measure repeat REPS [TOTAL_MS] -- CMD ARGS...
 *       Run CMD REPS times in a row (stdout/stderr to /dev/null); the wall
 *       time of each run, fork to reaped exit. With TOTAL_MS, no new run
 *       starts once that much time has passed (at least one run is made).
 *
 *   measure storm BASE N TIMEOUT_MS [-- STATUS_CMD ARGS...]
 *       SIGKILL the processes answering on all N ports at once, then poll
 *       until every port answers 200 from a new pid. With STATUS_CMD, a second
 *       thread runs it back to back from the kill until the storm is over, and
 *       the wall time of each run is reported.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

struct answer {
    int pid;
    long long start_ns, listen_ns;
};

/*
 * One GET /health on 127.0.0.1:port. 1 with the body parsed when the answer is
 * 200, 0 otherwise (refused, reset, timeout, other status).
 */
static int health(int port, struct answer *a) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return 0;
    struct timeval to = {0, 300000};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &to, sizeof to);
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &to, sizeof to);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(s);
        return 0;
    }
    static const char req[] = "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(s, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) {
        close(s);
        return 0;
    }
    char buf[1024];
    int got = 0;
    for (;;) {
        ssize_t r = read(s, buf + got, sizeof buf - 1 - got);
        if (r <= 0)
            break;
        got += (int)r;
        if (got >= (int)sizeof buf - 1)
            break;
    }
    close(s);
    buf[got] = 0;
    if (strncmp(buf, "HTTP/1.", 7) != 0 || strncmp(buf + 8, " 200", 4) != 0)
        return 0;
    char *body = strstr(buf, "pid=");
    if (!body)
        return 0;
    if (sscanf(body, "pid=%d start_ns=%lld listen_ns=%lld", &a->pid, &a->start_ns,
               &a->listen_ns) != 3)
        return 0;
    return 1;
}

static int cmp_ll(const void *x, const void *y) {
    long long a = *(const long long *)x, b = *(const long long *)y;
    return (a > b) - (a < b);
}

/* fork+exec argv with stdout/stderr to `out` (NULL: /dev/null), own process group. */
static pid_t spawn(char **argv, const char *out, int new_group) {
    pid_t p = fork();
    if (p < 0)
        return -1;
    if (p == 0) {
        if (new_group)
            setpgid(0, 0);
        int fd = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
        int nul = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (nul >= 0)
            dup2(nul, 0);
        execvp(argv[0], argv);
        _exit(127);
    }
    return p;
}

/* Wait for p until deadline (ns); its exit status, or -1 on timeout. */
static int wait_until(pid_t p, long long deadline) {
    int st;
    for (;;) {
        pid_t r = waitpid(p, &st, WNOHANG);
        if (r == p)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0)
            return -2;
        if (now_ns() > deadline)
            return -1;
        sleep_us(200);
    }
}

/* ---- pid ------------------------------------------------------------------ */

static int cmd_pid(int port) {
    struct answer a;
    if (!health(port, &a))
        return 1;
    printf("%d\n", a.pid);
    return 0;
}

/* ---- crash ---------------------------------------------------------------- */

static int cmd_crash(int port, long timeout_ms) {
    struct answer old, a;
    long long give_up = now_ns() + 1000000000LL;
    while (!health(port, &old)) {
        if (now_ns() > give_up) {
            printf("{\"ok\":false,\"error\":\"nothing answers on port %d\"}\n", port);
            return 1;
        }
        sleep_us(1000);
    }
    long long deadline = now_ns() + timeout_ms * 1000000LL;
    long attempts = 0;
    long long t_kill = now_ns();
    if (kill(old.pid, SIGKILL) < 0) {
        printf("{\"ok\":false,\"error\":\"kill %d: %s\"}\n", old.pid, strerror(errno));
        return 1;
    }
    for (;;) {
        attempts++;
        if (health(port, &a) && a.pid != old.pid) {
            long long t_ok = now_ns();
            printf("{\"ok\":true,\"old_pid\":%d,\"new_pid\":%d,\"new_process_us\":%.1f,"
                   "\"listen_us\":%.1f,\"healthy_us\":%.1f,\"attempts\":%ld}\n",
                   old.pid, a.pid, (a.start_ns - t_kill) / 1e3, (a.listen_ns - t_kill) / 1e3,
                   (t_ok - t_kill) / 1e3, attempts);
            return 0;
        }
        if (now_ns() > deadline) {
            printf("{\"ok\":false,\"error\":\"no new process answered on port %d within %ld ms\","
                   "\"old_pid\":%d,\"attempts\":%ld}\n",
                   port, timeout_ms, old.pid, attempts);
            return 1;
        }

    }
}

/* ---- waitall / launch ----------------------------------------------------- */

/*
 * Poll BASE..BASE+N-1 until all answer 200; passes over the pending ports with
 * a 200 us pause after a pass that found nothing new (so the poller does not
 * take a whole core from the supervisor it measures). The count that answered.
 */
static int poll_all(int base, int n, long long deadline, long long *t_done) {
    char *done = calloc(n, 1);
    int left = n;
    struct answer a;
    while (left > 0 && now_ns() < deadline) {
        int progress = 0;
        for (int i = 0; i < n; i++) {
            if (done[i])
                continue;
            if (health(base + i, &a)) {
                done[i] = 1;
                left--;
                progress = 1;
            }
        }
        if (!progress)
            sleep_us(200);
    }
    *t_done = now_ns();
    free(done);
    return n - left;
}

static int cmd_waitall(int base, int n, long timeout_ms) {
    long long t0 = now_ns(), t_done;
    int ok = poll_all(base, n, t0 + timeout_ms * 1000000LL, &t_done);
    printf("{\"ok\":%s,\"healthy\":%d,\"n\":%d,\"elapsed_us\":%.1f}\n", ok == n ? "true" : "false",
           ok, n, (t_done - t0) / 1e3);
    return ok == n ? 0 : 1;
}

static int cmd_launch(const char *log, int wait_exit, int base, int n, long timeout_ms,
                      char **argv) {
    long long t0 = now_ns();
    long long deadline = t0 + timeout_ms * 1000000LL;
    pid_t p = spawn(argv, log, 1);
    if (p < 0) {
        printf("{\"ok\":false,\"error\":\"fork: %s\"}\n", strerror(errno));
        return 1;
    }
    printf("pid=%d\n", (int)p);
    fflush(stdout);
    long long t_done;
    int ok = poll_all(base, n, deadline, &t_done);
    int rc = 0;
    if (wait_exit)
        rc = wait_until(p, deadline + 30000000000LL);
    else {
        int st;
        if (waitpid(p, &st, WNOHANG) == p)
            rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        else
            rc = -1; /* still running: the supervisor in the foreground */
    }
    printf("{\"ok\":%s,\"pid\":%d,\"healthy\":%d,\"n\":%d,\"all_healthy_us\":%.1f,"
           "\"launcher_rc\":%d}\n",
           ok == n ? "true" : "false", (int)p, ok, n, (t_done - t0) / 1e3, rc);
    return ok == n ? 0 : 1;
}

/* ---- repeat --------------------------------------------------------------- */

static int cmd_repeat(int reps, long total_ms, char **argv) {
    printf("{\"us\":[");
    int bad = 0;
    long long start = now_ns();
    for (int i = 0; i < reps; i++) {
        long long t0 = now_ns();
        if (i > 0 && total_ms > 0 && t0 - start > total_ms * 1000000LL)
            break;
        pid_t p = spawn(argv, NULL, 0);
        int rc = p < 0 ? -3 : wait_until(p, t0 + 60000000000LL);
        long long t1 = now_ns();
        if (rc != 0)
            bad++;
        printf("%s%.1f", i ? "," : "", (t1 - t0) / 1e3);
    }
    printf("],\"failures\":%d}\n", bad);
    return bad ? 1 : 0;
}

/* ---- storm ---------------------------------------------------------------- */

struct status_loop {
    char **argv;
    volatile int stop;
    long long *us;
    int count, cap, failures;
};

static void *status_thread(void *arg) {
    struct status_loop *s = arg;
    while (!s->stop && s->count < s->cap) {
        long long t0 = now_ns();
        pid_t p = spawn(s->argv, NULL, 0);
        int rc = p < 0 ? -3 : wait_until(p, t0 + 60000000000LL);
        if (rc != 0)
            s->failures++;
        s->us[s->count++] = (now_ns() - t0) / 1000;
    }
    return NULL;
}

static int cmd_storm(int base, int n, long timeout_ms, char **status_argv) {
    int *old = calloc(n, sizeof(int));
    long long *t_new = calloc(n, sizeof(long long));
    struct answer a;
    for (int i = 0; i < n; i++) {
        if (!health(base + i, &a)) {
            printf("{\"ok\":false,\"error\":\"port %d does not answer before the storm\"}\n",
                   base + i);
            return 1;
        }
        old[i] = a.pid;
    }
    struct status_loop sl = {status_argv, 0, calloc(100000, sizeof(long long)), 0, 100000, 0};
    pthread_t th;
    long long t_kill = now_ns();
    for (int i = 0; i < n; i++)
        kill(old[i], SIGKILL);
    if (status_argv)
        pthread_create(&th, NULL, status_thread, &sl);
    long long deadline = t_kill + timeout_ms * 1000000LL;
    int left = n;
    while (left > 0 && now_ns() < deadline) {
        int progress = 0;
        for (int i = 0; i < n; i++) {
            if (t_new[i])
                continue;
            if (health(base + i, &a) && a.pid != old[i]) {
                t_new[i] = now_ns();
                left--;
                progress = 1;
            }
        }
        if (!progress)
            sleep_us(200);
    }
    long long t_end = now_ns();
    if (status_argv) {
        sl.stop = 1;
        pthread_join(th, NULL);
    }
    long long *lat = calloc(n, sizeof(long long));
    int m = 0;
    for (int i = 0; i < n; i++)
        if (t_new[i])
            lat[m++] = t_new[i] - t_kill;
    qsort(lat, m, sizeof(long long), cmp_ll);
    printf("{\"ok\":%s,\"healthy\":%d,\"n\":%d,\"all_healthy_us\":%.1f,"
           "\"median_service_us\":%.1f,\"status_failures\":%d,\"status_us\":[",
           left == 0 ? "true" : "false", n - left, n, (t_end - t_kill) / 1e3,
           m ? lat[m / 2] / 1e3 : -1.0, sl.failures);
    for (int i = 0; i < sl.count; i++)
        printf("%s%lld", i ? "," : "", sl.us[i]);
    printf("]}\n");
    return left == 0 ? 0 : 1;
}

/* ---- main ----------------------------------------------------------------- */

static void usage(void) {
    fprintf(stderr, "usage: measure pid PORT | crash PORT TIMEOUT_MS |\n"
                    "       launch [-o LOG] [-w] BASE N TIMEOUT_MS -- CMD... |\n"
                    "       waitall BASE N TIMEOUT_MS | repeat REPS [TOTAL_MS] -- CMD... |\n"
                    "       storm BASE N TIMEOUT_MS [-- STATUS_CMD...]\n");
    exit(2);
}

/* Index of "--" in argv from `from`, or -1. */
static int dashdash(int argc, char **argv, int from) {
    for (int i = from; i < argc; i++)
        if (strcmp(argv[i], "--") == 0)
            return i;
    return -1;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    if (argc < 2)
        usage();
    const char *c = argv[1];
    int rc;
    if (strcmp(c, "pid") == 0 && argc == 3)
        rc = cmd_pid(atoi(argv[2]));
    else if (strcmp(c, "crash") == 0 && argc == 4)
        rc = cmd_crash(atoi(argv[2]), atol(argv[3]));
    else if (strcmp(c, "waitall") == 0 && argc == 5)
        rc = cmd_waitall(atoi(argv[2]), atoi(argv[3]), atol(argv[4]));
    else if (strcmp(c, "launch") == 0) {
        const char *log = NULL;
        int wait_exit = 0, i = 2;
        for (; i < argc && argv[i][0] == '-' && strcmp(argv[i], "--") != 0; i++) {
            if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
                log = argv[++i];
            else if (strcmp(argv[i], "-w") == 0)
                wait_exit = 1;
            else
                usage();
        }
        int dd = dashdash(argc, argv, i);
        if (dd != i + 3 || dd + 1 >= argc)
            usage();
        rc = cmd_launch(log, wait_exit, atoi(argv[i]), atoi(argv[i + 1]), atol(argv[i + 2]),
                        argv + dd + 1);
    } else if (strcmp(c, "repeat") == 0) {
        int dd = dashdash(argc, argv, 2);
        if ((dd != 3 && dd != 4) || dd + 1 >= argc)
            usage();
        rc = cmd_repeat(atoi(argv[2]), dd == 4 ? atol(argv[3]) : 0, argv + dd + 1);
    } else if (strcmp(c, "storm") == 0 && argc >= 5) {
        int dd = dashdash(argc, argv, 5);
        if (dd >= 0 && dd != 5)
            usage();
        rc = cmd_storm(atoi(argv[2]), atoi(argv[3]), atol(argv[4]),
                       dd >= 0 && dd + 1 < argc ? argv + dd + 1 : NULL);
    } else
        usage();
    fflush(stdout);
    return rc;
}
