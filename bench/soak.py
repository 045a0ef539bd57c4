#!/usr/bin/env python3
"""Soak-test load driver for the suite (see bench/README.md; started by bench/soak.sh).

Python 3.8+, standard library only: asyncio with a small HTTP/1.1 keep-alive client of its own
(loopback only). It

1. sets up a few tenants (register) and widget sessions,
2. measures capacity with a short closed-loop ramp of the traffic mix (unless --rate is given),
3. runs the soak: an OPEN-LOOP fixed arrival rate (requests start on schedule whether or not earlier
   ones have finished, up to --max-inflight; arrivals beyond the cap are skipped and counted, and
   arrivals started more than --late-ms behind schedule are counted as late),
4. samples the resident memory of the suite process and of PostgreSQL (postmaster + backends),
5. prints a table, writes every figure to a JSON file, and exits 0 only when the verdict is clean.

The traffic mirrors what a tenant and its widget users do: register, login, me, onboarding status,
subscription, plans, session init, chatkit streams, plus a deliberate rate-limit probe (one widget
session validated faster than RATE_LIMIT_SESSION_PER_MINUTE allows: its 429s are the intended ones).
"""

import argparse
import asyncio
import collections
import json
import math
import os
import random
import resource
import socket
import sys
import time
import traceback

# route -> (method, path, statuses that count as success)
ROUTES = collections.OrderedDict([
    ("register", ("POST", "/api/onboarding/register", (201,))),
    ("login", ("POST", "/api/auth/login", (200,))),
    ("me", ("GET", "/api/auth/me", (200,))),
    ("status", ("GET", "/api/onboarding/status", (200,))),
    ("subscription", ("GET", "/api/payments/subscription", (200,))),
    ("plans", ("GET", "/api/payments/plans", (200,))),
    ("init", ("POST", "/api/sessions/init", (201,))),
    ("chatkit", ("POST", "/chatkit", (200,))),
    ("probe", ("POST", "/api/sessions/validate", (200,))),
])
# Weights per 1000 arrivals. bcrypt makes register and login ~100x the CPU of the other routes.
DEFAULT_MIX = "register=2,login=4,me=200,status=150,subscription=150,plans=200,init=60,chatkit=180,probe=4"
# Routes whose 429s are intended (the probe exists to exceed its session's limit).
INTENDED_429_ROUTES = {"probe"}
# The cheap request/response routes, for the timeline's "light" latency column.
LIGHT_ROUTES = ("me", "status", "subscription", "plans", "init", "probe")
PASSWORD = "SoakPass123"
MiB = 1024.0


def log(message):
    print(f"[soak] {message}", file=sys.stderr, flush=True)


