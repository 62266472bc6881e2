#!/usr/bin/env python3
"""bench/pool/analyze.py DATA OUT.md: the tables of bench/pool/run.

DATA/<config>/<rep>/ holds wrk.out (its last line WRKJSON {...} from
wrk-report.lua), memsup's restart log(s) or PM2's jlist and pm2.log, and
stats.jsonl (the workers' /stats answers after the load).  Every figure is
median [min-max] over the repetitions; ratios compare medians of this run.
Standard library only.
"""
import json
import os
import re
import statistics
import sys


def params(data):
    p = {}
    with open(os.path.join(data, "params")) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith(("cpu=", "memsup=", "wrk=", "pm2=", "node=",
                                "kernel=", "date=", "loadavg", "nproc=",
                                "mem_gib=", "memsup_commit=", "configs=")):
                k, v = line.split("=", 1)
                p[k] = v
                continue
            for w in line.split():
                if "=" in w:
                    k, v = w.split("=", 1)
                    p[k] = v
    return p


def wrk_json(d):
    try:
        with open(os.path.join(d, "wrk.out")) as f:
            for line in f:
                if line.startswith("WRKJSON "):
                    return json.loads(line[len("WRKJSON "):])
    except OSError:
        pass
    return None


def memsup_logs(d):
    """(slot, event dict) for every line of every memsup log in d.  A
    pool log has "slot" in each line; memsup-sep has one log per worker
    (memsup.K.jsonl), slot K."""
    out = []
    for name in sorted(os.listdir(d)):
        m = re.fullmatch(r"memsup(?:\.(\d+))?\.jsonl", name)
        if not m:
            continue
        with open(os.path.join(d, name)) as f:
            for line in f:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                slot = ev.get("slot", int(m.group(1)) if m.group(1) else 0)
                out.append((slot, ev))
    return out


def down_intervals(events):
    """Down for memory (pool-spec): a memory restart's decision until the
    new worker of that slot is ready (downtime_ms), per slot."""
    iv = []
    for slot, ev in events:
        if ev.get("event") != "restart":
            continue
        t0 = ev.get("decided_unix_s")
        if t0 is None:
            continue
        ms = ev.get("downtime_ms")
        if ms is None:  # no ready: what is known, the old one gone + spawn
            ms = (ev.get("gone_ms") or 0) + (ev.get("spawn_ms") or 0)
        iv.append((t0, t0 + ms / 1000.0, slot))
    return iv


def max_overlap(iv):
    """Most slots down for memory at the same instant, and how many
    restarts overlapped another slot's."""
    pts = []
    for a, b, s in iv:
        pts.append((a, 1, s))
        pts.append((b, -1, s))
    pts.sort(key=lambda p: (p[0], p[1]))  # an end before a start at a tie
    cur = best = 0
    for _, d, _ in pts:
        cur += d
        best = max(best, cur)
    overl = 0
    for i, (a, b, s) in enumerate(iv):
        if any(s2 != s and a2 < b and a < b2
               for j, (a2, b2, s2) in enumerate(iv) if j != i):
            overl += 1
    return best, overl


def memsup_run(d):
    ev = memsup_logs(d)
    r = {"restarts": 0, "limit": 0, "early": 0, "crash": 0, "wait": 0,
         "ceiling": 0, "hold": 0, "giveup": 0, "downtime_ms": [],
         "waited_max_s": 0}
    for slot, e in ev:
        k = e.get("event")
        if k == "restart":
            r["restarts"] += 1
            if e.get("reason") == "early":
                r["early"] += 1
            else:
                r["limit"] += 1
            if e.get("ceiling"):
                r["ceiling"] += 1
            r["waited_max_s"] = max(r["waited_max_s"], e.get("waited_s") or 0)
            r["peak"] = max(r.get("peak", 0), e.get("value") or 0)
            r["peak_rss"] = max(r.get("peak_rss", 0),
                                (e.get("before") or {}).get("rss") or 0)
            if e.get("downtime_ms") is not None:
                r["downtime_ms"].append(e["downtime_ms"])
        elif k in ("crash", "wait", "hold", "giveup"):
            r[k] += 1
    r["max_down"], r["overlapping"] = max_overlap(down_intervals(ev))
    try:
        with open(os.path.join(d, "exit-codes")) as f:
            r["exit"] = f.read().split()
    except OSError:
        r["exit"] = []
    return r


