#!/usr/bin/env python3
"""Summary of one bench/gateway.sh run (Python 3 standard library only).

Usage: python3 bench/gateway_report.py bench/out/<stamp>-manifest.tsv

The manifest is written by bench/gateway.sh, one tab-separated line per result:
  meta      KEY VALUE
  wrk       SECTION NAME URL FILE ROUND    (SECTION: suite or static; ROUND 1 in section 2)
  hey       NAME URL TARGET_RATE FILE ROUND
  round     SECTION ROUND ORDER            (SECTION: suite or rate; ORDER: the targets, space-separated)
  cpu       SECTION NAME ROUND BEFORE_JSON AFTER_JSON   (bench/proc_cpu.py snapshots around a wrk run)
  rss       PROCESS LABEL PID VMRSS_KB VMHWM_KB
  perf      NAME EVENT DATA_FILE REPORT_FILE TOP_FILE   ("-" when perf wrote nothing)
  callgrind REQUESTS URL DUMP_FILE TOP_FILE HEY_FILE
Manifests of runs before rounds existed (wrk and hey lines without ROUND) read as one round.
Exit status: 0, or 3 when a run saw error answers (its numbers are not comparable).
"""

import os
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proc_cpu  # noqa: E402  (bench/proc_cpu.py, beside this file)

UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
NAN = float("nan")


def to_ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"unknown duration {text!r}")
    return float(m.group(1)) * UNIT_MS[m.group(2)]