def percentile(sorted_values, p):
    """Nearest-rank percentile of an already sorted list (None when empty)."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100.0 * len(sorted_values)) - 1))
    return sorted_values[k]


def summary_ms(values):
    values = sorted(values)
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": values[-1] if values else None,
    }


def fmt_ms(value, width=8):
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.1f}"


def parse_mix(text):
    weights = collections.OrderedDict((name, 0.0) for name in ROUTES)
    for spec in (DEFAULT_MIX, text or ""):
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            name, _, value = item.partition("=")
            name = name.strip()
            if name not in ROUTES:
                raise SystemExit(f"MIX: unknown route {name!r}; routes: {', '.join(ROUTES)}")
            try:
                weight = float(value)
            except ValueError:
                raise SystemExit(f"MIX: weight of {name} must be a number, got {value!r}")
            if weight < 0 or not math.isfinite(weight):
                raise SystemExit(f"MIX: weight of {name} must be >= 0")
            weights[name] = weight
    if sum(weights.values()) <= 0:
        raise SystemExit("MIX: all weights are zero")
    return weights


# --------------------------------------------------------------------------------------------------
# HTTP/1.1 client: keep-alive pool on one host, chunked and Content-Length bodies, SSE events.

class TransportError(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


class _NoResponse(Exception):
    """The connection failed before any byte of the response arrived (maybe a stale keep-alive)."""


class Response:
    __slots__ = ("status", "headers", "body", "first_event", "events", "keep_alive")

    def __init__(self):
        self.status = 0
        self.headers = {}
        self.body = b""
        self.first_event = None  # perf_counter() of the first complete SSE event
        self.events = None       # list of SSE data payloads (bytes) when sse=True
        self.keep_alive = False


class _SSE:
    def __init__(self, response):
        self.response = response
        self.buffer = b""
        response.events = []

    def feed(self, data):
        self.buffer += data.replace(b"\r\n", b"\n")
        while True:
            end = self.buffer.find(b"\n\n")
            if end < 0:
                return
            raw, self.buffer = self.buffer[:end], self.buffer[end + 2:]
            if self.response.first_event is None:
                self.response.first_event = time.perf_counter()
            payload = [line[5:].lstrip(b" ") for line in raw.split(b"\n") if line.startswith(b"data:")]
            self.response.events.append(b"\n".join(payload))


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer

    def usable(self):
        return not (self.reader.at_eof() or self.writer.is_closing())

    def close(self):
        try:
            self.writer.close()
        except Exception:
            pass


class Client:
    def __init__(self, host, port, max_idle):
        self.host = host
        self.port = port
        self.authority = f"{host}:{port}"
        self.max_idle = max_idle
        self.idle = []
        self.opened = 0
        self.stale_retries = 0
        self.dropped_idle = 0

    async def _connect(self):
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        except OSError as error:
            raise TransportError("connect error", f"{type(error).__name__}: {error}")
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.opened += 1
        return _Connection(reader, writer)

    def close_all(self):
        for connection in self.idle:
            connection.close()
        self.idle.clear()

    async def request(self, method, path, headers, body, sse=False):
        for attempt in (0, 1):
            connection, reused = None, False
            while self.idle:
                candidate = self.idle.pop()
                if candidate.usable():
                    connection, reused = candidate, True
                    break
                candidate.close()
                self.dropped_idle += 1
            if connection is None:
                connection = await self._connect()
            try:
                response = await self._exchange(connection, method, path, headers, body, sse)
            except _NoResponse as error:
                connection.close()
                if reused and attempt == 0:
                    # A keep-alive connection the server closed while idle: retry once on a new one,
                    # as any HTTP client would (counted, so a server closing early still shows).
                    self.stale_retries += 1
                    continue
                raise TransportError("connection closed", f"no response: {error}")
            except TransportError:
                connection.close()
                raise
            except (asyncio.IncompleteReadError, ConnectionError, OSError) as error:
                connection.close()
                raise TransportError("connection closed", f"{type(error).__name__}: {error}")
            except asyncio.LimitOverrunError as error:
                connection.close()
                raise TransportError("protocol error", f"line too long: {error}")
            except BaseException:
                connection.close()  # cancelled (timeout) or a bug: never reuse a half-read connection
                raise
            if response.keep_alive and len(self.idle) < self.max_idle:
                self.idle.append(connection)
            else:
                connection.close()
            return response
        raise AssertionError("unreachable")

    async def _exchange(self, connection, method, path, headers, body, sse):
        reader, writer = connection.reader, connection.writer
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.authority}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            writer.write(head + (body or b""))
            await writer.drain()
            raw_head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as error:
            if error.partial:
                raise TransportError("protocol error", f"incomplete response head: {error.partial[:200]!r}")
            raise _NoResponse("connection closed before the response")
        except (ConnectionError, BrokenPipeError) as error:
            raise _NoResponse(f"{type(error).__name__}: {error}")

        response = Response()
        head_lines = raw_head.decode("latin-1").split("\r\n")
        parts = head_lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise TransportError("protocol error", f"bad status line {head_lines[0][:200]!r}")
        version, response.status = parts[0], int(parts[1])
        for line in head_lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            key = name.strip().lower()
            value = value.strip()
            response.headers[key] = f"{response.headers[key]}, {value}" if key in response.headers else value
        if 100 <= response.status < 200:
            raise TransportError("protocol error", f"unexpected interim response {response.status}")

        parser = _SSE(response) if sse and response.status == 200 else None
        chunks = []
        until_eof = False
        transfer = response.headers.get("transfer-encoding", "").lower()
        if method == "HEAD" or response.status in (204, 304):
            pass
        elif "chunked" in transfer:
            while True:
                size_line = await reader.readuntil(b"\r\n")
                try:
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise TransportError("protocol error", f"bad chunk size {size_line[:100]!r}")
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass  # trailers
                    break
                data = await reader.readexactly(size)
                if await reader.readexactly(2) != b"\r\n":
                    raise TransportError("protocol error", "chunk not followed by CRLF")
                if parser:
                    parser.feed(data)
                chunks.append(data)
        elif "content-length" in response.headers:
            try:
                length = int(response.headers["content-length"])
            except ValueError:
                raise TransportError("protocol error", f"bad Content-Length {response.headers['content-length']!r}")
            data = await reader.readexactly(length) if length else b""
            if parser:
                parser.feed(data)
            chunks.append(data)
        else:
            until_eof = True
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if parser:
                    parser.feed(data)
                chunks.append(data)
        response.body = b"".join(chunks)
        response.keep_alive = (
            version == "HTTP/1.1"
            and not until_eof
            and "close" not in response.headers.get("connection", "").lower()
        )
        return response


# --------------------------------------------------------------------------------------------------
# Results

class RouteStats:
    def __init__(self):
        self.scheduled = 0      # open loop: arrivals of this route
        self.skipped = 0        # open loop: not started, the in-flight cap was reached
        self.late = 0           # open loop: started more than --late-ms behind schedule
        self.sent = 0
        self.ok = 0
        self.intended_429 = 0
        self.errors = collections.Counter()    # kind -> count
        self.statuses = collections.Counter()  # "200", "429", "timeout", ...
        self.latency = []                      # ms, successful answers only
        self.first_event = []                  # ms, chatkit: time to the first SSE event
        self.examples = []                     # a few errors with request ids, for repros


class Recorder:
    """Results of one phase; time buckets of `bucket` seconds for the timeline."""

    def __init__(self, name, bucket=30.0, last_bucket=None):
        self.name = name
        self.t0 = time.perf_counter()
        self.bucket = bucket
        self.last_bucket = last_bucket  # completions after the end (the drain) go into the last bucket
        self.routes = collections.OrderedDict((name, RouteStats()) for name in ROUTES)
        self.buckets = collections.defaultdict(lambda: {"done": 0, "errors": 0, "r429": 0, "lat": collections.defaultdict(list)})
        self.unfinished = 0
        self.lag_ms = []

    def _bucket(self):
        index = int((time.perf_counter() - self.t0) // self.bucket)
        if self.last_bucket is not None:
            index = min(index, self.last_bucket)
        return self.buckets[index]

    def sent(self, route):
        self.routes[route].sent += 1

    def ok(self, route, status, latency_ms, first_event_ms=None):
        stats = self.routes[route]
        stats.ok += 1
        stats.statuses[str(status)] += 1
        stats.latency.append(latency_ms)
        if first_event_ms is not None:
            stats.first_event.append(first_event_ms)
        bucket = self._bucket()
        bucket["done"] += 1
        bucket["lat"][route].append(latency_ms)

    def rate_limited(self, route):
        stats = self.routes[route]
        stats.intended_429 += 1
        stats.statuses["429"] += 1
        bucket = self._bucket()
        bucket["done"] += 1
        bucket["r429"] += 1

    def error(self, route, kind, status_label, detail, request_id):
        stats = self.routes[route]
        stats.errors[kind] += 1
        stats.statuses[status_label] += 1
        if len(stats.examples) < 5:
            stats.examples.append({"kind": kind, "detail": detail[:400], "request_id": request_id,
                                   "at_s": round(time.perf_counter() - self.t0, 2)})
        bucket = self._bucket()
        bucket["done"] += 1
        bucket["errors"] += 1

    def total_errors(self):
        return sum(sum(s.errors.values()) for s in self.routes.values())

    def to_json(self):
        routes = {}
        for name, s in self.routes.items():
            if not (s.sent or s.scheduled):
                continue
            entry = {
                "scheduled": s.scheduled, "skipped_at_cap": s.skipped, "late_starts": s.late,
                "sent": s.sent, "ok": s.ok, "rate_limited_429": s.intended_429,
                "errors": sum(s.errors.values()), "error_kinds": dict(s.errors),
                "statuses": dict(s.statuses), "latency_ms": summary_ms(s.latency),
                "error_examples": s.examples,
            }
            if s.first_event:
                entry["first_event_ms"] = summary_ms(s.first_event)
            routes[name] = entry
        timeline = []
        for index in sorted(self.buckets):
            b = self.buckets[index]
            light = sorted(v for r in LIGHT_ROUTES for v in b["lat"].get(r, []))
            chat = sorted(b["lat"].get("chatkit", []))
            timeline.append({
                "from_s": index * self.bucket, "to_s": (index + 1) * self.bucket,
                "completed": b["done"], "errors": b["errors"], "rate_limited_429": b["r429"],
                "light_p50_ms": percentile(light, 50), "light_p99_ms": percentile(light, 99),
                "chatkit_p50_ms": percentile(chat, 50), "chatkit_p99_ms": percentile(chat, 99),
                "per_route": {r: {"n": len(v), "p50_ms": percentile(sorted(v), 50), "p99_ms": percentile(sorted(v), 99)}
                              for r, v in b["lat"].items()},
            })
        lag = sorted(self.lag_ms)
        return {"routes": routes, "timeline": timeline, "unfinished_at_end": self.unfinished,
                "start_lag_ms": {"p50": percentile(lag, 50), "p99": percentile(lag, 99), "max": lag[-1] if lag else None}}


# --------------------------------------------------------------------------------------------------
# Memory of the suite and of PostgreSQL, from /proc

def read_status(pid):
    """VmRSS/RssAnon/RssFile/RssShmem (KiB) and Threads of one process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "Threads"):
            values[key] = int(rest.split()[0])
    return values


def read_pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_seconds(pid, children=False):
    """User + system CPU seconds of a process (with children=True, plus those of its reaped children)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        if children:
            ticks += int(fields[13]) + int(fields[14])
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def children_of(parent):
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if len(fields) > 1 and fields[1] == str(parent):
            pids.append(int(entry))
    return pids


def postmaster_pid(pidfile):
    try:
        with open(pidfile) as f:
            return int(f.readline().strip())
    except (OSError, ValueError):
        return None


def machine_busy_seconds():
    """CPU seconds all processes of the machine were busy (summed over CPUs), from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...: everything but idle and iowait.
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / os.sysconf("SC_CLK_TCK")