def pm2_run(d):
    r = {"restarts": 0, "limit": 0, "early": 0, "crash": 0, "wait": None,
         "ceiling": None, "hold": None, "giveup": 0, "max_down": None,
         "overlapping": None, "downtime_ms": [], "exit": []}
    try:
        with open(os.path.join(d, "pm2-jlist.json")) as f:
            procs = json.load(f)
        r["restarts"] = sum(p["pm2_env"].get("restart_time", 0) for p in procs)
        r["online_at_end"] = sum(p["pm2_env"].get("status") == "online"
                                 for p in procs)
    except (OSError, ValueError, KeyError):
        pass
    try:
        with open(os.path.join(d, "pm2.log")) as f:
            text = f.read()
        r["limit"] = len(re.findall(r"exceeds --max-memory-restart", text))
        r["peak"] = max([int(x) for x in re.findall(r"current_memory=(\d+)", text)],
                        default=0)
    except OSError:
        pass
    r["crash"] = max(0, r["restarts"] - r["limit"])
    return r


RESTORED = re.compile(r"httpleak\[pid (\d+) slot (-?\d+)\]: restored slot (-?\d+)'s "
                      r"state: gen (\d+), (\d+) requests")


def state_run(d):
    """What each new worker says it restored (its stdout, in memsup's
    output): restores, restores of another slot's state, and breaks in a
    slot's chain of generations (slot k's n-th restore must hold gen n:
    each worker saves the gen it runs as, one more than it restored)."""
    r = {"restores": 0, "wrong_slot": 0, "gen_breaks": 0, "unreadable": 0}
    last = {}
    for name in sorted(os.listdir(d)):
        if not re.fullmatch(r"memsup(?:\.\d+)?\.out", name):
            continue
        with open(os.path.join(d, name), errors="replace") as f:
            for line in f:
                if "state unreadable" in line or "state corrupt" in line:
                    r["unreadable"] += 1
                m = RESTORED.search(line)
                if not m:
                    continue
                slot, saved_by, gen = int(m.group(2)), int(m.group(3)), int(m.group(4))
                if name != "memsup.out":  # memsup-sep: one memsup per slot
                    slot = saved_by = int(name.split(".")[1]) if saved_by == slot else -2
                r["restores"] += 1
                if saved_by != slot:
                    r["wrong_slot"] += 1
                if gen != last.get(slot, 0) + 1:
                    r["gen_breaks"] += 1
                last[slot] = gen
    return r


LIFE = re.compile(r"httpleak\[pid (\d+) slot (-?\d+)(?: gen \d+)?\]: "
                  r"(serving|stopping) at (\d+\.\d+)")
AFTER_READY_S = 0.25


def restart_windows(d):
    """[a worker told to stop, its slot's next worker serving + 0.25 s),
    from the workers' own lines: the same definition under memsup and PM2
    (the 0.25 s covers the reconnections that follow)."""
    ev = {}
    for name in sorted(os.listdir(d)):
        m = re.fullmatch(r"(?:memsup(?:\.(\d+))?\.out|pm2-worker\.out)", name)
        if not m:
            continue
        with open(os.path.join(d, name), errors="replace") as f:
            for line in f:
                x = LIFE.search(line)
                if x:
                    slot = int(m.group(1)) if m.group(1) else int(x.group(2))
                    ev.setdefault(slot, []).append((float(x.group(4)), x.group(3)))
    win = []
    for slot, es in ev.items():
        es.sort()
        for i, (t, kind) in enumerate(es):
            if kind != "stopping":
                continue
            nxt = next((u for u, k in es[i + 1:] if k == "serving"), None)
            win.append((t, (nxt if nxt is not None else t + 0.75) + AFTER_READY_S))
    return sorted(win)


def pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q / 100.0 * len(xs)))]


def probe_run(d):
    """The probe's requests sent inside a restart window and outside."""
    try:
        with open(os.path.join(d, "probe.txt")) as f:
            recs = [line.split() for line in f]
    except OSError:
        return None
    if not recs:
        return None
    t0 = min(float(r[0]) for r in recs)
    t1 = max(float(r[0]) for r in recs)
    # Windows while the probe ran: not the stop of the whole pool after it.
    win = [(a, b) for a, b in restart_windows(d) if a < t1 and b > t0]
    inside, outside = [], []
    err_in = err_out = 0
    for t, lat, outcome in recs:
        t = float(t)
        hit = any(a <= t < b for a, b in win)  # few windows: fine
        ok = outcome.isdigit() and 200 <= int(outcome) < 300
        if hit:
            inside.append(float(lat))
            err_in += not ok
        else:
            outside.append(float(lat))
            err_out += not ok
    return {"windows": len(win), "win_s": sum(b - a for a, b in win),
            "n_in": len(inside), "n_out": len(outside),
            "err_in": err_in, "err_out": err_out,
            "p50_in": pct(inside, 50), "p99_in": pct(inside, 99),
            "max_in": max(inside) if inside else None,
            "p50_out": pct(outside, 50), "p99_out": pct(outside, 99),
            "max_out": max(outside) if outside else None}