def parse_wrk(path):
    text = open(path).read()
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    if not m:
        raise SystemExit(f"no Requests/sec in {path}; is it wrk output?")
    result = {"rps": float(m.group(1))}
    for p in ("50", "90", "99"):
        m = re.search(rf"^\s*{p}%\s+([0-9.]+[a-z]+)\s*$", text, re.M)
        if not m:
            raise SystemExit(f"no {p}% latency in {path}; was --latency given?")
        result[f"p{p}"] = to_ms(m.group(1))
    m = re.search(r"^\s*(\d+) requests in", text, re.M)
    result["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    result["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    result["sockerr"] = sum(int(x) for x in m.groups()) if m else 0
    return result


def parse_hey(path):
    """hey's summary: seconds with 4 decimals (0.1 ms resolution)."""
    text = open(path).read()
    m = re.search(r"^\s*Requests/sec:\s+([0-9.]+)", text, re.M)
    if not m:
        raise SystemExit(f"no Requests/sec in {path}; is it hey output?")
    result = {"rps": float(m.group(1))}
    for p in ("50", "90", "99"):
        m = re.search(rf"^\s*{p}%+ in ([0-9.]+) secs", text, re.M)
        result[f"p{p}"] = float(m.group(1)) * 1e3 if m else NAN
    m = re.search(r"^\s*Slowest:\s+([0-9.]+) secs", text, re.M)
    result["max"] = float(m.group(1)) * 1e3 if m else NAN
    statuses = {int(c): int(n) for c, n in re.findall(r"^\s*\[(\d{3})\]\s+(\d+) responses", text, re.M)}
    result["requests"] = sum(statuses.values())
    result["non200"] = sum(n for c, n in statuses.items() if c != 200)
    errors = 0
    if "Error distribution:" in text:
        for n in re.findall(r"^\s*\[(\d+)\]\s", text.split("Error distribution:", 1)[1], re.M):
            errors += int(n)
    result["errors"] = errors
    return result


def ratio(a, b):
    return a / b if b else NAN


def median(values):
    values = [v for v in values if v == v]  # NaN != NaN: leave those out
    return statistics.median(values) if values else NAN


def span(values):
    values = [v for v in values if v == v]
    return (min(values), max(values)) if values else (NAN, NAN)


def read_manifest(path):
    """meta; wrk and hey runs (lists, in the order measured); round orders; cpu snapshot pairs; rss, perf,
    callgrind."""
    meta, wrk, hey, rounds, cpu, rss, perf, callgrind = {}, [], [], {}, {}, [], [], []
    for line in open(path):
        fields = line.rstrip("\n").split("\t")
        kind, rest = fields[0], fields[1:]
        if kind == "meta":
            meta[rest[0]] = rest[1]
        elif kind == "wrk":
            section, name, url, file = rest[:4]
            rnd = int(rest[4]) if len(rest) > 4 else 1
            wrk.append({"section": section, "name": name, "round": rnd, "url": url, "file": file,
                        **parse_wrk(file)})
        elif kind == "hey":
            name, url, target, file = rest[:4]
            rnd = int(rest[4]) if len(rest) > 4 else 1
            hey.append({"name": name, "round": rnd, "url": url, "target": float(target), "file": file,
                        **parse_hey(file)})
        elif kind == "round":
            section, rnd, order = rest
            rounds[(section, int(rnd))] = order.split()
        elif kind == "cpu":
            section, name, rnd, before, after = rest
            cpu[(name, int(rnd))] = (before, after)
        elif kind == "rss":
            process, label, pid, vmrss, vmhwm = rest
            rss.append({"process": process, "label": label, "pid": pid, "rss": int(vmrss), "hwm": int(vmhwm)})
        elif kind == "perf":
            name, event, data, report, top = rest
            perf.append({"name": name, "event": event, "data": data, "report": report, "top": top})
        elif kind == "callgrind":
            requests, url, dump, top, hey_file = rest
            callgrind.append({"requests": int(requests), "url": url, "dump": dump, "top": top, "hey": hey_file})
    for r in wrk:
        files = cpu.get((r["name"], r["round"]))
        r["cpu"] = cpu_per_request(files, r["requests"]) if files else None
    return meta, wrk, hey, rounds, rss, perf, callgrind


def cpu_per_request(files, requests):
    """{group: {"user", "system", "total" (us per request), "vanished"}} plus "_rest" (the machine's CPU
    outside the groups: the load generator, the kernel's own threads, other load) and "_busy" (share of all
    CPUs busy during the run, %); None when a snapshot is missing or nothing was answered."""
    before, after = files
    if not requests or not (os.path.exists(before) and os.path.exists(after)):
        return None
    d = proc_cpu.diff(proc_cpu.load(before), proc_cpu.load(after))
    machine = d.pop("_machine")
    per = lambda seconds: seconds * 1e6 / requests  # noqa: E731
    result = {name: {"user": per(g["user"]), "system": per(g["system"]), "total": per(g["user"] + g["system"]),
                     "vanished": g["vanished"], "processes": g["processes"]} for name, g in d.items()}
    rest_user = machine["user"] - sum(g["user"] for g in d.values())
    rest_system = machine["system"] - sum(g["system"] for g in d.values())
    result["_rest"] = {"user": per(rest_user), "system": per(rest_system), "total": per(rest_user + rest_system),
                       "vanished": 0, "processes": 0}
    busy = machine["user"] + machine["system"] + machine["steal"]
    total = busy + machine["idle"]
    result["_busy"] = 100.0 * busy / total if total else NAN
    return result


def heading(text):
    print()
    print(text)
    print("=" * len(text))


def wrk_table(rows, names):
    header = (f"{'target':<22} {'req/s':>10} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
              f"{'requests':>9} {'non-2xx':>8} {'sock err':>8}  url")
    print(header)
    print("-" * len(header))
    for name in names:
        r = rows[name]
        print(f"{name:<22} {r['rps']:>10.1f} {r['p50']:>8.2f} {r['p90']:>8.2f} {r['p99']:>8.2f} "
              f"{r['requests']:>9} {r['non2xx']:>8} {r['sockerr']:>8}  {r['url']}")


def ratio_lines(rows, pairs, metric, note):
    label = {"rps": "throughput", "p50": "p50 latency", "p99": "p99 latency"}[metric]
    width = max(len(f"{a}/{b}") for a, b, _ in pairs)
    for a, b, extra in pairs:
        if a in rows and b in rows:
            value = ratio(rows[a][metric], rows[b][metric])
            print(f"  {label:<11} {a + '/' + b:<{width}} {value:6.2f}   {extra or note}".rstrip())


def fmt_span(values, digits):
    lo, hi = span(values)
    return f"{lo:.{digits}f}-{hi:.{digits}f}"


def verdict(ok):
    return "met" if ok else "NOT met"


def order_lines(rounds, section, count):
    orders = [f"{r}: {' '.join(rounds[(section, r)])}" for r in range(1, count + 1) if (section, r) in rounds]
    return "; ".join(orders)


SUITE = ("direct", "nginx", "gateway")


def suite_section(runs, rounds):
    """Section 1: every run, the medians per target, ratios of the medians and per round, the goal line."""
    by_target = {n: sorted((r for r in runs if r["name"] == n), key=lambda r: r["round"]) for n in SUITE}
    by_target = {n: rs for n, rs in by_target.items() if rs}
    count = max(r["round"] for r in runs)
    heading("1. Suite: GET /api/auth/me (authenticated) direct, through nginx, through the gateway")
    print(f"{count} round(s), each target measured once per round, the order rotating "
          f"({order_lines(rounds, 'suite', count) or 'order not recorded'}); one warm-up per target before round 1")
    print()
    header = (f"{'round':>5}  {'target':<8} {'req/s':>10} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
              f"{'requests':>9} {'non-2xx':>8} {'sock err':>8}")
    print(header)
    print("-" * len(header))
    for r in runs:  # in the order measured
        print(f"{r['round']:>5}  {r['name']:<8} {r['rps']:>10.1f} {r['p50']:>8.2f} {r['p90']:>8.2f} {r['p99']:>8.2f} "
              f"{r['requests']:>9} {r['non2xx']:>8} {r['sockerr']:>8}")
    print()
    print("per target, median of the rounds (min-max):")
    header = f"{'target':<8} {'req/s':>10} {'(min-max)':<17} {'p50 ms':>7} {'(min-max)':<11} {'p99 ms':>7} {'(min-max)':<13}  url"
    print(header)
    print("-" * len(header))
    med = {}
    for name, rs in by_target.items():
        med[name] = {k: median([r[k] for r in rs]) for k in ("rps", "p50", "p99")}
        print(f"{name:<8} {med[name]['rps']:>10.1f} {'(' + fmt_span([r['rps'] for r in rs], 0) + ')':<17} "
              f"{med[name]['p50']:>7.2f} {'(' + fmt_span([r['p50'] for r in rs], 1) + ')':<11} "
              f"{med[name]['p99']:>7.2f} {'(' + fmt_span([r['p99'] for r in rs], 1) + ')':<13}  {rs[0]['url']}")
    print()
    print("(a) ratios of the medians (higher throughput / lower latency ratio = better for the first name):")
    ratio_lines(med, [("gateway", "nginx", ""), ("gateway", "direct", ""),
                      ("nginx", "direct", "what a plain proxy costs, for comparison")], "rps", "1.00 = same req/s")
    ratio_lines(med, [("gateway", "nginx", ""), ("gateway", "direct", "")], "p50", "1.00 = same; higher = slower")
    ratio_lines(med, [("gateway", "nginx", ""), ("gateway", "direct", "")], "p99", "1.00 = same; higher = slower")
    pairs = [(a, b) for a, b in (("gateway", "nginx"), ("gateway", "direct"), ("nginx", "direct"))
             if a in by_target and b in by_target]
    if not pairs:
        return
    per_round = {}
    for rnd in range(1, count + 1):
        row = {r["name"]: r for r in runs if r["round"] == rnd}
        per_round[rnd] = {(a, b): ratio(row[a]["rps"], row[b]["rps"]) if a in row and b in row else NAN
                          for a, b in pairs}
    print()
    print("(b) throughput ratios per round (both targets of a ratio measured in the same round):")
    header = f"  {'round':<8}" + "".join(f" {a + '/' + b:>15}" for a, b in pairs)
    print(header)
    for rnd, values in per_round.items():
        print(f"  {rnd:<8}" + "".join(f" {values[p]:>15.2f}" for p in pairs))
    medians = {p: median([v[p] for v in per_round.values()]) for p in pairs}
    print(f"  {'median':<8}" + "".join(f" {medians[p]:>15.2f}" for p in pairs))
    print(f"  {'min-max':<8}" + "".join(f" {fmt_span([v[p] for v in per_round.values()], 2):>15}" for p in pairs))
    if ("gateway", "nginx") in medians:
        value = medians[("gateway", "nginx")]
        lo, hi = span([v[("gateway", "nginx")] for v in per_round.values()])
        print()
        print(f"goal: throughput gateway/nginx >= 1.00: median of the per-round ratios {value:.2f} "
              f"(rounds {lo:.2f}-{hi:.2f}): {verdict(value >= 1.0)}")
        if count > 1 and lo < 1.0 <= hi:
            print("  the rounds disagree (some above 1.00, some below): the machine drifted during the run; "
                  "more ROUNDS or a quieter machine")


def rate_section(meta, runs, rounds):
    """Section 3: every fixed-rate run, per round the p99 the gateway and nginx add over direct, the goal line."""
    rate = meta.get("rate", "?")
    count = max(r["round"] for r in runs)
    heading(f"3. Latency at a fixed rate: {rate} req/s ({meta.get('rate_source', '?')}), "
            f"{meta.get('rate_settings', 'hey')}")
    if any(n in SUITE for n in (r["name"] for r in runs)):
        print(f"{count} round(s) of direct, nginx and gateway, the order rotating "
              f"({order_lines(rounds, 'rate', count) or 'order not recorded'}); the static floor once")
    header = (f"{'round':>5}  {'target':<15} {'target/s':>9} {'sent/s':>9} {'p50 ms':>8} {'p90 ms':>8} "
              f"{'p99 ms':>8} {'max ms':>8} {'requests':>9} {'non-200':>8} {'errors':>7}")
    print(header)
    print("-" * len(header))
    for r in runs:
        label = "static (floor)" if r["name"] == "static" else r["name"]
        rnd = "-" if r["name"] == "static" else str(r["round"])
        print(f"{rnd:>5}  {label:<15} {r['target']:>9.0f} {r['rps']:>9.1f} {r['p50']:>8.2f} {r['p90']:>8.2f} "
              f"{r['p99']:>8.2f} {r['max']:>8.2f} {r['requests']:>9} {r['non200']:>8} {r['errors']:>7}")
    print("  static (floor): hey -> the static nginx, what the load generator itself adds; "
          "hey reports 0.1 ms steps")
    urls = {}
    for r in runs:
        urls.setdefault(r["name"], r["url"])
    for name, url in urls.items():
        print(f"  {name}: {url}")
    added, short = {}, {}
    for rnd in range(1, count + 1):
        row = {r["name"]: r for r in runs if r["round"] == rnd and r["name"] in SUITE}
        if "direct" not in row:
            continue
        d = row["direct"]
        added[rnd] = {f"{n} {p}": row[n][p] - d[p] if n in row else NAN
                      for n in ("gateway", "nginx") for p in ("p50", "p99")}
        short[rnd] = [n for n, r in row.items() if r["rps"] < 0.95 * r["target"]]
    if added and any(v["gateway p99"] == v["gateway p99"] for v in added.values()):
        print()
        print("added over direct in the same round (ms; gateway p99 - direct p99 is the goal's figure):")
        cols = ("gateway p99", "nginx p99", "gateway p50", "nginx p50")
        print(f"  {'round':<8}" + "".join(f" {c:>12}" for c in cols))
        for rnd, v in added.items():
            mark = f"   (under 95 % of the rate: {', '.join(short[rnd])})" if short[rnd] else ""
            print(f"  {rnd:<8}" + "".join(f" {v[c]:>+12.2f}" for c in cols) + mark)
        med = {c: median([v[c] for v in added.values()]) for c in cols}
        print(f"  {'median':<8}" + "".join(f" {med[c]:>+12.2f}" for c in cols))
        lo, hi = span([v["gateway p99"] for v in added.values()])
        print()
        print(f"goal: p99 added by the gateway (gateway p99 - direct p99) < 1 ms: median of the rounds "
              f"{med['gateway p99']:+.2f} ms (rounds {lo:+.2f} to {hi:+.2f}): {verdict(med['gateway p99'] < 1.0)}")
        print(f"for comparison, what nginx adds at the same rate (median): p50 {med['nginx p50']:+.2f} ms, "
              f"p99 {med['nginx p99']:+.2f} ms")
        if count > 1 and lo < 1.0 <= hi:
            print("  the rounds disagree (some under 1 ms, some not): more ROUNDS or a quieter machine")
    slow = [f"{r['name']}" + ("" if r["name"] == "static" else f" r{r['round']}")
            for r in runs if r["rps"] < 0.95 * r["target"]]
    if slow:
        print()
        print(f"WARNING: {', '.join(slow)} sent under 95 % of the target rate: the generator or the target "
              f"could not keep up, so those latencies are understated (a hey worker sends its next request "
              f"only after the previous answer). Lower FIXED_RATE or raise RATE_CONNECTIONS.")


CPU_GROUPS = {
    "suite": "suite process (auth + the in-process gateway + tenancy, billing, chat)",
    "postgres": "the suite's PostgreSQL: postmaster + every process whose parent it is",
    "nginx-workers": "the proxy nginx's workers (children of its master)",
    "static-nginx": "the static nginx's worker(s)",
    "haproxy": "HAProxy (one process, nbthread threads)",
    "gw-local": "the separate gateway (local limits)",
    "gw-shared": "the separate gateway with shared limits",
}


def cpu_table(runs, groups):
    """Long table: per target (median over its rounds) the CPU per request of each group, then the rest."""
    header = (f"{'target':<22} {'process group':<15} {'user us/req':>11} {'sys us/req':>10} "
              f"{'total us/req':>12}  {'(min-max total)':<16}")
    print(header)
    print("-" * len(header))
    names = []
    for r in runs:
        if r["name"] not in names:
            names.append(r["name"])
    notes = set()
    for name in names:
        rs = [r for r in runs if r["name"] == name and r["cpu"]]
        if not rs:
            continue
        first = True
        for group in list(groups) + ["_rest"]:
            values = [r["cpu"][group] for r in rs if group in r["cpu"]]
            if not values or (group != "_rest" and not any(v["user"] or v["system"] for v in values)):
                continue  # a group that used no CPU in this row (e.g. nginx's workers in the direct row)
            label = "rest of machine" if group == "_rest" else group
            totals = [v["total"] for v in values]
            rng = f"({fmt_span(totals, 1)})" if len(values) > 1 else ""
            print(f"{name if first else '':<22} {label:<15} {median([v['user'] for v in values]):>11.1f} "
                  f"{median([v['system'] for v in values]):>10.1f} {median(totals):>12.1f}  {rng}")
            first = False
            if any(v["vanished"] for v in values):
                notes.add(f"{name}/{group}: a process exited during a run; its CPU there is missing")
        print(f"{'':<22} {'CPUs busy':<15} {median([r['cpu']['_busy'] for r in rs]):>10.0f} %  (of all CPUs, "
              f"from /proc/stat)")
    print("  a group that used no CPU at all during a row is left out of it; rest of machine = all CPUs (/proc/stat)")
    print("  minus every measured group: wrk, kernel threads, anything else running")
    for note in sorted(notes):
        print(f"  note: {note}")


def cpu_value(run, group):
    return run["cpu"][group]["total"] if run and run["cpu"] and group in run["cpu"] else NAN


def suite_cpu(runs):
    with_cpu = [r for r in runs if r["cpu"]]
    if not with_cpu:
        return
    print()
    print("CPU per request (microseconds of CPU per answered request, utime = user and stime = sys of")
    print("/proc/PID/stat before and after each measured run, all threads; median of the rounds):")
    groups = [g for g in ("suite", "postgres", "nginx-workers") if any(g in r["cpu"] for r in with_cpu)]
    cpu_table(with_cpu, groups)
    count = max(r["round"] for r in runs)
    rows = {}
    for rnd in range(1, count + 1):
        row = {r["name"]: r for r in runs if r["round"] == rnd}
        direct = cpu_value(row.get("direct"), "suite")
        rows[rnd] = {"gateway": cpu_value(row.get("gateway"), "suite") - direct,
                     "nginx": cpu_value(row.get("nginx"), "nginx-workers"),
                     "check": cpu_value(row.get("nginx"), "suite") - direct}
        rows[rnd]["ratio"] = ratio(rows[rnd]["gateway"], rows[rnd]["nginx"])
    med = {k: median([v[k] for v in rows.values()]) for k in ("gateway", "nginx", "check", "ratio")}
    per = lambda k, d=1: ", ".join(f"{v[k]:.{d}f}" for v in rows.values())  # noqa: E731
    print()
    print("proxy CPU per request (us/req, median of the rounds; per round in brackets):")
    print(f"  gateway: suite in the gateway row - suite in the direct row   {med['gateway']:>8.1f}   [{per('gateway')}]")
    print(f"  nginx:   nginx workers in the nginx row                       {med['nginx']:>8.1f}   [{per('nginx')}]")
    print(f"  gateway/nginx, CPU per request (lower = cheaper gateway)      {med['ratio']:>8.2f}   [{per('ratio', 2)}]")
    print(f"  check:   suite in the nginx row - suite in the direct row     {med['check']:>+8.1f}   [{per('check')}]")
    print("  (the check is what the extra hop changes in the suite's own cost: near 0 means the subtraction above")
    print("  isolates the gateway; the gateway's share also holds the kernel's loopback work charged to the suite)")


def static_cpu(rows):
    with_cpu = [r for r in rows.values() if r["cpu"]]
    if not with_cpu:
        return
    print()
    print("CPU per request (microseconds of CPU per answered request from /proc/PID/stat, as in section 1):")
    groups = [g for g in ("static-nginx", "nginx-workers", "haproxy", "gw-local", "gw-shared")
              if any(g in r["cpu"] for r in with_cpu)]
    cpu_table(with_cpu, groups)
    print()
    print("proxy CPU per request (us/req; user + sys of the proxy's own processes in its row):")
    lines = [("gw-static", "gw-local", "gateway, public route"),
             ("gw-static-auth", "gw-local", "gateway, JWT + tenant limiter"),
             ("gw-shared-static", "gw-shared", "gateway with shared limits, public route"),
             ("gw-shared-static-auth", "gw-shared", "gateway with shared limits, JWT"),
             ("nginx-static", "nginx-workers", "nginx workers"),
             ("haproxy-static", "haproxy", "HAProxy")]
    for row, group, label in lines:
        if row in rows:
            r = rows[row]
            if r["cpu"] and group in r["cpu"]:
                c = r["cpu"][group]
                print(f"  {row:<22} {label:<42} {c['total']:>8.1f}   (user {c['user']:.1f}, sys {c['system']:.1f})")
    gw, ngx, hap = (cpu_value(rows.get(a), b) for a, b in
                    (("gw-static", "gw-local"), ("nginx-static", "nginx-workers"), ("haproxy-static", "haproxy")))
    print(f"  gateway/nginx {ratio(gw, ngx):.2f}, gateway/HAProxy {ratio(gw, hap):.2f} (CPU per request of the "
          f"public route; lower = cheaper gateway)")


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    meta, runs, hey, rounds, rss, perf, callgrind = read_manifest(sys.argv[1])
    problems = []

    print(f"{meta.get('started', time.strftime('%Y-%m-%d %H:%M:%S'))}, run {meta.get('stamp', '?')}, {meta.get('cpus', os.cpu_count())} CPUs "
          f"(shared by the load generator, the proxies, the suite and the static upstream)")
    print(f"wrk {meta.get('wrk', '?')} for every throughput row; nginx workers = HAProxy threads = "
          f"{meta.get('proxy_workers', '?')}; static upstream: nginx, {meta.get('static_workers', '?')} worker(s)")
    print(f"suite: {meta.get('suite_bin', '?')}   gateway: {meta.get('gateway_bin', '?')}   "
          f"LOG_LEVEL: {meta.get('log_level', '?')}   ports from {meta.get('port_base', '18080')}")
    if "load_before" in meta:
        print(f"load average (1, 5, 15 min) at the start: {meta['load_before']}, at the end: "
              f"{meta.get('load_after', '?')} (a 1-minute figure well above 0 at the start: something else was running)")

    # 1 ------------------------------------------------------------------------------------------
    suite_runs = [r for r in runs if r["section"] == "suite"]
    if suite_runs:
        suite_section(suite_runs, rounds)
        suite_cpu(suite_runs)

    # 2 ------------------------------------------------------------------------------------------
    wrk = {r["name"]: r for r in runs if r["section"] == "static"}
    static = [n for n in ("static", "nginx-static", "haproxy-static", "gw-static", "gw-static-auth",
                          "gw-shared-static", "gw-shared-static-auth") if n in wrk]
    if static:
        heading("2. Static upstream: a constant {\"ok\":true} from nginx, directly and through each proxy")
        wrk_table(wrk, static)
        print("  gw-static*: a separate gateway process, every upstream = the static nginx; gw-static is the public")
        print("  GET /api/payments/plans (limiter, no token), gw-static-auth GET /api/auth/me with the JWT")
        print("  (token check against the suite's JWKS + tenant limiter)")
        for p in perf:
            print(f"  {p['name']} ran under perf record: its figures include perf's overhead")
        print()
        print("ratios:")
        ratio_lines(wrk, [("gw-static", "nginx-static", "goal >= 1.00"),
                          ("gw-static", "haproxy-static", ""),
                          ("gw-static-auth", "nginx-static", "with the token check"),
                          ("gw-static-auth", "gw-static", "what the token check costs the gateway"),
                          ("haproxy-static", "nginx-static", "the two reference proxies"),
                          ("nginx-static", "static", "share of the upstream's own ceiling"),
                          ("haproxy-static", "static", "share of the upstream's own ceiling"),
                          ("gw-static", "static", "share of the upstream's own ceiling")],
                    "rps", "")
        ratio_lines(wrk, [("gw-static", "nginx-static", ""), ("gw-static", "haproxy-static", ""),
                          ("gw-static-auth", "nginx-static", "")], "p99", "1.00 = same; higher = slower")
        if "gw-shared-static" in wrk:
            print()
            print("shared-limit mode (GATEWAY_DATABASE_URL = SHARED_LIMITS_URL) against local limits:")
            ratio_lines(wrk, [("gw-shared-static", "gw-static", ""),
                              ("gw-shared-static-auth", "gw-static-auth", "")], "rps", "1.00 = no cost")
            ratio_lines(wrk, [("gw-shared-static", "gw-static", ""),
                              ("gw-shared-static-auth", "gw-static-auth", "")], "p99", "1.00 = no cost")
        static_cpu(wrk)
    if meta.get("shared_limits") != "measured":
        print()
        print("shared-limit mode: not measured (set SHARED_LIMITS_URL)")

    # 3 ------------------------------------------------------------------------------------------
    if hey:
        rate_section(meta, hey, rounds)

    # 4 ------------------------------------------------------------------------------------------
    if rss:
        heading("4. Memory of the separate gateway process(es) (/proc/PID/status)")
        header = f"{'process':<20} {'pid':>7} {'VmRSS MiB':>10} {'VmHWM MiB':>10}  when"
        print(header)
        print("-" * len(header))
        for s in rss:
            print(f"{s['process']:<20} {s['pid']:>7} {s['rss'] / 1024:>10.1f} {s['hwm'] / 1024:>10.1f}  {s['label']}")
        processes = []
        for s in rss:
            if s["process"] not in processes:
                processes.append(s["process"])
        for process in processes:
            samples = [s for s in rss if s["process"] == process]
            if len(samples) >= 2:
                print(f"  {process}: VmRSS {samples[0]['rss'] / 1024:.1f} -> {samples[-1]['rss'] / 1024:.1f} MiB "
                      f"({(samples[-1]['rss'] - samples[0]['rss']) / 1024:+.1f} MiB over its load runs), "
                      f"peak {samples[-1]['hwm'] / 1024:.1f} MiB")

    # 6 ------------------------------------------------------------------------------------------
    for p in perf:
        heading(f"6. perf profile of the gateway during {p['name']} (event {p['event']})")
        if p["data"] == "-":
            print("perf recorded nothing (see the log lines above)")
            continue
        print(f"data: {p['data']}   full report with call graphs: {p['report']}")
        print(f"perf report --stdio --no-children -F overhead,dso,sym -g none -i {p['data']}, top 30 (self time):")
        print(open(p["top"]).read().rstrip() if os.path.exists(p["top"]) else "(no report)")
    for c in callgrind:
        heading(f"6. callgrind: {c['requests']} requests, {c['url']}")
        total = None
        for line in open(c["dump"]):
            if line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
                if line.startswith("summary:"):
                    break
        h = parse_hey(c["hey"])
        if h["non200"] or h["errors"] or h["requests"] != c["requests"]:
            problems.append("callgrind")
        print(f"answers: {h['requests']} ({h['non200']} not 200, {h['errors']} errors)   dump: {c['dump']}")
        if total is None:
            print("no totals in the dump")
        else:
            print(f"total Ir {total:,}   Ir per request {total / c['requests']:,.0f}   "
                  f"(every thread of the gateway, counters zeroed after the warm-up)")
        print("callgrind_annotate --inclusive=no, top 30 (self Ir; the frames on the threads' stacks when the "
              "counters were zeroed, ~100 % each, left out):")
        print(open(c["top"]).read().rstrip() if os.path.exists(c["top"]) else "(no output)")

    print()
    print("raw output:")
    def label(r):
        return r["name"] + (f" r{r['round']}" if r.get("section", "suite") == "suite" and r["name"] != "static" else "")
    for r in runs:
        print(f"  {label(r):<22} {r['file']}")
    for r in hey:
        print(f"  rate {label(r):<17} {r['file']}")

    problems += [label(r) for r in runs if r["non2xx"] > 0]
    problems += [f"rate {label(r)}" for r in hey if r["non200"] > 0 or r["errors"] > 0]
    if problems:
        print()
        print(f"WARNING: error answers for: {', '.join(problems)}. Those runs measured errors "
              f"(rate limiting? expired token? overload?), so their numbers are not comparable.")
        sys.exit(3)


if __name__ == "__main__":
    main()