class MemorySampler:
    """Memory (and CPU, to tell whether the machine was quiet) of the suite and PostgreSQL."""

    def __init__(self, suite_pid, pg_pidfile):
        self.suite_pid = suite_pid
        self.pg_pidfile = pg_pidfile
        self.samples = []
        self.t0 = time.monotonic()

    def sample(self, phase, note=""):
        now = time.monotonic()
        times = os.times()
        entry = {"t_s": round(now - self.t0, 1), "phase": phase, "note": note, "wall": time.strftime("%H:%M:%S"),
                 "machine_busy_cpu_s": machine_busy_seconds(), "driver_cpu_s": times.user + times.system}
        suite = read_status(self.suite_pid) if self.suite_pid else None
        if suite:
            try:
                fds = len(os.listdir(f"/proc/{self.suite_pid}/fd"))
            except OSError:
                fds = None
            entry["suite"] = {"rss_kb": suite.get("VmRSS"), "anon_kb": suite.get("RssAnon"),
                              "threads": suite.get("Threads"), "fds": fds, "cpu_s": cpu_seconds(self.suite_pid)}
        master = postmaster_pid(self.pg_pidfile) if self.pg_pidfile else None
        if master and read_status(master):
            pids = [master] + children_of(master)
            total = {"rss_kb": 0, "anon_kb": 0, "shmem_kb": 0, "pss_kb": 0, "cpu_s": 0.0}
            pss_known = True
            procs = 0
            per_pid = {}
            for pid in pids:
                status = read_status(pid)
                if not status:
                    continue
                procs += 1
                per_pid[str(pid)] = status.get("RssAnon", 0)
                # Backends that ended are in the postmaster's children figures.
                total["cpu_s"] += cpu_seconds(pid, children=(pid == master)) or 0.0
                total["rss_kb"] += status.get("VmRSS", 0)
                total["anon_kb"] += status.get("RssAnon", 0)
                total["shmem_kb"] += status.get("RssShmem", 0)
                pss = read_pss_kb(pid)
                if pss is None:
                    pss_known = False
                else:
                    total["pss_kb"] += pss
            if not pss_known:
                total["pss_kb"] = None
            master_status = read_status(master) or {}
            entry["postgres"] = dict(total, procs=procs, postmaster_pid=master,
                                     postmaster_rss_kb=master_status.get("VmRSS"), anon_kb_per_pid=per_pid)
        self.samples.append(entry)
        return entry


def slope_per_minute(points):
    """Least-squares slope (unit per minute) of [(seconds, value)]; None with fewer than 3 points."""
    points = [(t, v) for t, v in points if v is not None]
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / var * 60.0


# Series judged for leaks. The others are shown for information: VmRSS summed over PostgreSQL
# processes counts the shared buffers once per backend (it grows as backends touch more of them),
# and its Pss grows with the data as the tables fill shared_buffers.
JUDGED = {"suite VmRSS", "postgres RssAnon (sum)"}


def memory_report(samples, soak_seconds):
    """start/end/max/slope per series, in MiB, over the soak's samples, with a leak verdict."""
    soak = [s for s in samples if s["phase"] == "soak"]
    series = collections.OrderedDict([
        ("suite VmRSS", ("suite", "rss_kb")),
        ("suite RssAnon", ("suite", "anon_kb")),
        ("postgres VmRSS (sum)", ("postgres", "rss_kb")),
        ("postgres RssAnon (sum)", ("postgres", "anon_kb")),
        ("postgres Pss (sum)", ("postgres", "pss_kb")),
    ])
    report = collections.OrderedDict()
    for label, (group, key) in series.items():
        picked = [s for s in soak if s.get(group) and s[group].get(key) is not None]
        points = [(s["t_s"], s[group][key] / MiB) for s in picked]
        if len(points) < 2:
            continue
        values = [v for _, v in points]
        middle = points[0][0] + (points[-1][0] - points[0][0]) / 2
        half = [p for p in points if p[0] >= middle]
        half_samples = [s for s in picked if s["t_s"] >= middle]
        entry = {
            "start_mib": round(values[0], 1), "end_mib": round(values[-1], 1), "max_mib": round(max(values), 1),
            "growth_mib": round(values[-1] - values[0], 1),
            "slope_mib_per_min": _round(slope_per_minute(points), 2),
            "second_half_slope_mib_per_min": _round(slope_per_minute(half), 2),
            "second_half_growth_mib": round(half[-1][1] - half[0][1], 1),
        }
        # Leak judgement: growth over the second half of the soak (the first half includes pools,
        # caches and allocator arenas filling up). Needs >= 5 minutes to mean anything.
        if label not in JUDGED:
            entry["verdict"] = "info"
        elif soak_seconds < 300:
            entry["verdict"] = "too short to judge"
        elif group == "postgres":
            # Pools open and close backends, so compare only the processes alive through the whole
            # second half: their private memory must not grow.
            before = half_samples[0][group].get("anon_kb_per_pid") or {}
            after = half_samples[-1][group].get("anon_kb_per_pid") or {}
            kept = [pid for pid in before if pid in after]
            a = sum(before[pid] for pid in kept) / MiB
            b = sum(after[pid] for pid in kept) / MiB
            limit = max(4.0, 0.03 * a)
            entry["second_half_same_processes"] = {"processes": len(kept), "start_mib": round(a, 1),
                                                   "end_mib": round(b, 1), "growth_mib": round(b - a, 1)}
            entry["second_half_limit_mib"] = round(limit, 1)
            entry["verdict"] = "flat" if b - a <= limit else "GROWING"
            entry["verdict"] += f" ({len(kept)} processes alive throughout: {b - a:+.1f} MiB)"
        else:
            limit = max(4.0, 0.03 * half[0][1])
            entry["verdict"] = "flat" if entry["second_half_growth_mib"] <= limit else "GROWING"
            entry["second_half_limit_mib"] = round(limit, 1)
        report[label] = entry
    extra = collections.OrderedDict()
    if soak:
        first, last = soak[0], soak[-1]
        for key in ("threads", "fds"):
            a = (first.get("suite") or {}).get(key)
            b = (last.get("suite") or {}).get(key)
            if a is not None and b is not None:
                extra[f"suite {key}"] = {"start": a, "end": b, "max": max((s.get("suite") or {}).get(key) or 0 for s in soak)}
        a = (first.get("postgres") or {}).get("procs")
        b = (last.get("postgres") or {}).get("procs")
        if a is not None and b is not None:
            extra["postgres processes"] = {"start": a, "end": b, "max": max((s.get("postgres") or {}).get("procs") or 0 for s in soak)}
        cpu = cpu_split(first, last)
        extra["cpu cores (avg over the soak)"] = {k: _round(v, 2) for k, v in cpu.items()}
    return report, extra


def cpu_split(a, b):
    """Cores used between two samples by the suite, PostgreSQL, this driver and everything else."""
    dt = b.get("t_s", 0) - a.get("t_s", 0)
    result = {"suite": None, "postgres": None, "driver": None, "other": None}
    if dt <= 0:
        return result
    for group in ("suite", "postgres"):
        x = (a.get(group) or {}).get("cpu_s")
        y = (b.get(group) or {}).get("cpu_s")
        if x is not None and y is not None:
            result[group] = (y - x) / dt
    if a.get("driver_cpu_s") is not None and b.get("driver_cpu_s") is not None:
        result["driver"] = (b["driver_cpu_s"] - a["driver_cpu_s"]) / dt
    ours = [result["suite"], result["postgres"], result["driver"]]
    if a.get("machine_busy_cpu_s") is not None and b.get("machine_busy_cpu_s") is not None and None not in ours:
        busy = (b["machine_busy_cpu_s"] - a["machine_busy_cpu_s"]) / dt
        result["other"] = max(0.0, busy - sum(ours))
    return result


