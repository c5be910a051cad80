#!/usr/bin/env python3
"""Orchestration of the benchmark (run it through bench/run.sh).

Starts each supervisor on generated configs, drives bench/measure (compiled C:
every timing-critical loop is there) and reads /proc for the idle footprint.
Prints one table; raw numbers go to bench/results/. bench/README.md has the
method.

Cleanup: this process makes itself a child subreaper, so whatever a supervisor
leaves behind (PM2's daemon, services orphaned by a dying supervisor) is
re-parented to it. After every session every process running the bench's own
tiny_service binary is killed by pid and every supervisor pid started here is
checked gone; the same happens on Ctrl-C and on any error.
"""

import argparse
import ctypes
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PORT_BASE = 21000
CRASH_N = 10  # services in the crash scenario
STORM_N = 100
# Time a service must have been up before it is killed again: PM2's default
# min_uptime is 1 s (faster deaths count as unstable restarts, 16 of them and
# the app is abandoned), supervisord's default startsecs is 1 s and it notices
# the RUNNING state only at its next tick (up to 1 s later).
MIN_UP_BEFORE_KILL = 2.2


def log(msg):
    print(f"\033[1m[bench]\033[0m {msg}", file=sys.stderr, flush=True)


# ---- /proc ---------------------------------------------------------------------------


