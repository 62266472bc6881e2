#!/usr/bin/env python3
"""bench/analyze.py DATA OUT.md: turns bench/run's raw data into the
results tables and writes OUT.md (BENCHMARKS.md for a full run); when OUT.md
already holds the KEEP_MARK line, everything from it to the end (the sections
written by hand from bench/soak and bench/pool) is kept.  Standard
library only (Debian's python3).  Exits 1 when a memsup figure has no data:
that is the harness breaking, not memsup missing a goal."""
import glob
import json
import os
import statistics
import sys

MIB = 1024 * 1024
LIMIT = 128 * MIB
CONFIGS = ["memsup", "memsup-for2s", "pm2-30s", "pm2-1s", "monit-1s"]
LABEL = {
    "memsup": "memsup (defaults: 50 ms interval, --for 0)",
    "memsup-for2s": "memsup --for 2s",
    "pm2-30s": "PM2 max_memory_restart, default worker interval (30 s)",
    "pm2-1s": "PM2 max_memory_restart, PM2_WORKER_INTERVAL=1000",
    "monit-1s": "monit, set daemon 1, totalmem > 128 MB",
}
BROKEN = []
DATA = ""
FALSE_S = 60.0
BASE = 0  # the worker's footprint besides its leak, bytes
# Everything from this line to the end of the file being overwritten is kept:
# the sections written by hand from other harnesses (bench/soak, bench/pool).
KEEP_MARK = ("<!-- Sections below are written by hand from other harnesses "
             "(bench/soak, bench/pool); make bench keeps them. -->")


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def kv(path):
    """key=value words, as bench/run writes its params files."""
    return dict(w.split("=", 1) for w in (read(path, "") or "").split() if "=" in w)


def runs(fig, cfg):
    return sorted(glob.glob(os.path.join(DATA, fig, cfg, "*")),
                  key=lambda p: int(os.path.basename(p)))


def restarts(path):
    out = []
    for line in (read(path, "") or "").splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("event") == "restart":
            out.append(ev)
    return out