def _fmt2(value, width):
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.2f}"


def _round(value, digits):
    return None if value is None else round(value, digits)


# --------------------------------------------------------------------------------------------------
# The traffic

class Driver:
    def __init__(self, args, weights):
        self.args = args
        self.client = Client(args.host, args.port, max_idle=args.max_inflight)
        self.rng = random.Random(args.seed)  # which account or session a request uses
        self.weights = weights
        # Smooth weighted round-robin (as nginx balances upstreams): every route gets its share,
        # evenly spread, so rare expensive requests (bcrypt) do not arrive in random clumps.
        self.route_names = [name for name, w in weights.items() if w > 0]
        self.route_weights = [weights[name] for name in self.route_names]
        self.route_current = [0.0] * len(self.route_names)
        self.route_total = sum(self.route_weights)
        self.run_id = "%06x" % random.Random().getrandbits(24)
        self.sequence = 0
        self.accounts = []                  # dicts: email, token, slug
        self.account_serial = 0
        self.sessions = collections.deque()  # [session_id, chats left]
        self.inline_inits = 0
        self.rec = None
        self.probe_session = None
        self.probe_admitted = []            # monotonic times of admitted probe requests
        self.probe_refused = 0
        self.probe_first = None
        self.probe_limit_header = set()
        self.driver_exceptions = 0
        self.transport_errors = 0
        self.suite_gone = False

    # -- helpers --------------------------------------------------------------------------------
    def choose(self):
        best = 0
        for i, weight in enumerate(self.route_weights):
            self.route_current[i] += weight
            if self.route_current[i] > self.route_current[best]:
                best = i
        self.route_current[best] -= self.route_total
        return self.route_names[best]

    def account(self):
        return self.rng.choice(self.accounts)

    def add_account(self, account):
        self.accounts.append(account)
        if len(self.accounts) > self.args.max_accounts:
            del self.accounts[0]

    async def call(self, route, path=None, headers=(), body=None, sse=False, timeout=None):
        """Sends one request and records failures; returns (response, latency_ms, request_id,
        perf_counter at the start) on an expected status, None otherwise (already recorded)."""
        method, default_path, expected = ROUTES[route]
        self.sequence += 1
        request_id = f"soak-{self.run_id}-{self.sequence}"
        all_headers = [("X-Request-ID", request_id), ("User-Agent", "bench-soak/1"), ("Accept", "*/*")]
        if body is not None:
            all_headers.append(("Content-Type", "application/json"))
        all_headers += list(headers)
        data = None if body is None else json.dumps(body).encode()
        self.rec.sent(route)
        started = time.perf_counter()
        outcome = None
        try:
            response = await asyncio.wait_for(
                self.client.request(method, path or default_path, all_headers, data, sse=sse),
                timeout or self.args.timeout)
        except asyncio.TimeoutError:
            outcome = ("timeout", f"no complete answer within {timeout or self.args.timeout}s")
        except TransportError as error:
            outcome = (error.kind, str(error))
        rec = self.rec  # results count in the phase in which they complete
        if outcome:
            self.transport_errors += 1
            rec.error(route, outcome[0], outcome[0], outcome[1], request_id)
            return None
        latency = (time.perf_counter() - started) * 1000.0
        if response.status == 429:
            detail = f"429 {response.body[:200]!r} retry-after={response.headers.get('retry-after')}"
            if route in INTENDED_429_ROUTES or self.args.all_429_intended:
                if not response.headers.get("retry-after"):
                    rec.error(route, "429 without Retry-After", "429", detail, request_id)
                else:
                    rec.rate_limited(route)
                if route == "probe":
                    self.probe_refused += 1
            else:
                rec.error(route, "unintended 429", "429", detail, request_id)
            return None
        if response.status not in expected:
            rec.error(route, f"status {response.status}", str(response.status),
                      f"{response.status} {response.body[:300]!r}", request_id)
            return None
        return response, latency, request_id, started

    def bad_body(self, route, response, request_id, what):
        self.rec.error(route, "bad body", str(response.status), f"{what}: {response.body[:300]!r}", request_id)

    @staticmethod
    def json_of(response):
        try:
            return json.loads(response.body)
        except ValueError:
            return None

    # -- routes -------------------------------------------------------------------------------
    async def op_register(self):
        self.account_serial += 1
        tag = f"{self.run_id}-{self.account_serial}"
        email = f"soak-{tag}@example.com"
        result = await self.call("register", body={"email": email, "password": PASSWORD, "account_name": f"Soak {tag}"})
        if not result:
            return False
        response, latency, request_id, _ = result
        data = self.json_of(response)
        if not isinstance(data, dict) or not data.get("access_token") or not data.get("tenant_slug"):
            self.bad_body("register", response, request_id, "no access_token/tenant_slug")
            return False
        self.add_account({"email": email, "token": data["access_token"], "slug": data["tenant_slug"]})
        self.rec.ok("register", response.status, latency)
        return True

    async def op_login(self):
        account = self.account()
        result = await self.call("login", body={"email": account["email"], "password": PASSWORD})
        if not result:
            return
        response, latency, request_id, _ = result
        data = self.json_of(response)
        if not isinstance(data, dict) or not data.get("access_token"):
            self.bad_body("login", response, request_id, "no access_token")
            return
        account["token"] = data["access_token"]
        self.rec.ok("login", response.status, latency)

    async def _bearer_get(self, route, check):
        account = self.account()
        result = await self.call(route, headers=[("Authorization", f"Bearer {account['token']}")])
        if not result:
            return
        response, latency, request_id, _ = result
        data = self.json_of(response)
        if not check(data):
            self.bad_body(route, response, request_id, "unexpected JSON")
            return
        self.rec.ok(route, response.status, latency)

    async def op_me(self):
        await self._bearer_get("me", lambda d: isinstance(d, dict) and "tenant_slug" in d)

    async def op_status(self):
        await self._bearer_get("status", lambda d: isinstance(d, dict))

    async def op_subscription(self):
        await self._bearer_get("subscription", lambda d: isinstance(d, dict) and "status" in d)

    async def op_plans(self):
        result = await self.call("plans")
        if not result:
            return
        response, latency, request_id, _ = result
        if self.json_of(response) is None:
            self.bad_body("plans", response, request_id, "not JSON")
            return
        self.rec.ok("plans", response.status, latency)

    async def op_init(self, slug=None):
        slug = slug or self.account()["slug"]
        result = await self.call("init", headers=[("X-Tenant-Slug", slug)], body={})
        if not result:
            return None
        response, latency, request_id, _ = result
        data = self.json_of(response)
        if not isinstance(data, dict) or not data.get("session_id"):
            self.bad_body("init", response, request_id, "no session_id")
            return None
        self.rec.ok("init", response.status, latency)
        return data["session_id"]

    def store_session(self, session_id):
        self.sessions.append([session_id, self.args.chats_per_session])
        while len(self.sessions) > self.args.max_sessions:
            self.sessions.popleft()

    async def op_session(self):
        session_id = await self.op_init()
        if session_id:
            self.store_session(session_id)

    async def op_chatkit(self):
        if self.sessions:
            entry = self.sessions.popleft()
            entry[1] -= 1
            if entry[1] > 0:
                self.sessions.append(entry)
            session_id = entry[0]
        else:
            # The mix made fewer sessions than chats need: open one now (recorded under init).
            self.inline_inits += 1
            session_id = await self.op_init()
            if not session_id:
                return
            self.sessions.append([session_id, self.args.chats_per_session - 1])
        result = await self.call("chatkit", headers=[("X-Session-ID", session_id)],
                                 body={"messages": [{"role": "user", "content": "hi"}]},
                                 sse=True, timeout=self.args.stream_timeout)
        if not result:
            return
        response, latency, request_id, started = result
        events = response.events or []
        if not events or events[-1] != b"[DONE]":
            last = events[-1][:120] if events else b"(no events)"
            self.rec.error("chatkit", "stream without [DONE]", "200", f"{len(events)} events, last {last!r}", request_id)
            return
        if not any(b'"message.completed"' in e for e in events):
            self.rec.error("chatkit", "stream without message.completed", "200", f"{len(events)} events", request_id)
            return
        first = (response.first_event - started) * 1000.0 if response.first_event else None
        self.rec.ok("chatkit", response.status, latency, first)

    async def op_probe(self):
        if self.probe_first is None:
            self.probe_first = time.monotonic()
        result = await self.call("probe", headers=[("X-Session-ID", self.probe_session)])
        if not result:
            return
        response, latency, request_id, _ = result
        data = self.json_of(response)
        if data != {"valid": True}:
            self.bad_body("probe", response, request_id, "expected {\"valid\": true}")
            return
        self.probe_admitted.append(time.monotonic())
        self.probe_limit_header.add(response.headers.get("x-ratelimit-limit"))
        self.rec.ok("probe", response.status, latency)

    async def watch_suite(self):
        """Notices within a second when the suite process has gone (then every phase stops)."""
        pid = self.args.suite_pid
        if not pid:
            return
        while True:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except OSError:
                state = "gone"
            if state in ("Z", "X", "gone"):
                self.suite_gone = True
                log(f"the suite (pid {pid}) is no longer running; stopping")
                return
            await asyncio.sleep(1.0)

    async def run_route(self, route):
        try:
            await getattr(self, "op_session" if route == "init" else f"op_{route}")()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.driver_exceptions += 1
            self.rec.error(route, "driver exception", "exception", f"{type(error).__name__}: {error}", None)
            if self.driver_exceptions <= 3:
                traceback.print_exc()

    # -- phases -------------------------------------------------------------------------------
    async def setup(self):
        self.rec = Recorder("setup")
        for _ in range(self.args.seed_accounts):
            if not await self.op_register():
                break
        if not self.accounts:
            return False
        self.probe_session = await self.op_init(self.accounts[0]["slug"])
        for _ in range(4):
            await self.op_session()
        return self.probe_session is not None and self.rec.total_errors() == 0

    async def measure_capacity(self, sampler):
        """Closed loop, ramped without pauses: each step adds workers (each sends the mix, one request
        after the other), lets the system settle, then counts completions. Not draining between steps
        matters: a fresh start would leave slow bcrypt requests out of a short window and overstate
        capacity. Stops when a step gains less than 5 % (or has errors); capacity = best step."""
        loop = asyncio.get_running_loop()
        workers = []
        stopping = False

        async def worker():
            while not stopping and not self.suite_gone:
                failed = self.transport_errors
                await self.run_route(self.choose())
                if self.transport_errors != failed:
                    await asyncio.sleep(0.05)  # refused connections fail at once: do not spin

        steps = []
        best = 0.0
        plan = list(self.args.ramp)
        extra = 0
        index = 0
        while index < len(plan):
            concurrency = plan[index]
            index += 1
            while len(workers) < concurrency:
                workers.append(asyncio.ensure_future(worker()))
            settle = self.rec = Recorder(f"ramp-{concurrency}-settle")
            await asyncio.sleep(self.args.ramp_settle)
            rec = self.rec = Recorder(f"ramp-{concurrency}", bucket=self.args.ramp_step)
            first = sampler.sample("ramp", f"{concurrency} start")
            started = time.perf_counter()
            await asyncio.sleep(self.args.ramp_step)
            elapsed = time.perf_counter() - started
            last = sampler.sample("ramp", f"{concurrency} end")
            self.rec = Recorder("ramp-between")
            cpu = cpu_split(first, last)
            if self.suite_gone:
                break
            completed = sum(r.ok + r.intended_429 for r in rec.routes.values())
            errors = rec.total_errors()
            throughput = completed / elapsed
            light = sorted(v for r in LIGHT_ROUTES for v in rec.routes[r].latency)
            step = {"concurrency": concurrency, "seconds": round(elapsed, 2), "completed_per_s": round(throughput, 1),
                    "completed": completed, "errors": errors, "light_p50_ms": _round(percentile(light, 50), 1),
                    "light_p99_ms": _round(percentile(light, 99), 1), "result": rec.to_json(),
                    "settle_errors": settle.total_errors(), "settle_result": settle.to_json()["routes"],
                    "cpu_cores": {k: _round(v, 2) for k, v in cpu.items()}}
            if cpu["suite"] is not None and cpu["postgres"] is not None and completed:
                # CPU the suite and PostgreSQL spent per completed request: should not fall much as
                # concurrency rises; if it does, the step's count is not trustworthy.
                step["cpu_ms_per_request"] = round((cpu["suite"] + cpu["postgres"]) * elapsed / completed * 1000.0, 2)
            steps.append(step)
            log(f"ramp: {concurrency:>3} concurrent -> {throughput:7.1f} req/s, light p50 {fmt_ms(step['light_p50_ms'], 0)} ms"
                f" p99 {fmt_ms(step['light_p99_ms'], 0)} ms, errors {errors}, other processes {_fmt2(cpu['other'], 0)} cores")
            if errors > max(2, 0.01 * (completed + errors)):
                log("ramp: errors above 1 %, stopping the ramp here")
                break
            if throughput < best * 1.05:
                break  # saturated: more concurrency no longer buys throughput
            best = max(best, throughput)
            if index == len(plan) and extra < 3 and concurrency * 2 <= self.args.max_inflight:
                plan.append(concurrency * 2)  # still growing at the last step: go on (at most 3 more)
                extra += 1
        stopping = True
        done, pending = await asyncio.wait(workers, timeout=self.args.stream_timeout + 5)
        for task in pending:
            task.cancel()
        good = [s["completed_per_s"] for s in steps if s["errors"] <= max(2, 0.01 * (s["completed"] + s["errors"]))]
        return max(good or [0.0]), steps

    async def open_loop(self, rate, duration, sampler):
        loop = asyncio.get_running_loop()
        rec = self.rec = Recorder("soak", bucket=self.args.sample_interval,
                                  last_bucket=max(0, math.ceil(duration / self.args.sample_interval) - 1))
        count = int(round(rate * duration))
        inflight = set()
        sampler.sample("soak", "start")
        next_sample = 1
        start = loop.time() + 0.01
        t0 = start
        for i in range(count):
            if self.suite_gone:
                break
            due = start + i / rate
            # Memory samples on the same clock as the arrivals (every --sample-interval seconds).
            while t0 + next_sample * self.args.sample_interval <= due:
                sampler.sample("soak", f"{next_sample * self.args.sample_interval:.0f}s")
                next_sample += 1
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            lag_ms = (loop.time() - due) * 1000.0
            route = self.choose()
            stats = rec.routes[route]
            stats.scheduled += 1
            if len(inflight) >= self.args.max_inflight:
                stats.skipped += 1
                continue
            if lag_ms > self.args.late_ms:
                stats.late += 1
            rec.lag_ms.append(lag_ms)
            task = asyncio.ensure_future(self.run_route(route))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
        # Let the last requests finish (bounded), then take the final sample.
        remaining = start + duration - loop.time()
        if remaining > 0:
            await asyncio.sleep(remaining)
        if inflight:
            done, pending = await asyncio.wait(set(inflight), timeout=self.args.stream_timeout + 5)
            for task in pending:
                task.cancel()
            rec.unfinished = len(pending)
        while next_sample * self.args.sample_interval <= duration + 1e-6:
            sampler.sample("soak", f"{next_sample * self.args.sample_interval:.0f}s")
            next_sample += 1
        sampler.sample("soak", "end")
        return rec


