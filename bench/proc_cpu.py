#!/usr/bin/env python3
"""CPU time of groups of processes, from /proc (Python 3 standard library only, Linux).

  python3 bench/proc_cpu.py snapshot FILE GROUP=RULE:PID ...
      writes FILE (JSON): for every group, utime and stime (fields 14 and 15 of /proc/PID/stat,
      in clock ticks: os.sysconf("SC_CLK_TCK"), the same as `getconf CLK_TCK`) of each process the
      rule selects, keyed "pid:starttime" (so a reused pid is not taken for the old process), and
      the machine's totals from the "cpu" line of /proc/stat. RULE is
        pid       the process PID itself
        children  every process whose parent is PID (not PID itself)
        tree      PID and every process whose parent is PID
      A process's stat line counts all of its threads. A PID that is gone selects nothing.
  python3 bench/proc_cpu.py diff BEFORE AFTER REQUESTS
      prints user and system microseconds of CPU per request for each group.

The difference of two snapshots (diff() below) counts, per group, the processes present in both,
plus those that appeared in between (all of their CPU: they started after the first snapshot);
processes that exited in between are skipped (their CPU is lost, and counted in "vanished").
"""

import json
import os
import sys
import time

RULES = ("pid", "children", "tree")


def read_stat(pid):
    """(ppid, utime, stime, starttime) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces or ')': split after the last ')'.
    fields = text[text.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): field N is fields[N - 3].
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[11]), int(fields[12]), int(fields[19])


def all_processes():
    procs = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = read_stat(int(entry))
            if stat:
                procs[int(entry)] = stat
    return procs


def machine_totals():
    """user (user + nice), system (system + irq + softirq), idle (idle + iowait), steal: clock ticks."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu "):
                v = [int(x) for x in line.split()[1:]] + [0] * 8
                return {"user": v[0] + v[1], "system": v[2] + v[5] + v[6], "idle": v[3] + v[4], "steal": v[7]}
    raise SystemExit("no cpu line in /proc/stat")


def snapshot(specs):
    procs = all_processes()
    groups = {}
    for spec in specs:
        name, _, rule_pid = spec.partition("=")
        rule, _, pid_text = rule_pid.partition(":")
        if not name or rule not in RULES or not pid_text.isdigit():
            raise SystemExit(f"bad group {spec!r}: want NAME=pid:N, NAME=children:N or NAME=tree:N")
        pid = int(pid_text)
        selected = []
        if rule in ("pid", "tree") and pid in procs:
            selected.append(pid)
        if rule in ("children", "tree"):
            selected += sorted(p for p, stat in procs.items() if stat[0] == pid and p != pid)
        groups[name] = {f"{p}:{procs[p][3]}": [procs[p][1], procs[p][2]] for p in selected}
    return {"time": time.time(), "clk_tck": os.sysconf("SC_CLK_TCK"), "ncpu": os.cpu_count(),
            "machine": machine_totals(), "groups": groups}


def load(path):
    with open(path) as f:
        return json.load(f)


def diff(before, after):
    """Per group: {"user": seconds, "system": seconds, "processes": n, "vanished": n, "new": n};
    plus "_machine": the whole machine's user/system/idle/steal seconds and the wall time."""
    tck = after["clk_tck"]
    result = {}
    for name, now in after["groups"].items():
        then = before["groups"].get(name, {})
        user = system = new = 0
        for key, (u, s) in now.items():
            u0, s0 = then.get(key, (0, 0))
            if key not in then:
                new += 1
            user += u - u0
            system += s - s0
        vanished = sum(1 for key in then if key not in now)
        result[name] = {"user": user / tck, "system": system / tck, "processes": len(now),
                        "vanished": vanished, "new": new}
    m0, m1 = before["machine"], after["machine"]
    result["_machine"] = {k: (m1[k] - m0[k]) / tck for k in m1}
    result["_machine"]["wall"] = after["time"] - before["time"]
    result["_machine"]["ncpu"] = after.get("ncpu") or 1
    return result


def main():
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "snapshot":
        data = snapshot(args[2:])
        tmp = args[1] + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, args[1])
    elif len(args) == 4 and args[0] == "diff":
        requests = int(args[3])
        d = diff(load(args[1]), load(args[2]))
        print(f"{'group':<16} {'procs':>5} {'user us/req':>12} {'sys us/req':>11}")
        for name, g in d.items():
            if name.startswith("_"):
                continue
            print(f"{name:<16} {g['processes']:>5} {g['user'] * 1e6 / requests:>12.1f} "
                  f"{g['system'] * 1e6 / requests:>11.1f}")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