def summary(xs, fmt="{:.1f}"):
    """median [min-max] of the numbers in xs, or a dash."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    if len(xs) == 1:
        return fmt.format(xs[0])
    return "{} [{}–{}]".format(fmt.format(statistics.median(xs)),
                               fmt.format(min(xs)), fmt.format(max(xs)))


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def crossing(run):
    """Times in ms from the moment the worker's leaked total plus its own
    footprint besides the leak (BASE) reached the limit (its step log) to: the stop beginning ("stop": the first stop
    signal it received or, for memsup, its decided_unix_s, when memsup
    freezes it), that signal ("signal"), and its last leak step ("last");
    and the overshoot in MiB at the signal.  None when there was no stop."""
    none = {"stop": None, "signal": None, "last": None, "over": None}
    steps = []
    for line in (read(os.path.join(run, "steps.log"), "") or "").splitlines():
        t, total = line.split()
        if steps and float(total) < steps[-1][1]:
            break  # a new worker: only the first one counts
        steps.append((int(t), float(total)))
    sigs = [int(l.split()[0]) for l in (read(os.path.join(run, "sig.stamp"), "") or "").splitlines()]
    rl = restarts(os.path.join(run, "w.jsonl"))
    base = BASE
    if rl and "decided_unix_s" in rl[0] and isinstance(rl[0].get("before"), dict):
        # memsup measured this very worker at its decision: its footprint
        # then, minus what it had leaked by then, is its own base.  (BASE is
        # bloat's; manymaps' mappings make its base bigger, and with BASE a
        # worker stopped just after the real crossing showed none.)
        dec = int(rl[0]["decided_unix_s"] * 1e9)
        prior = [total for t, total in steps if t <= dec]
        if prior:
            base = max(base, rl[0]["before"]["footprint"] - prior[-1])
    cross = next((t for t, total in steps if total + base >= LIMIT), None)
    if cross is None or not sigs:
        return none
    sig = sigs[0]
    before = [(t, total) for t, total in steps if t <= sig]
    stop = sig
    if rl and "decided_unix_s" in rl[0]:
        stop = int(rl[0]["decided_unix_s"] * 1e9)
    return {"stop": (stop - cross) / 1e6, "signal": (sig - cross) / 1e6,
            "last": (before[-1][0] - cross) / 1e6, "over": (before[-1][1] + base - LIMIT) / MIB}


def cpu(run, clk):
    """(% of one core, RSS MiB, footprint MiB or None) between cpu0 and cpu1."""
    a = (read(os.path.join(run, "cpu0")) or "").split()
    b = (read(os.path.join(run, "cpu1")) or "").split()
    if len(a) < 2 or len(b) < 3:
        return None, None, None
    secs = (int(b[1]) - int(a[1])) / 1e9
    fp = int(b[3]) / 1024 if len(b) > 3 else None
    return (float(b[0]) - float(a[0])) / clk / secs * 100, int(b[2]) / 1024, fp


def handoff(d):
    """Figure 6 numbers from one handoff run directory: the restart log's
    own timings, and the handoff throughput bytes / (held - received)."""
    rl = restarts(os.path.join(d, "w.jsonl"))
    h = {"params": kv(os.path.join(d, "params")), "restarts": len(rl), "outcome": [],
         "bytes": [], "save_ms": [], "verify_ms": [], "stop_ms": [], "spawn_ms": [],
         "restore_ms": [], "downtime_ms": [], "handoff_ms": [], "handoff_gbps": []}
    for ev in rl:
        st = ev.get("state") or {}
        h["outcome"].append(st.get("outcome"))
        for k in ("bytes", "save_ms", "verify_ms", "restore_ms"):
            h[k].append(st.get(k))
        for k in ("stop_ms", "spawn_ms", "downtime_ms"):
            h[k].append(ev.get(k))
        t0, t1 = st.get("received_unix_s"), st.get("held_unix_s")
        span = t1 - t0 if t0 is not None and t1 is not None else None
        h["handoff_ms"].append(span * 1e3 if span is not None else None)
        h["handoff_gbps"].append(st["bytes"] / span / 1e9 if span and span > 0 else None)
    return h


def fmt0(xs):
    return summary([med(xs)], "{:.0f}")


def goal(ok):
    return "met" if ok else "**missed**"


REPORT_CASES = (("text", "text"), ("json", "--json"), ("svg", "--svg FILE"),
                ("compare", "--compare A B"))


def report_runs(data):
    """Figure 7: per size, the params and each case's CPU times (user +
    system, s; the wall time when GNU time was missing), wall times and
    peak RSS (MiB) over the repetitions."""
    out = []
    dirs = glob.glob(os.path.join(data, "report", "n*"))
    for d in sorted(dirs, key=lambda p: int(os.path.basename(p)[1:])):
        r = {"params": kv(os.path.join(d, "params")), "dir": d}
        for case, _ in REPORT_CASES:
            secs, wall, rss = [], [], []
            for f in sorted(glob.glob(os.path.join(d, case + ".*.time"))):
                # GNU time writes "Command exited with non-zero status N"
                # first when the command failed: such a run has no figure.
                words = (read(f, "") or "").strip().splitlines()[-1:]
                words = words[0].split() if words else []
                try:
                    wall.append(float(words[0]))
                    if len(words) >= 4:
                        secs.append(float(words[1]) + float(words[2]))
                        rss.append(int(words[3]) / 1024)
                    else:
                        secs.append(wall[-1])
                except (ValueError, IndexError):
                    secs.append(None)
            r[case] = {"s": secs, "wall": wall, "rss_mib": rss}
        out.append(r)
    return out


def report_section(rr):
    """Figure 7's table and a sentence on how time grows with size."""
    md = ["### 7. `memsup report` on big logs (bench/biglog.c)\n",
          "| worker lives (= pids; mapping names + 2) | lines | MB read | "
          + " | ".join("%s (s)" % label for _, label in REPORT_CASES)
          + " | --compare wall (s) | peak RSS, --compare (MiB) |",
          "|---|---|---|" + "---|" * len(REPORT_CASES) + "---|---|"]
    for r in rr:
        p = r["params"]
        md.append("| %s | %s | %s | %s | %s | %s |" % (
            "{:,}".format(int(p.get("lives", 0))), "{:,}".format(int(p.get("lines", 0))),
            "%.0f" % (int(p.get("bytes", 0)) / 1e6),
            " | ".join(summary(r[c]["s"], "{:.2f}") for c, _ in REPORT_CASES),
            summary(r["compare"]["wall"], "{:.2f}"),
            summary(r["compare"]["rss_mib"], "{:.0f}")))
    md.append("")
    md.append("Times are CPU time (user + system) of the one memsup process; on a shared "
              "machine its wall time also counts waiting for a core.\n")
    if len(rr) >= 2:
        a, b = rr[0], rr[-1]
        size = int(b["params"].get("lives", 0)) / max(1, int(a["params"].get("lives", 1)))
        ta, tb = med(a["text"]["s"]), med(b["text"]["s"])
        ca, cb = med(a["compare"]["s"]), med(b["compare"]["s"])
        if ta and tb and ca and cb:
            md.append("%g× the lives take %.1f× the CPU time (text) and %.1f× (--compare): "
                      "linear growth is %g×, quadratic %g×.\n"
                      % (size, tb / ta, cb / ca, size, size * size))
    return md


def report_only(data, out_md):
    """bench/run --report: figure 7 alone, with its machine and commands."""
    m = kv(os.path.join(data, "machine.env"))
    rr = report_runs(data)
    if not rr:
        print("bench: no figure 7 data in %s" % data, file=sys.stderr)
        return 1
    md = ["# memsup benchmarks: figure 7 alone\n",
          "Written by `bash bench/run --report` on %s (nproc %s, %s, load average %s at the "
          "start). Every number is median [min–max] over the repetitions.\n"
          % (m.get("date", "?"), m.get("nproc", "?"), m.get("model", "?"),
             m.get("load_start", "?"))]
    md += report_section(rr)
    md.append("Commands (largest size; `$RUN` is its data directory):\n\n```\n%s```\n"
              % report_commands(rr))
    with open(out_md, "w") as f:
        f.write("\n".join(md))
    print("bench: wrote %s" % out_md)
    return 0