def read_stat(pid):
    """(state, ppid, utime+stime ticks) or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rfind(")") + 2 :].split()
    return rest[0], int(rest[1]), int(rest[11]) + int(rest[12])


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def exe_of(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def alive(pid):
    st = read_stat(pid)
    return st is not None and st[0] != "Z"


def descendants(root):
    """Every live descendant of root."""
    parent = {}
    for p in all_pids():
        st = read_stat(p)
        if st:
            parent[p] = st[1]
    out, frontier = [], {root}
    while frontier:
        nxt = {p for p, pp in parent.items() if pp in frontier}
        out.extend(nxt)
        frontier = nxt
    return out


def reap():
    """Reap our zombie children (subreaper: orphans land here)."""
    me = os.getpid()
    for p in all_pids():
        st = read_stat(p)
        if st and st[1] == me and st[0] == "Z":
            try:
                os.waitpid(p, os.WNOHANG)
            except ChildProcessError:
                pass


def wait_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reap()
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.02)
    return False


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def port_answers(port):
    s = socket.socket()
    s.settimeout(0.2)
    try:
        s.connect(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


# ---- the three supervisors --------------------------------------------------------------


class Supervisor:
    name = "?"
    label = "?"

    def __init__(self, bench, mode):
        self.b = bench
        self.mode = mode  # "fast" or "default"
        self.pid = None
        self.dir = None

    def env(self):
        return dict(self.b.base_env)

    def prepare(self, n):
        raise NotImplementedError

    def launch_cmd(self):
        raise NotImplementedError

    def status_cmd(self):
        raise NotImplementedError

    def launcher_waits(self):
        return False

    def after_launch(self, launcher_pid):
        self.pid = launcher_pid

    def own_pids(self):
        """The supervisor's own processes: its main pid and any descendant that
        is not a service."""
        if not self.pid or not alive(self.pid):
            return []
        return [self.pid] + [p for p in descendants(self.pid) if exe_of(p) != self.b.tiny_real]

    def stop(self):
        if self.pid and alive(self.pid):
            os.kill(self.pid, signal.SIGTERM)
            if not wait_gone([self.pid], 30):
                log(f"{self.name}: pid {self.pid} still running 30 s after SIGTERM; SIGKILL")
                os.kill(self.pid, signal.SIGKILL)
                wait_gone([self.pid], 5)

    def service_lines(self, n):
        return [(f"s{i}", PORT_BASE + i) for i in range(n)]


class Ours(Supervisor):
    name = "ours"
    label = "ai-dawg-manager"

    def prepare(self, n):
        cfg_dir = os.path.join(self.dir, "config")
        os.makedirs(cfg_dir, exist_ok=True)
        services = {}
        for name, port in self.service_lines(n):
            services[name] = {
                "command": [self.b.tiny, str(port)],
                "port": port,
                "health_endpoint": f"http://127.0.0.1:{port}/health",
                "start_timeout": "30s",
                "stop_timeout": "5s",
            }
        config = {
            "enabled": True,
            "ai_dawg": {"services": services},
            "monitoring": {
                "health_check_interval": "1s",
                "health_check_timeout": "1s",
                "max_restart_attempts": 1000000,
                "restart_cooldown_seconds": 0,
                "stable_after_seconds": 1,
            },
            "safety": {
                "emergency_kill_switch": False,
                "max_consecutive_failures_before_escalation": 1000000,
                "kill_port_conflicts": True,
            },
        }
        self.config = os.path.join(cfg_dir, "autonomy.json")
        with open(self.config, "w") as f:
            json.dump(config, f, indent=1)
        with open(os.path.join(cfg_dir, "commands-whitelist.json"), "w") as f:
            json.dump({"commands": [self.b.tiny]}, f)
        self.data = os.path.join(self.dir, "data")

    def launch_cmd(self):
        return [self.b.ours, "start", "--config", self.config, "--data-dir", self.data]

    def status_cmd(self):
        return [self.b.ours, "status", "--json", "--config", self.config, "--data-dir", self.data]


class Supervisord(Supervisor):
    name = "supervisord"
    label = "supervisord"

    def prepare(self, n):
        d = self.dir
        os.makedirs(os.path.join(d, "childlogs"), exist_ok=True)
        self.conf = os.path.join(d, "supervisord.conf")
        lines = [
            "[unix_http_server]",
            f"file={d}/supervisor.sock",
            "[supervisord]",
            "nodaemon=true",
            f"logfile={d}/supervisord.log",
            f"pidfile={d}/supervisord.pid",
            f"childlogdir={d}/childlogs",
            "minfds=8192",
            "minprocs=200",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "[supervisorctl]",
            f"serverurl=unix://{d}/supervisor.sock",
        ]
        for name, port in self.service_lines(n):
            lines += [f"[program:{name}]", f"command={self.b.tiny} {port}"]
            if self.mode == "fast":
                lines += ["autorestart=true", "startsecs=0"]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def launch_cmd(self):
        return [self.b.supervisord, "-n", "-c", self.conf]

    def status_cmd(self):
        return [self.b.supervisorctl, "-c", self.conf, "status"]


class PM2(Supervisor):
    name = "pm2"
    label = "PM2"

    def env(self):
        e = dict(self.b.base_env)
        e["PM2_HOME"] = os.path.join(self.dir, "pm2home")
        return e

    def prepare(self, n):
        apps = []
        for name, port in self.service_lines(n):
            app = {
                "name": name,
                "script": self.b.tiny,
                "args": [str(port)],
                # Needed to run a binary at all, not a restart setting.
                "interpreter": "none",
            }
            if self.mode == "fast":
                app.update({"autorestart": True, "restart_delay": 0})
            apps.append(app)
        self.eco = os.path.join(self.dir, "ecosystem.json")
        with open(self.eco, "w") as f:
            json.dump({"apps": apps}, f, indent=1)

    def launch_cmd(self):
        return [self.b.pm2, "start", self.eco]

    def launcher_waits(self):
        return True

    def after_launch(self, launcher_pid):
        pidfile = os.path.join(self.env()["PM2_HOME"], "pm2.pid")
        try:
            with open(pidfile) as f:
                self.pid = int(f.read().strip())
        except (OSError, ValueError):
            self.pid = None

    def status_cmd(self):
        return [self.b.pm2, "jlist"]

    def stop(self):
        if self.pid and alive(self.pid):
            try:
                subprocess.run(
                    [self.b.pm2, "kill"],
                    env=self.env(),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=120,
                )
            except subprocess.TimeoutExpired:
                log("pm2 kill took more than 120 s")
        super().stop()


class Floor(Supervisor):
    """bench/floor.c: posix_spawn, waitpid on SIGCHLD, a blocking GET per
    service per second, nothing else. What this machine allows; no status."""

    name = "floor"
    label = "floor (C)"

    def prepare(self, n):
        self.n = n

    def launch_cmd(self):
        return [self.b.floor, str(PORT_BASE), str(self.n), "--", self.b.tiny]

    def status_cmd(self):
        return None


KINDS = {"ours": Ours, "supervisord": Supervisord, "pm2": PM2, "floor": Floor}


# ---- the benchmark ---------------------------------------------------------------------------


class Bench:
    def __init__(self, a):
        self.a = a
        self.ours = a.ours
        self.tiny = a.tiny
        self.tiny_real = os.path.realpath(a.tiny)
        self.measure_bin = a.measure
        self.supervisord = a.supervisord
        self.supervisorctl = a.supervisorctl
        self.pm2 = a.pm2
        self.floor = a.floor
        self.tmp = tempfile.mkdtemp(prefix="adm-bench-")
        self.base_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.tmp,
            "LANG": "C.UTF-8",
        }
        self.running = []  # supervisors started and not yet stopped
        self.results = {}  # figure key -> kind -> list of values, or an error string
        self.notes = {}  # figure key -> kind -> remark shown in the cell
        self.quick = a.quick
        self.idle_window = 6 if a.quick else 30
        self.settle = 1 if a.quick else 5
        self.crash_samples = 8 if a.quick else 30
        self.crash_samples_defaults = 5 if a.quick else 30
        self.crash_samples_at_100 = 5 if a.quick else 10
        self.status_reps = 10 if a.quick else 20
        self.status_cap = 30  # seconds for all the status runs of one size
        self.storm_reps = 1 if a.quick else 3
        self.sizes = [100] if a.quick else [100, 1000]
        if a.sizes:
            self.sizes = [int(x) for x in a.sizes.split(",")]
        self.cold_reps = {100: 1 if a.quick else 3}
        self.counter = 0

    # -- helpers ---------------------------------------------------------------------------

    def measure(self, args, env=None, timeout=600):
        p = subprocess.run(
            [self.measure_bin] + args,
            env=env or self.base_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
        )
        lines = [line for line in p.stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise RuntimeError(f"measure {args[0]}: no result (rc {p.returncode}) {p.stderr.strip()}")
        return json.loads(lines[-1]), p.stdout

    def put(self, key, kind, value):
        self.results.setdefault(key, {}).setdefault(kind, [])
        if isinstance(self.results[key][kind], list):
            self.results[key][kind].append(value)

    def note(self, key, kind, text):
        self.notes.setdefault(key, {})[kind] = text

    def fail(self, key, kind, why):
        log(f"{kind}: {key}: {why}")
        self.results.setdefault(key, {})[kind] = f"failed: {why}"

    def sweep(self):
        """Kill, by pid, every process running our tiny_service binary and reap."""
        victims = [p for p in all_pids() if exe_of(p) == self.tiny_real and alive(p)]
        for p in victims:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_gone(victims, 10)
        return len(victims)

    def ports_free(self, n):
        busy = [PORT_BASE + i for i in range(n) if port_answers(PORT_BASE + i)]
        if busy:
            left = self.sweep()
            busy = [p for p in busy if port_answers(p)]
            if busy:
                raise RuntimeError(
                    f"ports {busy[:5]}… are held by something else (killed {left} leftovers)"
                )

    def stop(self, sup):
        try:
            sup.stop()
        finally:
            if sup in self.running:
                self.running.remove(sup)
            left = self.sweep()
            if left:
                log(f"{sup.name}: {left} service processes outlived the supervisor; killed")
            reap()

    def cleanup(self):
        for sup in list(self.running):
            try:
                self.stop(sup)
            except Exception as e:  # keep cleaning
                log(f"cleanup of {sup.name}: {e}")
        self.sweep()
        reap()
        if not self.a.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            log(f"kept {self.tmp}")

    # -- one supervisor session ------------------------------------------------------------

    def start(self, kind, n, mode="fast"):
        """Start `kind` with n services; (supervisor, cold start µs) once all are healthy."""
        sup = KINDS[kind](self, mode)
        self.counter += 1
        sup.dir = os.path.join(self.tmp, f"{self.counter:02d}-{kind}-{mode}-{n}")
        os.makedirs(sup.dir)
        sup.prepare(n)
        self.ports_free(n)
        args = ["launch", "-o", os.path.join(sup.dir, "launch.log")]
        if sup.launcher_waits():
            args.append("-w")
        timeout_ms = 180000
        args += [str(PORT_BASE), str(n), str(timeout_ms), "--"] + sup.launch_cmd()
        self.running.append(sup)
        proc = subprocess.Popen(
            [self.measure_bin] + args,
            env=sup.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            out, err = proc.communicate(timeout=timeout_ms / 1000 + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        launcher = next((int(l[4:]) for l in out.splitlines() if l.startswith("pid=")), None)
        if launcher:
            sup.after_launch(launcher)
        lines = [l for l in out.splitlines() if l.startswith("{")]
        r = json.loads(lines[-1]) if lines else {"ok": False}
        if not r.get("ok"):
            tail = ""
            try:
                with open(os.path.join(sup.dir, "launch.log"), errors="replace") as f:
                    tail = f.read()[-600:]
            except OSError:
                pass
            raise RuntimeError(
                f"{kind} did not get {n} services healthy: {r} {err.strip()} {tail.strip()}"
            )
        return sup, r["all_healthy_us"]

    def service_pids(self, n):
        """The pid answering /health on each port (None where nothing answers)."""
        out = []
        for i in range(n):
            try:
                with socket.create_connection(("127.0.0.1", PORT_BASE + i), timeout=1) as c:
                    c.sendall(b"GET /health HTTP/1.0\r\n\r\n")
                    data = b""
                    while len(data) < 4096:
                        chunk = c.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                body = data.decode(errors="replace")
                out.append(int(body.split("pid=")[1].split()[0]) if " 200 " in body else None)
            except (OSError, ValueError, IndexError):
                out.append(None)
        return out

    def idle(self, sup, n):
        time.sleep(self.settle)
        before = self.service_pids(n)
        pids = sup.own_pids()
        if not pids:
            raise RuntimeError(f"{sup.name}: no supervisor process found")
        t0 = {p: read_stat(p)[2] for p in pids if read_stat(p)}
        w0 = time.monotonic()
        time.sleep(self.idle_window)
        w = time.monotonic() - w0
        ticks = 0
        for p in pids:
            st = read_stat(p)
            if st and p in t0:
                ticks += st[2] - t0[p]
        cpu_s = ticks / CLK_TCK
        rss = sum(rss_kb(p) for p in sup.own_pids()) / 1024
        after = self.service_pids(n)
        changed = sum(1 for a, b in zip(before, after) if a != b or a is None)
        if changed:
            # Not idle: services were down or replaced during the window.
            for key in (f"rss@{n}", f"cpu@{n}"):
                self.note(key, sup.name, f"not idle: {changed} of {n} services restarted or down")
            log(f"{sup.name} @{n}: {changed} of {n} services changed pid or did not answer during the idle window")
        self.put(f"rss@{n}", sup.name, rss)
        self.put(f"cpu@{n}", sup.name, cpu_s / w * 100)
        self.put(f"cpus@{n}", sup.name, cpu_s)
        log(f"{sup.name} @{n}: idle RSS {rss:.1f} MB, CPU {cpu_s:.2f} s over {w:.0f} s (pids {pids[:3]})")

    def crash(self, sup, samples, suffix, n=CRASH_N):
        last = {i: time.monotonic() for i in range(n)}
        for j in range(samples):
            i = (j * 7) % n  # 7 is prime to 10 and 100: every service in turn
            wait = MIN_UP_BEFORE_KILL - (time.monotonic() - last[i])
            if wait > 0:
                time.sleep(wait)
            r, _ = self.measure(["crash", str(PORT_BASE + i), "10000"], timeout=30)
            last[i] = time.monotonic()
            if not r.get("ok"):
                self.fail(f"crash_new{suffix}", sup.name, r.get("error"))
                self.fail(f"crash_healthy{suffix}", sup.name, r.get("error"))
                return
            self.put(f"crash_new{suffix}", sup.name, r["new_process_us"])
            self.put(f"crash_healthy{suffix}", sup.name, r["healthy_us"])
            time.sleep(0.05)
        vals = self.results[f"crash_new{suffix}"][sup.name]
        log(f"{sup.name}{suffix}: crash → new process median {statistics.median(vals):.0f} µs")

    def status(self, sup, n, reps):
        if sup.status_cmd() is None:
            return
        cap_ms = self.status_cap * 1000
        r, _ = self.measure(
            ["repeat", str(reps), str(cap_ms), "--"] + sup.status_cmd(), env=sup.env(), timeout=900
        )
        for us in r["us"]:
            self.put(f"status@{n}", sup.name, us)
        if r["failures"]:
            self.note(f"status@{n}", sup.name, f"{r['failures']} of {len(r['us'])} failed")
            log(f"{sup.name}: {r['failures']} of {len(r['us'])} status runs exited non-zero")
        if len(r["us"]) < reps:
            log(f"{sup.name}: only {len(r['us'])} status runs within {self.status_cap} s")
        log(f"{sup.name} @{n}: status median {statistics.median(r['us']) / 1000:.1f} ms")

    def storm(self, sup):
        for _ in range(self.storm_reps):
            time.sleep(MIN_UP_BEFORE_KILL)
            status = ["--"] + sup.status_cmd() if sup.status_cmd() else []
            r, _ = self.measure(
                ["storm", str(PORT_BASE), str(STORM_N), "60000"] + status,
                env=sup.env(),
                timeout=180,
            )
            if not r.get("ok"):
                self.fail("storm", sup.name, f"{r.get('healthy')}/{STORM_N} healthy after 60 s")
                return
            self.put("storm", sup.name, r["all_healthy_us"])
            if r.get("status_failures"):
                self.note("storm_status", sup.name, f"{r['status_failures']} failed")
            for us in r.get("status_us", []):
                self.put("storm_status", sup.name, us)
            if r.get("status_us"):
                self.put("storm_status_max", sup.name, max(r["status_us"]))
            log(
                f"{sup.name}: storm of {STORM_N} all healthy in {r['all_healthy_us'] / 1000:.1f} ms, "
                f"{len(r.get('status_us', []))} status during it, max {max(r.get('status_us') or [0]) / 1000:.1f} ms"
            )

    # -- the plan ----------------------------------------------------------------------------------

    def run_kind(self, kind):
        # Crash (fastest config) and idle at 10.
        try:
            sup, _ = self.start(kind, CRASH_N)
            try:
                self.idle(sup, CRASH_N)
                self.crash(sup, self.crash_samples, "")
            finally:
                self.stop(sup)
        except Exception as e:
            self.fail("crash_new", kind, str(e)[:300])
            self.fail("crash_healthy", kind, str(e)[:300])
        # Peers with their defaults (ours and the floor have one config).
        if kind not in ("ours", "floor"):
            try:
                sup, _ = self.start(kind, CRASH_N, mode="default")
                try:
                    self.crash(sup, self.crash_samples_defaults, "_def")
                finally:
                    self.stop(sup)
            except Exception as e:
                self.fail("crash_new_def", kind, str(e)[:300])
                self.fail("crash_healthy_def", kind, str(e)[:300])
        for n in self.sizes:
            for rep in range(self.cold_reps.get(n, 1)):
                try:
                    sup, cold = self.start(kind, n)
                except Exception as e:
                    self.fail(f"cold@{n}", kind, str(e)[:300])
                    for s in list(self.running):
                        self.stop(s)
                    break
                try:
                    self.put(f"cold@{n}", kind, cold)
                    log(f"{kind} @{n}: cold start {cold / 1000:.0f} ms")
                    if rep == 0:
                        self.idle(sup, n)
                        self.status(sup, n, self.status_reps)
                        if n == STORM_N:
                            self.crash(sup, self.crash_samples_at_100, "@100", n)
                            self.storm(sup)
                except Exception as e:
                    self.fail(f"session@{n}", kind, str(e)[:300])
                finally:
                    self.stop(sup)

    def run(self):
        kinds = [k for k in ["ours", "supervisord", "pm2", "floor"] if k in self.a.only]
        self.load_before = loadavg()
        if float(self.load_before.split()[0]) > 0.5:
            log(f"the machine is busy (load average {self.load_before}): expect noisy figures")
        t0 = time.monotonic()
        for kind in kinds:
            log(f"==== {kind} ====")
            self.run_kind(kind)
        self.load_after = loadavg()
        return time.monotonic() - t0


# ---- the table -------------------------------------------------------------------------------


def fmt_time_us(v):
    if v < 995:
        return f"{v / 1000:.2f} ms"
    if v < 999_500:
        ms = v / 1000
        return f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"
    return f"{v / 1e6:.2f} s"


def cell(vals, fmt, use="median", note=None):
    if vals is None:
        return "–"
    if isinstance(vals, str):
        return vals
    if not vals:
        return "–"
    extra = f"; {note}" if note else ""
    if use == "max":
        return f"{fmt(max(vals))} (n={len(vals)}{extra})"
    med = statistics.median(vals)
    if len(vals) == 1:
        return f"{fmt(med)} (n=1{extra})"
    return f"{fmt(med)} ({fmt(min(vals))}–{fmt(max(vals))}, n={len(vals)}{extra})"


def table(bench, elapsed, ver):
    R = bench.results
    rows = []
    mb = lambda v: f"{v:.1f} MB"
    pct = lambda v: f"{v:.2f} %"

    def row(title, key, fmt, target=None, use="median", ours_key=None):
        ours = R.get(ours_key or key, {}).get("ours")
        N = bench.notes
        cells = [cell(ours, fmt, use, N.get(ours_key or key, {}).get("ours"))]
        ratios = []
        for peer in ["supervisord", "pm2"]:
            v = R.get(key, {}).get(peer)
            cells.append(cell(v, fmt, use, N.get(key, {}).get(peer)))
        floor = R.get(ours_key or key, {}).get("floor")
        floor_cell = cell(floor, fmt, use, N.get(ours_key or key, {}).get("floor"))
        for peer in ["supervisord", "pm2"]:
            v = R.get(key, {}).get(peer)
            if isinstance(v, list) and v and isinstance(ours, list) and ours:
                o = statistics.median(ours) if use == "median" else max(ours)
                p = statistics.median(v) if use == "median" else max(v)
                r = p / o if o > 0 else None
                ratios.append("–" if r is None else f"×{r:.1f}" if r >= 0.1 else f"×{r:.3f}")
            else:
                ratios.append("–")
        met = ""
        if target is not None and isinstance(ours, list) and ours:
            o = statistics.median(ours) if use == "median" else max(ours)
            ok = o < target[0] and not bench.notes.get(ours_key or key, {}).get("ours")
            met = ("yes" if ok else "NO") + f" (< {target[1]}{', max' if use == 'max' else ''})"
        rows.append([title] + cells + ratios + [met, floor_cell])

    row("crash → new process (fastest config)", "crash_new", fmt_time_us, (600, "0.6 ms"))
    row("crash → healthy (fastest config)", "crash_healthy", fmt_time_us, (1500, "1.5 ms"))
    row("crash → new process (peer defaults)", "crash_new_def", fmt_time_us, ours_key="crash_new")
    row("crash → healthy (peer defaults)", "crash_healthy_def", fmt_time_us, ours_key="crash_healthy")
    if STORM_N in bench.sizes:
        row(f"crash → new process, {STORM_N} services running (fastest)", f"crash_new@{STORM_N}", fmt_time_us)
        row(f"crash → healthy, {STORM_N} services running (fastest)", f"crash_healthy@{STORM_N}", fmt_time_us)
    targets_rss = {10: None, 100: (8, "8 MB"), 1000: (25, "25 MB")}
    targets_cpu = {10: None, 100: (1, "1 %"), 1000: (5, "5 %")}
    for n in [CRASH_N] + bench.sizes:
        row(f"idle RSS, {n} services", f"rss@{n}", mb, targets_rss.get(n))
    for n in [CRASH_N] + bench.sizes:
        row(f"idle CPU, {n} services (% of a core)", f"cpu@{n}", pct, targets_cpu.get(n))
    for n in bench.sizes:
        row(f"status latency, {n} services", f"status@{n}", fmt_time_us,
            {100: (2000, "2 ms"), 1000: (10000, "10 ms")}.get(n))
    for n in bench.sizes:
        row(f"cold start → {n} healthy", f"cold@{n}", fmt_time_us,
            {100: (300000, "0.3 s"), 1000: (2000000, "2 s")}.get(n))
    row(f"restart storm: {STORM_N} killed → all healthy", "storm", fmt_time_us, (1000000, "1 s"))
    row("status latency during the storm (median)", "storm_status", fmt_time_us)
    row("status latency during the storm (max)", "storm_status", fmt_time_us, (50000, "50 ms"), use="max")

    head = ["figure", "ai-dawg-manager (ours)", "supervisord", "PM2", "supervisord/ours", "PM2/ours",
            "ours meets target?", "floor (C)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(r) + " |")
    notes = [
        "",
        f"- Each cell: median (min–max, n samples). Ratio > 1: the peer is slower / bigger than ours. "
        f"{'--quick run. ' if bench.quick else ''}Total {elapsed:.0f} s.",
        f"- Health checks: ours runs an HTTP GET /health on every service every 1 s; "
        f"supervisord and PM2 have no built-in health check (they only watch the process).",
        f"- Idle figures: {bench.idle_window} s window, {bench.settle} s after all services were healthy; "
        f"RSS and CPU of the supervisor's own processes only (ours: the `start` process; "
        f"supervisord: its python process; PM2: the God daemon), not the services.",
        f"- Fastest config: supervisord autorestart=true startsecs=0; PM2 autorestart: true, restart_delay: 0. "
        f"Defaults: neither set. Ours always: restart_cooldown 0, health_check_interval 1s.",
        f"- Floor (C): `bench/floor.c`, the least a supervisor can do — posix_spawn, waitpid on "
        f"SIGCHLD, one blocking GET /health per service per second, nothing else (no state file, "
        f"audit, socket or history; no status command). What this machine allows; not a peer.",
        f"- Versions: {ver}. Machine: {os.cpu_count()} cores, kernel {os.uname().release}; "
        f"load average before {bench.load_before}, after {bench.load_after} "
        f"(anything else running on the machine shows up in these figures).",
    ]
    return "\n".join(lines + notes)


def versions(bench):
    """Versions, without starting anything (`pm2 --version` would spawn a daemon)."""
    out = []
    for name, cmd in [
        ("ai-dawg-manager", [bench.ours, "--version"]),
        ("supervisord", [bench.supervisord, "--version"]),
    ]:
        try:
            v = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
            out.append(f"{name} {v.split()[-1] if v else '?'}")
        except Exception:
            out.append(f"{name} ?")
    try:
        pkg = os.path.join(os.path.dirname(os.path.realpath(bench.pm2)), "..", "package.json")
        with open(pkg) as f:
            out.append(f"PM2 {json.load(f)['version']}")
    except Exception:
        out.append("PM2 ?")
    return ", ".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer samples, no 1000-service runs (< 3 min)")
    ap.add_argument("--only", default="ours,supervisord,pm2,floor", help="comma-separated subset")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (configs, logs)")
    ap.add_argument("--sizes", help="service counts for the idle/status/cold-start runs, e.g. 100,1000")
    for k in ["ours", "tiny", "measure", "supervisord", "supervisorctl", "pm2", "floor", "results"]:
        ap.add_argument(f"--{k}", required=True)
    a = ap.parse_args()
    a.only = a.only.split(",")

    # PR_SET_CHILD_SUBREAPER: orphans of the supervisors become our children.
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:
        log("cannot become a child subreaper; cleanup relies on the pid sweep alone")

    bench = Bench(a)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        elapsed = bench.run()
        ver = versions(bench)
        text = table(bench, elapsed, ver)
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        bench.cleanup()
        return 130
    except BaseException:
        bench.cleanup()
        raise
    bench.cleanup()
    os.makedirs(a.results, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    tag = "quick" if a.quick else "full"
    with open(os.path.join(a.results, f"{stamp}-{tag}.json"), "w") as f:
        json.dump(
            {"quick": a.quick, "versions": ver, "results": bench.results, "notes": bench.notes},
            f,
            indent=1,
        )
    with open(os.path.join(a.results, f"{stamp}-{tag}.md"), "w") as f:
        f.write(text + "\n")
    print()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