# --------------------------------------------------------------------------------------------------
# Report

def summarize_suite_log(path, limit=8):
    """Counts JSON log lines per level and lists the most frequent warning/error messages."""
    levels = collections.Counter()
    messages = collections.Counter()
    other = 0
    if not path or not os.path.exists(path):
        return None
    with open(path, errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                other += 1
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                other += 1
                continue
            level = str(entry.get("level", "?")).lower()
            levels[level] += 1
            if level in ("warning", "error", "critical"):
                label = entry.get("label") or entry.get("service") or ""
                messages[f"{level} {label}: {entry.get('message', '')}"[:160]] += 1
    return {"levels": dict(levels), "non_json_lines": other,
            "top_warnings_errors": [{"message": m, "count": n} for m, n in messages.most_common(limit)]}


def render(result):
    out = []
    cfg = result["config"]
    soak = result["soak"]
    out.append(f"soak {result['started']}, {os.cpu_count()} CPUs shared by the driver, the suite and PostgreSQL")
    cap = result.get("capacity")
    if cap:
        out.append(f"capacity (closed-loop ramp of the same mix, {cfg['ramp_settle']:g}s settle + {cfg['ramp_step']:g}s measured per step):")
        for step in cap["steps"]:
            cpu = step.get("cpu_cores") or {}
            out.append(f"  {step['concurrency']:>4} concurrent  {step['completed_per_s']:>8.1f} req/s   light p50 "
                       f"{fmt_ms(step['light_p50_ms'], 0)} ms  p99 {fmt_ms(step['light_p99_ms'], 0)} ms   errors {step['errors']}"
                       f"   cpu: suite {_fmt2(cpu.get('suite'), 0)} pg {_fmt2(cpu.get('postgres'), 0)} "
                       f"other {_fmt2(cpu.get('other'), 0)}, {fmt_ms(step.get('cpu_ms_per_request'), 0)} ms/request")
        if cap.get("cpu_bound_estimate_per_s"):
            out.append(f"  best step {cap['best_step_per_s']:.1f} req/s; CPU cross-check: {cap['cpu_ms_per_request']:.1f} ms of "
                       f"suite + PostgreSQL CPU per request -> {cap['cpu_bound_estimate_per_s']:.0f} req/s would use all "
                       f"{os.cpu_count()} CPUs but the driver's share")
        out.append(f"  capacity {cap['capacity_per_s']:.1f} req/s (the lower) -> soak at {cfg['capacity_fraction'] * 100:.0f} % = "
                   f"{cfg['rate']:.1f} req/s")
        if result.get("capacity_other_cpu_cores") is not None:
            out.append(f"  (other processes on the machine used {result['capacity_other_cpu_cores']:.2f} cores during the ramp)")
    else:
        out.append(f"rate given: {cfg['rate']:.1f} req/s (no capacity measurement)")
    out.append(f"soak: {cfg['duration']}s open loop at {cfg['rate']:.1f} req/s, in-flight cap {cfg['max_inflight']}, "
               f"mix {cfg['mix']}")
    out.append("")
    header = (f"{'route':<13}{'sent':>7}{'ok':>7}{'i429':>6}{'err':>5}{'skip':>5}{'late':>5}"
              f"{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}  statuses")
    out.append(header)
    out.append("-" * len(header))
    for name, r in soak["routes"].items():
        lat = r["latency_ms"]
        statuses = " ".join(f"{k}:{v}" for k, v in sorted(r["statuses"].items()))
        out.append(f"{name:<13}{r['sent']:>7}{r['ok']:>7}{r['rate_limited_429']:>6}{r['errors']:>5}{r['skipped_at_cap']:>5}"
                   f"{r['late_starts']:>5}{fmt_ms(lat['p50'], 9)}{fmt_ms(lat['p90'], 9)}{fmt_ms(lat['p99'], 9)}"
                   f"{fmt_ms(lat['max'], 9)}  {statuses}")
        if "first_event_ms" in r:
            fe = r["first_event_ms"]
            out.append(f"{'  1st event':<13}{'':>7}{'':>7}{'':>6}{'':>5}{'':>5}{'':>5}{fmt_ms(fe['p50'], 9)}"
                       f"{fmt_ms(fe['p90'], 9)}{fmt_ms(fe['p99'], 9)}{fmt_ms(fe['max'], 9)}  (time to first SSE event)")
    out.append(f"i429 = intended 429s (the rate-limit probe; any other 429 is an error); skip = not sent, "
               f"{cfg['max_inflight']} requests in flight; late = started > {cfg['late_ms']:g} ms behind schedule; "
               f"latencies of successful answers")
    lag = soak["start_lag_ms"]
    out.append(f"driver: start lag p50 {fmt_ms(lag['p50'], 0)} ms, p99 {fmt_ms(lag['p99'], 0)} ms, max {fmt_ms(lag['max'], 0)} ms; "
               f"{result['driver']['cpu_percent_of_one_core']:.0f} % of one core; "
               f"{result['driver']['connections_opened']} connections opened, "
               f"{result['driver']['stale_keepalive_retries']} stale keep-alive retries; "
               f"{result['driver']['inline_session_inits']} inline session inits")
    for name, r in soak["routes"].items():
        for example in r["error_examples"][:3]:
            out.append(f"  error {name}: {example['kind']} at {example['at_s']}s, X-Request-ID {example['request_id']}: "
                       f"{example['detail'][:160]}")
    out.append("")
    out.append(f"timeline (every {cfg['sample_interval']:g}s; light = me/status/subscription/plans/init/probe; "
               f"MiB = VmRSS, pg = sum over postmaster + backends; cpu in cores):")
    header = (f"{'until s':>8}{'done':>7}{'req/s':>8}{'err':>5}{'429':>5}{'light p50':>10}{'light p99':>10}"
              f"{'chat p50':>9}{'chat p99':>9}{'suite MiB':>10}{'pg MiB':>8}{'pg anon':>8}{'pg procs':>9}"
              f"{'cpu: suite':>11}{'pg':>6}{'driver':>7}{'other':>7}")
    out.append(header)
    samples = {s["note"]: s for s in result["memory"]["samples"] if s["phase"] == "soak"}
    previous = samples.get("start") or {}
    for row in soak["timeline"]:
        s = samples.get(f"{row['to_s']:.0f}s") or samples.get("end") or {}
        suite = s.get("suite") or {}
        pg = s.get("postgres") or {}
        width = row["to_s"] - row["from_s"]
        cpu = cpu_split(previous, s)
        previous = s
        out.append(f"{row['to_s']:>8.0f}{row['completed']:>7}{row['completed'] / width:>8.1f}{row['errors']:>5}"
                   f"{row['rate_limited_429']:>5}{fmt_ms(row['light_p50_ms'], 10)}{fmt_ms(row['light_p99_ms'], 10)}"
                   f"{fmt_ms(row['chatkit_p50_ms'], 9)}{fmt_ms(row['chatkit_p99_ms'], 9)}"
                   f"{fmt_ms(suite['rss_kb'] / MiB if suite.get('rss_kb') else None, 10)}"
                   f"{fmt_ms(pg['rss_kb'] / MiB if pg.get('rss_kb') else None, 8)}"
                   f"{fmt_ms(pg['anon_kb'] / MiB if pg.get('anon_kb') else None, 8)}{pg.get('procs', '-'):>9}"
                   f"{_fmt2(cpu['suite'], 11)}{_fmt2(cpu['postgres'], 6)}{_fmt2(cpu['driver'], 7)}{_fmt2(cpu['other'], 7)}")
    out.append("")
    out.append("memory over the soak (MiB; postgres = postmaster + backends):")
    header = f"{'series':<24}{'start':>8}{'end':>8}{'max':>8}{'growth':>8}{'MiB/min':>9}{'2nd half':>9}  verdict"
    out.append(header)
    for label, m in result["memory"]["report"].items():
        out.append(f"{label:<24}{m['start_mib']:>8.1f}{m['end_mib']:>8.1f}{m['max_mib']:>8.1f}{m['growth_mib']:>+8.1f}"
                   f"{fmt_ms(m['slope_mib_per_min'], 9)}{fmt_ms(m['second_half_slope_mib_per_min'], 9)}  {m['verdict']}")
    for label, value in result["memory"]["extra"].items():
        out.append(f"  {label}: {value}")
    probe = result["probe"]
    out.append("")
    out.append(f"rate-limit probe (one session, RATE_LIMIT_SESSION_PER_MINUTE={probe['limit']}; ramp + soak): admitted {probe['admitted']}, "
               f"refused 429 {probe['refused']}, at most {probe['max_admitted']} admissible over {probe['windows']} window(s); "
               f"X-RateLimit-Limit seen {probe['limit_headers']}: {probe['verdict']}")
    lg = result.get("suite_log")
    if lg:
        out.append(f"suite log: lines per level {lg['levels']}" + (f", {lg['non_json_lines']} non-JSON lines" if lg["non_json_lines"] else ""))
        for item in lg["top_warnings_errors"]:
            out.append(f"  {item['count']:>6} x {item['message']}")
    out.append("")
    out.append(result["verdict"]["line"])
    return "\n".join(out)


def probe_check(driver, limit):
    admitted = len(driver.probe_admitted)
    if driver.probe_first is None:
        return {"limit": limit, "admitted": 0, "refused": 0, "windows": 0, "max_admitted": 0,
                "limit_headers": [], "verdict": "not run", "ok": True}
    span = (driver.probe_admitted[-1] if driver.probe_admitted else driver.probe_first) - driver.probe_first
    # Fixed 60 s windows from the key's first request: requests over `span` seconds touch at most this many.
    windows = int(span // 60) + 1
    max_admitted = windows * limit
    headers = sorted(h for h in driver.probe_limit_header if h)
    problems = []
    if admitted > max_admitted:
        problems.append(f"limiter admitted {admitted} > {max_admitted}")
    attempts = admitted + driver.probe_refused
    if attempts > max_admitted + limit and driver.probe_refused == 0:
        problems.append("no 429 although the limit was exceeded")
    if headers and headers != [str(limit)]:
        problems.append(f"X-RateLimit-Limit {headers} != {limit}")
    return {"limit": limit, "admitted": admitted, "refused": driver.probe_refused, "windows": windows,
            "max_admitted": max_admitted, "limit_headers": headers,
            "verdict": "; ".join(problems) if problems else "ok", "ok": not problems}


async def main_async(args):
    weights = parse_mix(args.mix)
    if weights["chatkit"] > 0 and args.chats_per_session > args.session_limit:
        raise SystemExit(f"CHATS_PER_SESSION ({args.chats_per_session}) must not exceed RATE_LIMIT_SESSION_PER_MINUTE "
                         f"({args.session_limit}), or chats get 429s")
    driver = Driver(args, weights)
    watchdog = asyncio.ensure_future(driver.watch_suite())
    try:
        return await run_phases(args, weights, driver)
    finally:
        watchdog.cancel()


async def run_phases(args, weights, driver):
    sampler = MemorySampler(args.suite_pid, args.pg_pidfile)
    result = collections.OrderedDict()
    result["started"] = time.strftime("%Y-%m-%d %H:%M:%S")
    sampler.sample("idle", "before setup")

    log(f"setup: registering {args.seed_accounts} tenant(s) and opening sessions (run id {driver.run_id})")
    if not await driver.setup():
        setup = driver.rec.to_json()
        for name, r in setup["routes"].items():
            for example in r["error_examples"]:
                log(f"setup error {name}: {example['kind']}: {example['detail']} (request id {example['request_id']})")
        log("setup failed")
        return 2
    result["setup"] = driver.rec.to_json()
    sampler.sample("idle", "after setup")

    rate = args.rate
    if rate <= 0:
        log(f"capacity: closed-loop ramp {args.ramp} concurrent, {args.ramp_settle:g}+{args.ramp_step:g}s per step")
        capacity, steps = await driver.measure_capacity(sampler)
        result["capacity"] = {"best_step_per_s": capacity, "steps": steps}
        # Cross-check: the CPU the suite and PostgreSQL spend per request (median over the steps)
        # gives the rate at which they would use every CPU but the driver's share. A saturated closed
        # loop can count more than that (slow bcrypt requests still queued when the window closes),
        # so the capacity is the lower of the two.
        per_request = sorted(x["cpu_ms_per_request"] for x in steps if x.get("cpu_ms_per_request"))
        drivers = [x["cpu_cores"]["driver"] for x in steps if (x.get("cpu_cores") or {}).get("driver") is not None]
        if per_request and drivers:
            median = per_request[len(per_request) // 2]
            estimate = round(max(0.0, (os.cpu_count() or 1) - max(drivers)) / (median / 1000.0), 1)
            result["capacity"]["cpu_ms_per_request"] = median
            result["capacity"]["cpu_bound_estimate_per_s"] = estimate
            if capacity > 0 and estimate > 0:
                capacity = min(capacity, estimate)
        result["capacity"]["capacity_per_s"] = capacity
        if capacity <= 0:
            log("capacity: no step without errors; cannot pick a rate (set RATE=...)")
            rate = 0
        else:
            rate = max(0.5, round(capacity * args.capacity_fraction, 1))
        sampler.sample("idle", "after capacity")
        if driver.suite_gone:
            return 2
        if rate <= 0:
            return 2
        # Let queues from the ramp drain before the soak starts.
        await asyncio.sleep(2)
    result["config"] = {
        "rate": rate, "duration": args.duration, "capacity_fraction": args.capacity_fraction,
        "max_inflight": args.max_inflight, "late_ms": args.late_ms, "timeout_s": args.timeout,
        "stream_timeout_s": args.stream_timeout, "mix": ",".join(f"{k}={v:g}" for k, v in weights.items()),
        "chats_per_session": args.chats_per_session, "session_limit": args.session_limit,
        "sample_interval": args.sample_interval, "ramp": args.ramp, "ramp_step": args.ramp_step, "ramp_settle": args.ramp_settle,
        "gateway": f"http://{args.host}:{args.port}", "suite_pid": args.suite_pid, "seed": args.seed,
        "suite_settings": args.suite_settings,
    }
    log(f"soak: {args.duration}s at {rate:.1f} req/s (open loop, in-flight cap {args.max_inflight})")
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.monotonic()
    rec = await driver.open_loop(rate, args.duration, sampler)
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic() - wall0
    driver.client.close_all()

    soak = rec.to_json()
    result["soak"] = soak
    result["driver"] = {
        "cpu_percent_of_one_core": 100.0 * ((usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)) / max(wall, 1e-9),
        "connections_opened": driver.client.opened, "stale_keepalive_retries": driver.client.stale_retries,
        "idle_connections_found_closed": driver.client.dropped_idle, "inline_session_inits": driver.inline_inits,
        "accounts_registered": driver.account_serial, "driver_exceptions": driver.driver_exceptions,
    }
    report, extra = memory_report(sampler.samples, args.duration)
    result["memory"] = {"report": report, "extra": extra, "samples": sampler.samples}
    result["probe"] = probe_check(driver, args.session_limit)
    result["suite_log"] = summarize_suite_log(args.suite_log)

    routes = soak["routes"].values()
    errors = sum(r["errors"] for r in routes)
    intended = sum(r["rate_limited_429"] for r in routes)
    skipped = sum(r["skipped_at_cap"] for r in routes)
    late = sum(r["late_starts"] for r in routes)
    sent = sum(r["sent"] for r in routes)
    scheduled = sum(r["scheduled"] for r in routes)
    growing = [label for label, m in report.items() if m["verdict"].startswith("GROWING")]
    rss_bits = []
    for label in ("suite VmRSS", "postgres VmRSS (sum)", "postgres RssAnon (sum)"):
        m = report.get(label)
        if m and m["verdict"] in ("too short to judge", "info"):
            rss_bits.append(f"{label} {m['start_mib']:.0f}->{m['end_mib']:.0f} MiB ({m['growth_mib']:+.1f}; "
                            f"{m['verdict']})")
        elif m:
            rss_bits.append(f"{label} {m['start_mib']:.0f}->{m['end_mib']:.0f} MiB ({m['growth_mib']:+.1f}, "
                            f"2nd half {m['second_half_growth_mib']:+.1f}: {m['verdict']})")
    problems = []
    if errors:
        problems.append(f"{errors} errors")
    if skipped:
        problems.append(f"{skipped} arrivals skipped at the in-flight cap")
    if scheduled and late > 0.01 * scheduled:
        problems.append(f"{late} late starts (> 1 %: the driver could not keep the rate)")
    if rec.unfinished:
        problems.append(f"{rec.unfinished} requests unfinished at the end")
    if driver.suite_gone:
        problems.append("the suite stopped during the soak")
    if not result["probe"]["ok"]:
        problems.append(f"rate-limit probe: {result['probe']['verdict']}")
    if growing:
        problems.append(f"memory growing: {', '.join(growing)}")
    # Other processes on the machine take CPU from the suite: say so, the latencies then mean less.
    warnings = []
    soak_samples = [x for x in sampler.samples if x["phase"] == "soak"]
    others = [cpu_split(a, b)["other"] for a, b in zip(soak_samples, soak_samples[1:])]
    others = [o for o in others if o is not None]
    if others and (sum(others) / len(others) > 0.2 or max(others) > 0.5):
        warnings.append(f"other processes used {sum(others) / len(others):.2f} cores on average (max {max(others):.2f}) "
                        f"of {os.cpu_count()} during the soak: latencies and capacity are not clean")
    ramp = [x for x in sampler.samples if x["note"] in ("after setup", "after capacity")]
    if len(ramp) == 2:
        other = cpu_split(ramp[0], ramp[1])["other"]
        result["capacity_other_cpu_cores"] = _round(other, 2)
        if other is not None and other > 0.2:
            warnings.append(f"other processes used {other:.2f} cores during the capacity ramp")
    line = (f"VERDICT: {'PASS' if not problems else 'FAIL'}: errors other than intended 429s: {errors} of {sent} requests; "
            f"intended 429s: {intended}; skipped {skipped}, late {late}; " + "; ".join(rss_bits))
    if problems:
        line += " | problems: " + "; ".join(problems)
    if warnings:
        line += " | warnings: " + "; ".join(warnings)
    result["verdict"] = {"pass": not problems, "errors": errors, "intended_429": intended, "sent": sent,
                         "skipped": skipped, "late": late, "problems": problems, "warnings": warnings, "line": line}

    text = render(result)
    print(text, flush=True)
    if args.out_json:
        with open(args.out_json, "w") as f:
            json.dump(result, f, indent=1)
        log(f"figures saved to {args.out_json}")
    if args.out_text:
        with open(args.out_text, "w") as f:
            f.write(text + "\n")
    return 0 if not problems else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="gateway port")
    parser.add_argument("--rate", type=float, default=0, help="arrivals per second; 0 = measure capacity first")
    parser.add_argument("--capacity-fraction", type=float, default=0.7)
    parser.add_argument("--duration", type=int, default=600, help="soak seconds")
    parser.add_argument("--ramp", default="8,16,32,64", help="closed-loop concurrency steps (doubled further while still gaining)")
    parser.add_argument("--ramp-step", type=float, default=5.0, help="measured seconds per ramp step")
    parser.add_argument("--ramp-settle", type=float, default=2.0, help="unmeasured seconds after each step's start")
    parser.add_argument("--max-inflight", type=int, default=256)
    parser.add_argument("--late-ms", type=float, default=50.0)
    parser.add_argument("--timeout", type=float, default=35.0, help="per request (the gateway's own is 30 s)")
    parser.add_argument("--stream-timeout", type=float, default=60.0, help="per chatkit stream")
    parser.add_argument("--mix", default="", help=f"route=weight,... over the default {DEFAULT_MIX}")
    parser.add_argument("--all-429-intended", action="store_true", help="count 429s on every route as intended")
    parser.add_argument("--session-limit", type=int, default=10, help="RATE_LIMIT_SESSION_PER_MINUTE of the suite")
    parser.add_argument("--chats-per-session", type=int, default=5)
    parser.add_argument("--seed-accounts", type=int, default=4)
    parser.add_argument("--max-accounts", type=int, default=1000)
    parser.add_argument("--max-sessions", type=int, default=5000)
    parser.add_argument("--sample-interval", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--suite-pid", type=int, default=0)
    parser.add_argument("--pg-pidfile", default="")
    parser.add_argument("--suite-log", default="")
    parser.add_argument("--suite-settings", default="", help="recorded in the JSON")
    parser.add_argument("--out-json", default="")
    parser.add_argument("--out-text", default="")
    args = parser.parse_args()
    try:
        args.ramp = [int(x) for x in args.ramp.split(",") if x.strip()]
    except ValueError:
        parser.error("--ramp must be a comma list of integers")
    if not args.ramp or min(args.ramp) < 1 or max(args.ramp) > args.max_inflight:
        parser.error("--ramp steps must be between 1 and --max-inflight")
    if args.ramp_step <= 0 or args.ramp_settle < 0:
        parser.error("bad --ramp-step/--ramp-settle")
    if args.duration < 1 or args.max_inflight < 1 or args.sample_interval <= 0 or args.rate < 0:
        parser.error("bad --duration/--max-inflight/--sample-interval/--rate")
    if not 0 < args.capacity_fraction <= 1.5:
        parser.error("--capacity-fraction must be in (0, 1.5]")
    if args.chats_per_session < 1 or args.session_limit < 1:
        parser.error("--chats-per-session and --session-limit must be >= 1")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("loopback only")
    try:
        return asyncio.run(main_async(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