def report_commands(rr):
    """The largest size's commands, paths relative to the repository."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    text = read(os.path.join(rr[-1]["dir"], "commands.txt"), "") or ""
    text = text.replace(os.path.abspath(rr[-1]["dir"]), "$RUN")
    return text.replace(root + "/", "")


def false_table(md, false):
    def fl(xs, f):
        return summary(xs, f)
    md.append("| supervisor | mapfile (clean file pages) | lazyfree (MADV_FREE pages) | spike (1 s of 192 MiB every 3 s) | startpeak (300 MiB at start, then MADV_FREE) |")
    md.append("|---|---|---|---|---|")
    for cfg in CONFIGS:
        if cfg in false:
            d = false[cfg]
            md.append("| %s | %s | %s | %s | %s |" % (LABEL[cfg], fl(d["mapfile"], "{:.0f}"),
                                                      fl(d["lazyfree"], "{:.0f}"), fl(d["spike"], "{:.0f}"),
                                                      fl(d["startpeak"], "{:.0f}")))


def false_only(data, out_md):
    """bench/run --false: figure 4 alone."""
    false = {}
    for cfg in CONFIGS:
        rs = sorted(glob.glob(os.path.join(data, "false", cfg, "*")),
                    key=lambda p: int(os.path.basename(p)))
        if rs:
            false[cfg] = {mode: [int((read(os.path.join(r, mode + ".count"), "") or "0").strip() or 0)
                                 for r in rs] for mode in ("mapfile", "lazyfree", "spike", "startpeak")}
    md = ["# Figure 4 alone: stop signals received per run (`bash bench/run --false`)\n"]
    false_table(md, false)
    with open(out_md, "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


def main():
    global DATA, FALSE_S, BASE
    if sys.argv[1] == "--false":
        return false_only(sys.argv[2], sys.argv[3])
    if sys.argv[1] == "--report":
        return report_only(sys.argv[2], sys.argv[3])
    DATA, out_md = sys.argv[1], sys.argv[2]
    m = {}
    for line in (read(os.path.join(DATA, "machine.env"), "") or "").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            m[k] = v
    clk = float(m.get("clk_tck", 100))
    FALSE_S = float(m.get("false_s", 60))
    BASE = int(m.get("worker_footprint_kb") or 0) * 1024
    peers = dict(l.split("\t", 1) for l in (read(os.path.join(DATA, "peers.tsv"), "") or "").splitlines() if "\t" in l)
    smoke = m.get("mode") == "smoke"
    res = {"machine": m, "peers": peers}
    md = []

    # Figures 1 and 2.
    leak = {}
    for cfg in CONFIGS:
        rs = runs("leak", cfg)
        if not rs:
            continue
        lat, sig, last, over, fp_over, missed = [], [], [], [], [], 0
        for r in rs:
            c = crossing(r)
            if c["stop"] is None:
                missed += 1
            lat.append(c["stop"])
            sig.append(c["signal"])
            last.append(c["last"])
            over.append(c["over"])
            rl = restarts(os.path.join(r, "w.jsonl"))
            if rl:
                fp_over.append((rl[0]["before"]["footprint"] - LIMIT) / MIB)
        leak[cfg] = {"latency_ms": lat, "signal_ms": sig, "last_step_ms": last,
                     "overshoot_mib": over, "memsup_before_over_mib": fp_over,
                     "missed": missed, "runs": len(rs)}
    res["leak"] = leak
    if not leak.get("memsup") or med(leak["memsup"]["latency_ms"]) is None:
        BROKEN.append("figure 1: no memsup measurement")

    # Figure 3.
    idle = {}
    for cfg in CONFIGS:
        rs = runs("idle", cfg)
        if rs:
            vals = [cpu(r, clk) for r in rs]
            idle[cfg] = {"cpu_pct": [v[0] for v in vals], "rss_mib": [v[1] for v in vals],
                         "footprint_mib": [v[2] for v in vals if v[2] is not None]}
    res["idle"] = idle
    if med(idle.get("memsup", {}).get("cpu_pct", [])) is None:
        BROKEN.append("figure 3: no memsup measurement")

    # Figure 4.
    false = {}
    for cfg in CONFIGS:
        rs = runs("false", cfg)
        if rs:
            false[cfg] = {mode: [int((read(os.path.join(r, mode + ".count"), "") or "0").strip() or 0)
                                 for r in rs] for mode in ("mapfile", "lazyfree", "spike", "startpeak")}
    res["false"] = false
    if "memsup" not in false:
        BROKEN.append("figure 4: no memsup measurement")

    # Figure 5.
    maps = {}
    for n in ("m300", "m60000"):
        rs = runs("maps", n)
        lat, sig, cp, vmas = [], [], [], []
        for r in rs:
            c = crossing(r)
            lat.append(c["stop"])
            sig.append(c["signal"])
            cp.append(cpu(r, clk)[0])
            v = read(os.path.join(r, "vmas"))
            vmas.append(int(v) if v and v.strip().isdigit() else None)
        maps[n] = {"latency_ms": lat, "signal_ms": sig, "cpu_pct": cp, "vmas": vmas}
        if med(lat) is None or med(cp) is None:
            BROKEN.append("figure 5 (%s): no measurement" % n)
    res["maps"] = maps

    # Figure 6.
    hd = {cfg: handoff(os.path.join(DATA, "handoff", cfg, "1")) for cfg in ("memsup", "small")}
    res["handoff"] = hd
    h, hs = hd["memsup"], hd["small"]
    hp = h["params"]
    if not h["restarts"] or not hs["restarts"]:
        BROKEN.append("figure 6: no memsup restart")
    if BROKEN:
        res["broken"] = BROKEN

    # ---- goals -----------------------------------------------------------
    ml = leak.get("memsup", {})
    lat_ok = (ml and med(ml["latency_ms"]) is not None and med(ml["latency_ms"]) <= 50
              and ml["missed"] == 0 and max(x for x in ml["latency_ms"] if x is not None) <= 120)
    over_ok = bool(ml) and all(x is not None and x <= 24 for x in ml["overshoot_mib"])
    mi = idle.get("memsup", {})
    rss_ok = bool(mi) and all(x is not None and x <= 3 for x in mi["rss_mib"])
    cpu_ok = bool(mi) and all(x is not None and x <= 0.2 for x in mi["cpu_pct"])
    mf = false.get("memsup", {})
    f2 = false.get("memsup-for2s", {})
    false_ok = bool(mf) and all(sum(mf[k]) == 0 for k in ("mapfile", "lazyfree"))
    spike_ok = bool(mf) and sum(mf["spike"]) == 0
    spike_for_ok = bool(f2) and sum(f2["spike"]) == 0
    big = maps.get("m60000", {})
    big_lat = [x for x in big.get("latency_ms", []) if x is not None]
    maps_ok = (bool(big_lat) and len(big_lat) == len(big["latency_ms"]) and
               all(x is not None and x <= 1 for x in big["cpu_pct"]) and
               med(big_lat) <= 50 and max(big_lat) <= 120)
    share_ok = all(med(x["spawn_ms"]) is not None and med(x["spawn_ms"]) <= 5 for x in (h, hs))
    gbps_ok = med(h["handoff_gbps"]) is not None and med(h["handoff_gbps"]) >= 1
    res["goals"] = {"latency": lat_ok, "overshoot": over_ok, "rss": rss_ok, "cpu": cpu_ok,
                    "false_mapfile_lazyfree": false_ok, "false_spike_default": spike_ok,
                    "false_spike_for2s": spike_for_ok, "maps": maps_ok,
                    "downtime_share": share_ok, "handoff_gbps": gbps_ok}
    with open(os.path.join(DATA, "results.json"), "w") as f:
        json.dump(res, f, indent=1)

    # ---- the document ----------------------------------------------------
    def peer_note(cfg):
        p = peers.get(cfg, "")
        return p if p.startswith("not measured") else None

    def ratio(cfg, table, key):
        a, b = med(table.get(cfg, {}).get(key, [])), med(table.get("memsup", {}).get(key, []))
        if a is None or not b:
            return "–"
        return "%.0f×" % (a / b) if a / b >= 10 else "%.1f×" % (a / b)

    md.append("# memsup benchmarks\n")
    if smoke:
        md.append("**Smoke run: 1 repetition of shortened figures; the numbers only show the "
                  "harness works. See BENCHMARKS.md for a full run.**\n")
    md.append("Written by `make bench` (`bash bench/run`) on %s in %s s. Every number is "
              "median [min–max] over the repetitions of one run of the harness; ratios compare "
              "medians from that same run. `bash bench/run --smoke` runs a tiny version of every "
              "figure (< 60 s) and writes bench/out/BENCHMARKS.smoke.md.\n"
              % (m.get("date", "?"), m.get("elapsed_s", "?")))
    md.append("## Machine and versions\n")
    md.append("| | |\n|---|---|")
    for k, label in (("model", "CPU"), ("nproc", "nproc"), ("memtotal", "memory"), ("kernel", "kernel"),
                     ("memsup", "memsup"), ("pm2", "PM2"), ("node", "node (for PM2)"),
                     ("monit", "monit"), ("max_map_count", "vm.max_map_count"),
                     ("worker_footprint_kb", "bloat's own footprint besides its leak (kB)"),
                     ("worker_rss_kb", "bloat's own RSS besides its leak (kB)"),
                     ("load_start", "load average (1, 5, 15 min) before the first figure"),
                     ("load_end", "load average (1, 5, 15 min) after the last figure "
                      "(includes the harness's own workers)")):
        md.append("| %s | %s |" % (label, m.get(k, "?")))
    if "raised_max_map_count" in m:
        md.append("| vm.max_map_count raised by bench/run to | %s |" % m["raised_max_map_count"])
    md.append("")
    for cfg in ("pm2-30s", "pm2-1s", "monit-1s"):
        if peer_note(cfg):
            md.append("- %s: %s" % (LABEL[cfg], peer_note(cfg)))
    md.append("- uWSGI (`reload-on-rss`) and Celery (`--max-memory-per-child`): not measured. "
              "Each restarts only its own kind of worker (a uWSGI app process, a Celery pool "
              "child running Python tasks), so neither can run the bloat binary; measuring them "
              "would need a Python port of the worker, and Celery a broker. By their own docs "
              "they check memory after a request (uWSGI; its master-side `evil-reload-on-rss` "
              "polls instead) or after a task (Celery), so a worker leaking inside one long "
              "request or task is not stopped until it ends.\n")
    md.append("## Goals\n")
    md.append("| # | goal | result | |\n|---|---|---|---|")

    def fl(xs, f="{:.1f}"):
        return summary(xs, f)

    md.append("| 1 | limit crossed → stop begins: p50 ≤ 50 ms, max ≤ 120 ms | %s ms | %s |"
              % (fl(ml.get("latency_ms", [])), goal(lat_ok)))
    md.append("| 2 | overshoot at 200 MiB/s ≤ 24 MiB | %s MiB | %s |"
              % (fl(ml.get("overshoot_mib", [])), goal(over_ok)))
    md.append("| 3 | own RSS ≤ 3 MiB | %s MiB (footprint %s MiB) | %s |"
              % (fl(mi.get("rss_mib", []), "{:.2f}"), fl(mi.get("footprint_mib", []), "{:.2f}"),
                 goal(rss_ok)))
    md.append("| 3 | own CPU ≤ 0.2 %% of a core | %s %% | %s |" % (fl(mi.get("cpu_pct", []), "{:.3f}"), goal(cpu_ok)))
    md.append("| 4 | no false restart (mapfile, lazyfree) | %s in %d runs of %.0f s | %s |"
              % (", ".join("%s %d" % (k, sum(mf.get(k, []))) for k in ("mapfile", "lazyfree")),
                 len(mf.get("mapfile", [])), FALSE_S, goal(false_ok)))
    md.append("| 4 | spike (1 s over the limit every 3 s) filtered | restarts per %.0f s: default %s; --for 2s %s | %s |"
              % (FALSE_S, fl(mf.get("spike", []), "{:.0f}"), fl(f2.get("spike", []), "{:.0f}"),
                 "met with --for 2s" if spike_for_ok and not spike_ok else goal(spike_ok)))
    md.append("| 5 | 60,000 mappings: CPU ≤ 1 %%, latency goal met | %s %%, %s ms | %s |"
              % (fl(big.get("cpu_pct", []), "{:.2f}"), fl(big.get("latency_ms", [])), goal(maps_ok)))
    md.append("| 6 | memsup's own share of the downtime (`spawn_ms`) p50 ≤ 5 ms | %s ms (%s MiB state); %s ms (no padding) | %s |"
              % (fl(h["spawn_ms"], "{:.2f}"), hp.get("state_mib", "?"), fl(hs["spawn_ms"], "{:.2f}"),
                 goal(share_ok)))
    md.append("| 6 | handoff of %s MiB ≥ 1 GB/s | %s GB/s | %s |"
              % (hp.get("state_mib", "?"), fl(h["handoff_gbps"], "{:.2f}"), goal(gbps_ok)))
    md.append("")

    md.append("## Results\n")
    md.append("### 1–2. Detection latency and overshoot (leak at ~200 MiB/s, limit 128 MiB)\n")
    md.append("Times in ms from the step at which the worker's footprint (leak + its own %s kB) "
              "reached 128 MiB. *Stop begins*: " % m.get("worker_footprint_kb", "?") + 
              "memsup's decision, when it freezes the worker with SIGSTOP (`decided_unix_s`); for "
              "the peers, the worker receiving their stop signal. *Signal received*: the worker's "
              "handler ran (memsup's SIGTERM comes after the evidence read, with SIGCONT). *Last "
              "growth*: the worker's last leak step, a check from the worker's side that the stop "
              "began (steps are about 11 ms apart).\n")
    md.append("| supervisor | runs | stop begins (ms) | vs memsup | signal received (ms) "
              "| last growth (ms) | overshoot (MiB) | vs memsup |")
    md.append("|---|---|---|---|---|---|---|---|")
    for cfg in CONFIGS:
        if cfg in leak:
            d = leak[cfg]
            miss = " (%d without a stop)" % d["missed"] if d["missed"] else ""
            md.append("| %s | %d%s | %s | %s | %s | %s | %s | %s |" % (
                LABEL[cfg], d["runs"], miss, fl(d["latency_ms"]),
                "1×" if cfg == "memsup" else ratio(cfg, leak, "latency_ms"), fl(d["signal_ms"]),
                fl(d["last_step_ms"]), fl(d["overshoot_mib"]),
                "1×" if cfg == "memsup" else ratio(cfg, leak, "overshoot_mib")))
        elif peer_note(cfg):
            md.append("| %s | – | %s | | | | | |" % (LABEL[cfg], peer_note(cfg)))
    if ml.get("memsup_before_over_mib"):
        md.append("\nmemsup's own figure, `before.footprint` − limit in the restart log: %s MiB."
                  % fl(ml["memsup_before_over_mib"]))
    if "pm2-30s" in leak:
        md.append("\nThe worker stops leaking at 4096 MiB (`--max 4096`), so a PM2 overshoot near "
                  "3968 MiB means \"at least that much\".")
    md.append("")

    md.append("### 3. The supervisor's own cost beside an idle worker (%s s windows)\n" % m.get("idle_s", "?"))
    md.append("| supervisor | process measured | CPU (% of one core) | vs memsup | RSS (MiB) | vs memsup | footprint (MiB) |")
    md.append("|---|---|---|---|---|---|---|")
    who = {"memsup": "memsup", "pm2-30s": "PM2 God daemon (node)", "pm2-1s": "PM2 God daemon (node)",
           "monit-1s": "monit -I"}
    for cfg in CONFIGS:
        if cfg in idle:
            d = idle[cfg]
            md.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                LABEL[cfg], who[cfg], fl(d["cpu_pct"], "{:.3f}"),
                "1×" if cfg == "memsup" else ratio(cfg, idle, "cpu_pct"), fl(d["rss_mib"], "{:.2f}"),
                "1×" if cfg == "memsup" else ratio(cfg, idle, "rss_mib"),
                fl(d.get("footprint_mib", []), "{:.2f}")))
    md.append("")

    md.append("### 4. Restarts of workers that never leak (per %s s, 192 MiB each)\n" % m.get("false_s", "?"))
    false_table(md, false)
    md.append("\nA spike is real dirty memory over the limit, so a restart at `--for 0` is memsup "
              "doing what it was told; `--for 2s` (longer than the 1 s spike) filters it. bloat "
              "spikes as soon as it starts, so at `--for 0` each restart is followed by the next "
              "one a tick later. The counts are stop signals received during the window.\n")

    md.append("### 5. memsup on a worker with many mappings (bench/manymaps.c)\n")
    md.append("| worker | VMAs | memsup CPU while it idles (%) | stop begins (ms) | SIGTERM received (ms) |")
    md.append("|---|---|---|---|---|")
    for n, label in (("m300", "300 mappings"), ("m60000", "60,000 mappings")):
        d = maps.get(n, {})
        md.append("| %s | %s | %s | %s | %s |" % (label, fl(d.get("vmas", []), "{:.0f}"),
                                                  fl(d.get("cpu_pct", []), "{:.2f}"),
                                                  fl(d.get("latency_ms", [])), fl(d.get("signal_ms", []))))
    md.append("\nThe SIGTERM follows the decision by the evidence read (`/proc/PID/smaps`, whose cost "
              "grows with the mappings), during which the worker is frozen: it made no leak step "
              "between the two.\n")

    md.append("### 6. Restart downtime and state handoff (kvcache, %s and %s restarts)\n"
              % (h["restarts"], hs["restarts"]))
    md.append("| quantity | from the restart log | --state-mib %s | --state-mib 0 |\n|---|---|---|---|"
              % hp.get("state_mib", "?"))
    rows = (("state bytes", "`state.bytes`", "bytes", "{:.0f}", ""),
            ("save", "`state.save_ms`: decision → state received and checked", "save_ms", "{:.1f}", " ms"),
            ("memsup's check", "`state.verify_ms`: size, seals, CRC-32C (part of save)", "verify_ms",
             "{:.2f}", " ms"),
            ("old worker stops", "`stop_ms`: SIGTERM → exit", "stop_ms", "{:.1f}", " ms"),
            ("**memsup's own share of the downtime**", "`spawn_ms`: old worker exit → new worker "
             "spawned", "spawn_ms", "{:.2f}", " ms"),
            ("restore", "`state.restore_ms`: welcome sent → ready", "restore_ms", "{:.1f}", " ms"),
            ("downtime", "`downtime_ms`: old worker exit → new worker ready", "downtime_ms", "{:.1f}", " ms"),
            ("handoff", "`state.held_unix_s − state.received_unix_s`: save reply received → new "
             "worker holds the bytes", "handoff_ms", "{:.1f}", " ms"),
            ("**handoff throughput**", "`state.bytes` / handoff", "handoff_gbps", "{:.2f}", " GB/s"))
    for label, src, key, f, unit in rows:
        small = fl(hs[key], f) + unit if "gbps" not in key else "–"
        md.append("| %s | %s | %s%s | %s |" % (label, src, fl(h[key], f), unit, small))
    md.append("")
    md.append("Outcomes: %s. The throughput is not given for the state without padding (%s "
              "bytes): it would measure fixed costs, not bytes."
              % (", ".join(sorted(set(str(o) for o in h["outcome"] + hs["outcome"]))) or "none",
                 summary([med(hs["bytes"])], "{:.0f}")))
    md.append("")

    rr = report_runs(DATA)
    if rr:
        md += report_section(rr)
    md.append(METHOD)
    md.append("## Exact commands\n")
    md.append("First repetition of each figure; paths relative to the repository, the "
              "per-run directory shortened to `$RUN`. Figures 3 and 4 run the same configuration "
              "on `bloat --mode idle` and on `--mode mapfile|lazyfree|spike --size 192`.\n")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(DATA))))

    def tidy(text, fig, cfg):
        run = os.path.join(os.path.abspath(DATA), fig, cfg, "1")
        return text.replace(run, "$RUN").replace(root + "/", "")

    shown = [("leak", c) for c in CONFIGS if c in leak]
    shown += [("idle", c) for c in CONFIGS if c in idle and c not in leak]
    shown += [("false", "memsup-for2s"), ("maps", "m60000"), ("handoff", "memsup")]
    for fig, cfg in shown:
        text = read(os.path.join(DATA, fig, cfg, "1", "commands.txt"), "")
        if text:
            if fig == "false":
                text = text.splitlines()[-1] + "\n"  # the spike worker
            md.append("**%s, figure %s**\n\n```\n%s```\n" % (
                "memsup" if fig in ("maps", "handoff") else cfg, {"leak": "1–2", "idle": "3", "false": "4", "maps": "5",
                      "handoff": "6"}[fig], tidy(text, fig, cfg)))

    if rr:
        md.append("**memsup, figure 7** (largest size)\n\n```\n%s```\n" % report_commands(rr))

    md.append("## Interpretation\n")
    md.append(interpret(leak, idle, false, maps, h, hs, res["goals"]))
    if BROKEN:
        md.append("\n**Harness problems:** " + "; ".join(BROKEN) + "\n")
    kept = ""
    old = read(out_md, "") or ""
    if KEEP_MARK in old:
        kept = "\n" + old[old.index(KEEP_MARK):]
    with open(out_md, "w") as f:
        f.write("\n".join(md) + kept)
    print("bench: wrote %s%s" % (out_md, " (kept the hand-written sections)" if kept else ""))
    if BROKEN:
        print("bench: harness broken: " + "; ".join(BROKEN), file=sys.stderr)
        return 1
    return 0


def interpret(leak, idle, false, maps, h, hs, goals):
    out = []
    ml = med(leak.get("memsup", {}).get("latency_ms", []))
    for cfg in ("pm2-30s", "pm2-1s", "monit-1s"):
        pl = med(leak.get(cfg, {}).get("latency_ms", []))
        if ml and pl:
            out.append("- Detection: %s reacts in %.0f ms median against memsup's %.0f ms (%.0f× slower), "
                       "and the worker overshoots the limit by %s MiB instead of %s MiB."
                       % (cfg, pl, ml, pl / ml, summary([med(leak[cfg]["overshoot_mib"])], "{:.0f}"),
                          summary([med(leak["memsup"]["overshoot_mib"])], "{:.0f}")))
    for cfg in ("pm2-30s", "pm2-1s", "monit-1s"):
        d = idle.get(cfg)
        if d and idle.get("memsup"):
            out.append("- Own cost: %s uses %.2f MiB and %.3f %% of a core; memsup %.2f MiB and %.3f %%."
                       % (cfg, med(d["rss_mib"]), med(d["cpu_pct"]), med(idle["memsup"]["rss_mib"]),
                          med(idle["memsup"]["cpu_pct"])))
    for cfg in ("memsup", "pm2-30s", "pm2-1s", "monit-1s"):
        d = false.get(cfg)
        if d and sum(d["mapfile"]) + sum(d["lazyfree"]):
            out.append("- False restarts: %s restarted the mapfile worker %d× and the lazyfree "
                       "worker %d× (all repetitions together). It measures RSS, which counts clean "
                       "file pages and MADV_FREE pages that the kernel can take back at no cost."
                       % (cfg, sum(d["mapfile"]), sum(d["lazyfree"])))
        elif d:
            out.append("- False restarts: %s never restarted the mapfile or lazyfree worker." % cfg)
    mf = false.get("memsup")
    if mf and sum(mf["spike"]):
        out.append("- The spike worker is over the limit for 1 s from its first moment, so at "
                   "`--for 0` memsup restarts it %d times a minute: the new worker's first sample "
                   "catches it part-way into its spike (under 90 %% of the old footprint), so "
                   "each restart counts as helpful and the unhelpful-restart backoff never "
                   "engages. `--for 2s` is the setting for such a worker."
                   % round(med(mf["spike"]) * 60 / float(FALSE_S)))
    if h["restarts"] and hs["restarts"]:
        out.append("- Handoff: a %s MiB state goes from memsup's hands to the new worker's in %s ms "
                   "(%s GB/s). The new worker is ready %s ms after the old one exits (%s ms with no "
                   "padding); memsup's own part of that is %s ms (%s ms with no padding), the rest "
                   "is the new worker's start-up and its restore and check (%s ms)."
                   % (h["params"].get("state_mib", "?"), fmt0(h["handoff_ms"]),
                      summary([med(h["handoff_gbps"])], "{:.2f}"), fmt0(h["downtime_ms"]),
                      fmt0(hs["downtime_ms"]), summary([med(h["spawn_ms"])], "{:.2f}"),
                      summary([med(hs["spawn_ms"])], "{:.2f}"), fmt0(h["restore_ms"])))
    names = {"latency": "1 detection latency", "overshoot": "2 overshoot", "rss": "3 own RSS",
             "cpu": "3 own CPU", "false_mapfile_lazyfree": "4 false restarts",
             "false_spike_for2s": "4 spike filtered with --for 2s", "maps": "5 many mappings",
             "downtime_share": "6 memsup's share of the downtime", "handoff_gbps": "6 handoff throughput"}
    missed = [names[k] for k, v in goals.items() if not v and k in names]
    if missed:
        out.append("- memsup misses these goals on this run: %s (reported to the lead; the harness "
                   "records them as measured)." % ", ".join(missed))
    else:
        out.append("- memsup meets every goal on this run.")
    return "\n".join(out) + "\n"


METHOD = """## Method