def conns_run(d):
    """Established connections per worker, counted half-way (ss)."""
    per = {}
    try:
        with open(os.path.join(d, "conns-mid.txt")) as f:
            for line in f:
                m = re.search(r"pid=(\d+)", line)
                if m:
                    per[m.group(1)] = per.get(m.group(1), 0) + 1
    except OSError:
        return None
    return sorted(per.values())


def stats_run(d):
    """Which workers answered /stats after the load, and whether any
    holds another slot's state."""
    seen = {}
    try:
        with open(os.path.join(d, "stats.jsonl")) as f:
            for line in f:
                try:
                    s = json.loads(line)
                except ValueError:
                    continue
                seen[s["pid"]] = s
    except OSError:
        pass
    wrong = [s for s in seen.values() if s.get("restored_slot") is not None
             and s.get("restored_slot") != s.get("slot")]
    return {"pids": len(seen), "wrong_state": len(wrong),
            "slots": sorted({s.get("slot") for s in seen.values()
                             if s.get("slot") is not None}),
            "max_gen": max((s.get("gen", 0) for s in seen.values()), default=0)}


def med(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return statistics.median(xs), min(xs), max(xs)


def fmt(t, unit="", nd=0):
    if t is None:
        return "–"
    m, lo, hi = t
    f = "{:,.%df}" % nd
    if lo == hi:
        return f.format(m) + unit
    return "%s%s [%s–%s]" % (f.format(m), unit, f.format(lo), f.format(hi))


LABEL = {
    "memsup-base": "memsup --workers, no restarts (limit 64G)",
    "memsup": "memsup --workers, memory restarts",
    "memsup-sep": "separate memsup per worker (no pool), memory restarts",
    "memsup-sep-base": "separate memsup per worker (no pool), no restarts",
    "pm2-base": "PM2 -i, no restarts (max-memory-restart 64G)",
    "pm2": "PM2 -i, max-memory-restart",
    "pm2-30s": "PM2 -i, max-memory-restart, default 30 s interval",
}


def main():
    data, outp = sys.argv[1], sys.argv[2]
    p = params(data)
    configs = p.get("configs", "").split()
    rows = {}
    for cfg in configs:
        cdir = os.path.join(data, cfg)
        if not os.path.isdir(cdir):
            continue
        reps = []
        for rep in sorted(os.listdir(cdir), key=lambda s: int(s)):
            d = os.path.join(cdir, rep)
            if os.path.exists(os.path.join(d, "skipped")):
                with open(os.path.join(d, "skipped")) as f:
                    rows[cfg] = {"skipped": f.read().strip()}
                reps = None
                break
            w = wrk_json(d)
            if w is None:
                continue
            sup = pm2_run(d) if cfg.startswith("pm2") else memsup_run(d)
            reps.append({"wrk": w, "sup": sup, "stats": stats_run(d),
                         "state": state_run(d), "probe": probe_run(d),
                         "conns": conns_run(d)})
        if reps:
            rows[cfg] = {"reps": reps}

    def col(cfg, f):
        return [f(r) for r in rows[cfg]["reps"]]

    md = []
    md.append("| configuration | runs | requests | requests/s | non-2xx (status ≥ 400) "
              "| socket errors connect / read / write / timeout | memory restarts "
              "(limit + early) | other restarts (crash) | p50 (ms) | p99 (ms) "
              "| p99.9 (ms) | max (ms) | largest worker at a restart (MiB; memsup: "
              "footprint / RSS, PM2: RSS) |")
    md.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for cfg in configs:
        if cfg not in rows:
            continue
        if "skipped" in rows[cfg]:
            md.append("| %s | not measured: %s |" % (LABEL.get(cfg, cfg),
                                                     rows[cfg]["skipped"]))
            continue
        n = len(rows[cfg]["reps"])
        W = lambda k: col(cfg, lambda r: r["wrk"][k])  # noqa: E731
        S = lambda k: col(cfg, lambda r: r["sup"].get(k))  # noqa: E731
        rps = col(cfg, lambda r: r["wrk"]["requests"] /
                  (r["wrk"]["duration_us"] / 1e6))
        mem = col(cfg, lambda r: r["sup"]["limit"] + r["sup"]["early"])
        early = S("early")
        errs = "%s / %s / %s / %s" % (fmt(med(W("connect"))), fmt(med(W("read"))),
                                      fmt(med(W("write"))), fmt(med(W("timeout"))))
        memtxt = fmt(med(mem))
        if not cfg.startswith("pm2") and any(early):
            memtxt += " (early %s)" % fmt(med(early))
        peak = med([r["sup"].get("peak") / 2**20 if r["sup"].get("peak") else None
                    for r in rows[cfg]["reps"]])
        peak_rss = med([r["sup"].get("peak_rss") / 2**20
                        if r["sup"].get("peak_rss") else None
                        for r in rows[cfg]["reps"]])
        peaktxt = fmt(peak, nd=0)
        if peak_rss is not None:  # memsup: its footprint (the metric), then RSS
            peaktxt += " / " + fmt(peak_rss, nd=0)
        md.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            LABEL.get(cfg, cfg), n, fmt(med(W("requests"))), fmt(med(rps)),
            fmt(med(W("status"))), errs, memtxt, fmt(med(S("crash"))),
            fmt(med([x / 1000 for x in W("p50_us")]), nd=2),
            fmt(med([x / 1000 for x in W("p99_us")]), nd=2),
            fmt(med([x / 1000 for x in W("p999_us")]), nd=2),
            fmt(med([x / 1000 for x in W("max_us")]), nd=1), peaktxt))

    # Ratios: each supervisor against its own no-restart run.
    ratio = []
    for with_r, base in (("memsup", "memsup-base"), ("memsup-sep", "memsup-sep-base"),
                         ("pm2", "pm2-base"), ("pm2-30s", "pm2-base")):
        if "reps" not in rows.get(with_r, {}) or "reps" not in rows.get(base, {}):
            continue
        parts = []
        for k, name in (("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9")):
            a = med(col(with_r, lambda r: r["wrk"][k]))[0]
            b = med(col(base, lambda r: r["wrk"][k]))[0]
            parts.append("%s %.2f×" % (name, a / b if b else float("nan")))
        a = med(col(with_r, lambda r: r["wrk"]["requests"]))[0]
        b = med(col(base, lambda r: r["wrk"]["requests"]))[0]
        parts.append("requests %.2f×" % (a / b if b else float("nan")))
        ratio.append("- %s vs %s (medians): %s" % (with_r, base, ", ".join(parts)))

    # The probe: latency by time, inside restart windows and outside.
    pr = []
    for cfg in configs:
        if "reps" not in rows.get(cfg, {}):
            continue
        reps = [r for r in rows[cfg]["reps"] if r["probe"]]
        if not reps:
            continue
        P = lambda k: [r["probe"][k] for r in reps]  # noqa: E731
        ms = lambda k: med([x / 1000 if x is not None else None  # noqa: E731
                            for x in P(k)])
        spread = ["%d:%s" % (len(r["conns"]), "/".join(map(str, r["conns"])))
                  for r in reps if r["conns"] is not None]
        pr.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            LABEL.get(cfg, cfg), fmt(med(P("windows"))), fmt(med(P("win_s")), nd=1),
            fmt(med(P("n_in"))), fmt(med(P("err_in"))), fmt(ms("p50_in"), nd=2),
            fmt(ms("p99_in"), nd=2), fmt(ms("max_in"), nd=1),
            fmt(med(P("err_out"))), fmt(ms("p50_out"), nd=2),
            fmt(ms("p99_out"), nd=2), "; ".join(spread) or "–"))

    # The pool's own checks, from memsup's log and the workers' /stats.
    pool = []
    for cfg in configs:
        if "reps" not in rows.get(cfg, {}) or cfg.startswith("pm2"):
            continue
        for i, r in enumerate(rows[cfg]["reps"], 1):
            s, st = r["sup"], r["state"]
            dt = med(s["downtime_ms"])
            pool.append(
                "| %s | %d | %d | %d | %d | %s | %s | %d | %s | %d | %d | %s | %d / %d / %d | %s |" % (
                    cfg, i, s["limit"], s["early"], s["crash"], s["wait"],
                    s["ceiling"], s["hold"], s["waited_max_s"], s["max_down"],
                    s["overlapping"], fmt(dt, nd=1), st["restores"],
                    st["wrong_slot"], st["gen_breaks"],
                    " ".join(s["exit"]) or "–"))
    pm2rows = []
    for cfg in configs:
        if "reps" not in rows.get(cfg, {}) or not cfg.startswith("pm2"):
            continue
        for i, r in enumerate(rows[cfg]["reps"], 1):
            s = r["sup"]
            pm2rows.append("| %s | %d | %d | %d | %d | %s |" % (
                cfg, i, s["restarts"], s["limit"], s["crash"],
                s.get("online_at_end", "?")))

    out = []
    out.append("Run of `bash bench/pool/run` on %s (memsup %s, commit %s), %s s "
               "of load per run, %s repetitions, configurations interleaved "
               "within each repetition." % (p.get("date"), p.get("memsup"),
                                            p.get("memsup_commit"), p.get("duration"),
                                            p.get("reps")))
    out.append("")
    out.append("Machine: %s, %s CPUs, %s GiB, kernel %s; wrk: %s; PM2 %s on node %s. "
               "Load average before %s, after %s." % (
                   p.get("cpu"), p.get("nproc"), p.get("mem_gib"), p.get("kernel"),
                   p.get("wrk"), p.get("pm2"), p.get("node"),
                   p.get("loadavg_before"), p.get("loadavg_after")))
    out.append("")
    out.append("Load: `wrk -t %s -c %s -d %ss --timeout %s --latency -s "
               "bench/pool/wrk-report.lua`, GET / on keep-alive connections; "
               "%s workers, each leaking %s bytes per request; limit %s per "
               "worker (footprint for memsup, RSS for PM2, PM2_WORKER_INTERVAL=%s ms)." % (
                   p.get("wrk_threads"), p.get("wrk_conns"), p.get("duration"),
                   p.get("wrk_timeout"), p.get("workers"), p.get("leak"),
                   p.get("limit"), p.get("pm2_interval_ms")))
    out.append("")
    out.extend(md)
    out.append("")
    out.extend(ratio)
    if pr:
        out.append("")
        out.append("Latency by time, from the probe (%s connections beside wrk, one "
                   "GET / every %s µs each, wall-clock send times): requests sent "
                   "inside a *restart window* (a worker told to stop → the next "
                   "worker of its slot serving + %.2f s, from the workers' own "
                   "lines, the same rule for memsup and PM2) and outside.  The "
                   "last column is the wrk connections per worker half-way "
                   "through each run (workers: counts)." % (
                       p.get("probe_conns"), p.get("probe_gap_us"), AFTER_READY_S))
        out.append("")
        out.append("| configuration | restart windows | in windows (s) | probe requests "
                   "in windows | failed in | p50 in (ms) | p99 in (ms) | max in (ms) "
                   "| failed outside | p50 outside (ms) | p99 outside (ms) "
                   "| wrk connections per worker |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        out.extend(pr)
    if pool:
        out.append("")
        out.append("memsup per run, from its restart log and what each new worker "
                   "printed on restore: *hold* counts `hold` events (a restart "
                   "judged not to help, memory restarts of that slot held off); "
                   "*max wait* the longest `waited_s`; *max down* the most slots "
                   "down for memory at one instant (decision → new worker ready, "
                   "`downtime_ms`), *overlapping* the restarts whose down time "
                   "overlapped another slot's; *restores / other slot's / gen "
                   "breaks*: states restored, of them saved by another slot, and "
                   "breaks in a slot's chain of generations.")
        out.append("")
        out.append("| config | rep | limit restarts | early | crash | wait events "
                   "| ceiling | hold | max wait (s) | max down | overlapping "
                   "| downtime ms | restores / other slot's / gen breaks | memsup exit |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        out.extend(pool)
    if pm2rows:
        out.append("")
        out.append("PM2 per run: restarts from `pm2 jlist` (restart_time), memory "
                   "restarts from pm2.log (\"exceeds --max-memory-restart\").")
        out.append("")
        out.append("| config | rep | restarts | memory | other | online at end |")
        out.append("|---|---|---|---|---|---|")
        out.extend(pm2rows)
    with open(outp, "w") as f:
        f.write("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
