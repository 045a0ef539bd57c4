#!/usr/bin/env python3
"""Summary of one bench/gateway.sh run (Python 3 standard library only).

Usage: python3 bench/gateway_report.py bench/out/<stamp>-manifest.tsv

The manifest is written by bench/gateway.sh, one tab-separated line per result:
  meta      KEY VALUE
  wrk       SECTION NAME URL FILE          (SECTION: suite or static)
  hey       NAME URL TARGET_RATE FILE
  rss       PROCESS LABEL PID VMRSS_KB VMHWM_KB
  perf      NAME EVENT DATA_FILE REPORT_FILE TOP_FILE   ("-" when perf wrote nothing)
  callgrind REQUESTS URL DUMP_FILE TOP_FILE HEY_FILE
Exit status: 0, or 3 when a run saw error answers (its numbers are not comparable).
"""

import os
import re
import sys
import time

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


def read_manifest(path):
    meta, wrk, hey, rss, perf, callgrind = {}, {}, {}, [], [], []
    for line in open(path):
        fields = line.rstrip("\n").split("\t")
        kind, rest = fields[0], fields[1:]
        if kind == "meta":
            meta[rest[0]] = rest[1]
        elif kind == "wrk":
            section, name, url, file = rest
            wrk[name] = {"section": section, "url": url, "file": file, **parse_wrk(file)}
        elif kind == "hey":
            name, url, target, file = rest
            hey[name] = {"url": url, "target": float(target), "file": file, **parse_hey(file)}
        elif kind == "rss":
            process, label, pid, vmrss, vmhwm = rest
            rss.append({"process": process, "label": label, "pid": pid, "rss": int(vmrss), "hwm": int(vmhwm)})
        elif kind == "perf":
            name, event, data, report, top = rest
            perf.append({"name": name, "event": event, "data": data, "report": report, "top": top})
        elif kind == "callgrind":
            requests, url, dump, top, hey_file = rest
            callgrind.append({"requests": int(requests), "url": url, "dump": dump, "top": top, "hey": hey_file})
    return meta, wrk, hey, rss, perf, callgrind


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


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    meta, wrk, hey, rss, perf, callgrind = read_manifest(sys.argv[1])
    problems = []

    print(f"{meta.get('started', time.strftime('%Y-%m-%d %H:%M:%S'))}, run {meta.get('stamp', '?')}, {meta.get('cpus', os.cpu_count())} CPUs "
          f"(shared by the load generator, the proxies, the suite and the static upstream)")
    print(f"wrk {meta.get('wrk', '?')} for every throughput row; nginx workers = HAProxy threads = "
          f"{meta.get('proxy_workers', '?')}; static upstream: nginx, {meta.get('static_workers', '?')} worker(s)")
    print(f"suite: {meta.get('suite_bin', '?')}   gateway: {meta.get('gateway_bin', '?')}   "
          f"LOG_LEVEL: {meta.get('log_level', '?')}")

    # 1 ------------------------------------------------------------------------------------------
    suite = [n for n in ("direct", "nginx", "gateway") if n in wrk]
    if suite:
        heading("1. Suite: GET /api/auth/me (authenticated) direct, through nginx, through the gateway")
        wrk_table(wrk, suite)
        print()
        print("ratios (higher throughput / lower latency ratio = better for the first name):")
        ratio_lines(wrk, [("gateway", "nginx", "goal >= 1.00"), ("gateway", "direct", ""),
                          ("nginx", "direct", "what a plain proxy costs, for comparison")],
                    "rps", "1.00 = same req/s")
        ratio_lines(wrk, [("gateway", "nginx", ""), ("gateway", "direct", "")], "p50", "1.00 = same; higher = slower")
        ratio_lines(wrk, [("gateway", "nginx", ""), ("gateway", "direct", "")], "p99", "1.00 = same; higher = slower")

    # 2 ------------------------------------------------------------------------------------------
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
    if meta.get("shared_limits") != "measured":
        print()
        print("shared-limit mode: not measured (set SHARED_LIMITS_URL)")

    # 3 ------------------------------------------------------------------------------------------
    if hey:
        rate = meta.get("rate", "?")
        heading(f"3. Latency at a fixed rate: {rate} req/s ({meta.get('rate_source', '?')}), "
                f"{meta.get('rate_settings', 'hey')}")
        header = (f"{'target':<20} {'target/s':>9} {'sent/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
                  f"{'max ms':>8} {'requests':>9} {'non-200':>8} {'errors':>7}  url")
        print(header)
        print("-" * len(header))
        for name, r in hey.items():
            label = "static (floor)" if name == "static" else name
            print(f"{label:<20} {r['target']:>9.0f} {r['rps']:>9.1f} {r['p50']:>8.2f} {r['p90']:>8.2f} "
                  f"{r['p99']:>8.2f} {r['max']:>8.2f} {r['requests']:>9} {r['non200']:>8} {r['errors']:>7}  {r['url']}")
        print("  static (floor): hey -> the static nginx, what the load generator itself adds; "
              "hey reports 0.1 ms steps")
        if "gateway" in hey and "direct" in hey:
            g, d = hey["gateway"], hey["direct"]
            print()
            print(f"p50 added by the gateway = gateway p50 - direct p50 = {g['p50']:.2f} - {d['p50']:.2f} "
                  f"= {g['p50'] - d['p50']:+.2f} ms")
            added = g["p99"] - d["p99"]
            verdict = "met" if added < 1.0 else "NOT met"
            print(f"p99 added by the gateway = gateway p99 - direct p99 = {g['p99']:.2f} - {d['p99']:.2f} "
                  f"= {added:+.2f} ms   (goal < 1 ms: {verdict})")
            if "nginx" in hey:
                n = hey["nginx"]
                print(f"for comparison, what nginx adds at the same rate: p50 {n['p50'] - d['p50']:+.2f} ms, "
                      f"p99 {n['p99'] - d['p99']:+.2f} ms")
        slow = [n for n, r in hey.items() if r["rps"] < 0.95 * r["target"]]
        if slow:
            print()
            print(f"WARNING: {', '.join(slow)} sent under 95 % of the target rate: the generator or the target "
                  f"could not keep up, so those latencies are understated (a hey worker sends its next request "
                  f"only after the previous answer). Lower FIXED_RATE or raise RATE_CONNECTIONS.")

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
    for name, r in wrk.items():
        print(f"  {name:<22} {r['file']}")
    for name, r in hey.items():
        print(f"  rate {name:<17} {r['file']}")

    problems += [n for n, r in wrk.items() if r["non2xx"] > 0]
    problems += [f"rate {n}" for n, r in hey.items() if r["non200"] > 0 or r["errors"] > 0]
    if problems:
        print()
        print(f"WARNING: error answers for: {', '.join(problems)}. Those runs measured errors "
              f"(rate limiting? expired token? overload?), so their numbers are not comparable.")
        sys.exit(3)


if __name__ == "__main__":
    main()