Common ground for every supervisor: the worker is the same binary
(`build/examples/bloat`, or bench/manymaps.c for figure 5) and reports its
own view. `--step-log` gives the CLOCK_REALTIME time of each leak step and
the bytes leaked so far; `--signals-to` names a FIFO that `bench/stamp fifo`
reads, so each SIGTERM (memsup, monit's stop program) or SIGINT (PM2's
default kill signal) is time-stamped to within a few microseconds of the
worker's handler running. No supervisor log is needed, so memsup, PM2 and
monit are measured the same way.

1. **Detection latency**: from the first step at which the worker's
   footprint reached 128 MiB (defined below) to the moment the stop begins. For PM2 and monit
   that is the worker receiving their stop signal (their worker tick or
   cycle, the memory read, the stop). memsup freezes a worker without the
   SDK with SIGSTOP at its decision, reads the evidence (full smaps) and
   then sends SIGTERM + SIGCONT; SIGSTOP cannot be caught, so its moment is
   memsup's `decided_unix_s`, and two worker-side columns back it: the
   SIGTERM's arrival and the worker's last leak step (a frozen worker makes
   no more steps). The crossing is the first step at which the leaked
   total plus the worker's own footprint besides the leak reaches 128 MiB.
   That base is measured by bench/run on an idle bloat (machine table);
   where memsup stopped the worker, its restart line gives the base of
   that very worker (its footprint at the decision minus what the step
   log had leaked by then), the larger of the two counting.
   The peers measure RSS, which also counts the worker's file pages (the
   RSS row of the machine table), so by their own metric they see the
   limit crossed up to one step (~11 ms) earlier: their latencies are
   understated by about that much. The leak rate
   is drawn uniformly from 185–215 MiB/s per run so the crossing falls at a
   random phase of memsup's 50 ms grid; peers start the worker through
   `bench/lib/worker exec DELAY` with DELAY uniform in [0, their polling
   period) so it also falls at a random phase of their 1 s or 30 s cycle.
   memsup starts its worker through the same wrapper, DELAY uniform in
   [0, 50 ms), so every tool supervises a `bash` that sleeps and then execs
   the worker, and every tool is measured the same way (figures 1–4; the
   memsup-only figures 5 and 6 start the worker directly).
2. **Overshoot** = the worker's footprint (leaked total + its own) at its
   last leak step before the stop signal − 128 MiB, from the same two logs (for memsup: the total at which it was
   frozen). memsup's own `before.footprint` − 128 MiB is shown beside it.
3. **Own cost**: utime+stime of the supervisor process (all its threads,
   /proc/PID/stat, 10 ms ticks) over the window, after 3 s of start-up,
   and its VmRSS at the end. Every configuration runs at the same time,
   each with its own `bloat --mode idle` (2 cores; all of them idle).
4. **False restarts**: stop signals received by workers whose footprint
   (private dirty + swap) stays near zero: `--mode mapfile --size 192`
   (clean, shared file pages), `--mode lazyfree --size 192` (pages given
   back with MADV_FREE, still in RSS until the kernel needs them) and
   `--mode spike --size 192` (192 MiB of real dirty memory for 1 s every
   3 s). All configurations run at the same time.
5. **Many mappings**: bench/manymaps.c makes N one-page anonymous mappings
   with alternating protections (they cannot merge), idles, then leaks like
   bloat. memsup's CPU is measured while the worker idles (its sampler
   reads /proc/PID/status every tick and smaps_rollup, whose cost grows
   with the mappings, only when due); the latency as in figure 1.
6. **Downtime and handoff**: `memsup --limit (state + 128 MiB)` runs
   `kvcache --state-mib N --leak-mib-per-s L`, whose state carries N MiB of
   padding, through several memory restarts, once with N = 256 and once
   with N = 0. Every number comes from memsup's restart line (fields in
   docs/restart-log.md), none is derived by subtraction. **Handoff
   throughput** = `state.bytes` / (`state.held_unix_s` −
   `state.received_unix_s`): from the moment memsup received the save reply
   to the moment the new worker's `memsup_restore()` had the verified bytes
   (a wall-clock time its SDK reports in `ready`). The span holds memsup's
   CRC check, the old worker's stop, the spawn, the new worker's exec and
   start-up up to its restore, and the restore's own check; kvcache builds
   the padding of its own state only after the restore, so that work is
   not in it. **memsup's own share of the downtime** = `spawn_ms` (old
   worker's exit reaped → new worker spawned, including fork/exec), shown
   beside `downtime_ms` (old worker exit → new worker ready), `stop_ms`,
   `state.save_ms`, `state.verify_ms` and `state.restore_ms` for context.
   The run without padding shows that memsup's own steps do not depend on
   the state's size (it is handed over as a sealed memfd).
7. **`memsup report` on big logs**: bench/biglog.c writes N worker lives
   as memsup would log them: a restart line per life (its own pid, an
   evidence row naming a library mapping no other restart names, beside
   `[heap]` and anonymous memory, two gauges) and 3 sample lines per life.
   Each case reads both logs of one such set; `--compare` reads two sets
   (seeds 1 and 2). CPU time (user + system), wall time and peak RSS
   from GNU time (`%e %U %S %M`).
"""

if __name__ == "__main__":
    sys.exit(main())
