#!/usr/bin/env python3
"""The suite's figures against the issue's targets, from the JSON lines of one `make bench` run.

    summary.py SUITE.jsonl           one JSON line ({"scenario": "summary", ...}) on stdout
    summary.py --text SUITE.jsonl    the same as a table for people

Only the standard library. A target whose scenario did not run shows null (and met: null).
"""
import datetime
import json
import sys


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    return rows


def get(row, path, default=None):
    v = row
    for k in path.split("."):
        v = v.get(k) if isinstance(v, dict) else None
    return default if v is None else v


def by_label(rows, label):
    found = [r for r in rows if r.get("label") == label]
    return found[-1] if found else {}


def summarise(rows):
    bench = [r for r in rows if "figures" in r and r.get("scenario") not in ("summary", "redis_ceiling")]
    notify = by_label(rows, "notify-redis-max")
    half = by_label(rows, "notify-redis-rate-50")
    ceiling = by_label(rows, "redis-ceiling")
    def compare_row(system):
        found = [r for r in rows if r.get("system") == system and r.get("scenario") == "notify" and not r.get("rate")]
        return found[-1] if found else {}
    # Herald against the baseline back to back in the comparison (same sizes, seconds apart).
    baseline, herald_cmp = compare_row("baseline"), compare_row("herald")
    idle_m = by_label(rows, "idle-memory-19000")
    idle_r = by_label(rows, "idle-redis-19000")
    idle_3 = by_label(rows, "idle-redis-57000")
    replay = by_label(rows, "replay-memory")
    storm = by_label(rows, "storm")
    churn = by_label(rows, "churn-memory")

    rate = get(notify, "figures.deliveries_per_s")
    base = baseline.get("deliveries_per_s")
    cmp_rate = herald_cmp.get("deliveries_per_s")
    ceil = get(ceiling, "figures.notify_script_per_s")

    def ratio(a, b):
        return round(a / b, 2) if a and b else None

    t = {
        "notify_2_instances_per_s": rate,
        "compare_herald_notify_per_s": cmp_rate,
        "baseline_notify_per_s": base,
        "vs_baseline": ratio(cmp_rate, base),
        "redis_busy_in_ceiling": get(ceiling, "figures.redis_busy.notify_script"),
        "p99_ms_at_half_max": get(half, "figures.latency.p99_ms"),
        "half_max_rate": get(half, "params.rate"),
        "send_lag_p99_ms_at_half_max": get(half, "figures.send_lag.p99_ms"),
        "p99_ms_from_write_at_half_max": get(half, "figures.latency_from_write.p99_ms"),
        "redis_ceiling_notify_script_per_s": ceil,
        "vs_redis_ceiling": ratio(rate, ceil),
        "idle_19000_memory_bytes_per_connection": get(idle_m, "figures.bytes_per_connection"),
        "idle_19000_redis_bytes_per_connection": get(idle_r, "figures.bytes_per_connection"),
        "idle_19000_held": get(idle_m, "figures.connections"),
        "idle_3_instances_held": get(idle_3, "figures.connections"),
        "idle_3_instances_bytes_per_connection": get(idle_3, "figures.bytes_per_connection"),
        "kernel_slab_bytes_per_connection_server_side": get(
            idle_m, "figures.kernel.slab_bytes_per_connection_server_side_estimate"),
        "replay_per_s": get(replay, "figures.notifications_per_s"),
        "storm_clients": get(storm, "figures.rehomed"),
        "storm_seconds": get(storm, "figures.storm_seconds"),
        "churn_connects_per_s": get(churn, "figures.connects_per_s"),
        "lost_total": sum(int(r.get("lost") or 0) for r in bench),
        "duplicates_total": sum(int(r.get("duplicates") or 0) for r in bench),
    }

    def at_least(v, x):
        return None if v is None else v >= x

    def at_most(v, x):
        return None if v is None else v <= x

    met = {
        "vs_baseline >= 5": at_least(t["vs_baseline"], 5),
        "p99 <= 5 ms at half max": at_most(t["p99_ms_at_half_max"], 5),
        "vs_redis_ceiling >= 0.5": at_least(t["vs_redis_ceiling"], 0.5),
        "19000 idle on one instance": at_least(t["idle_19000_held"], 19000),
        "57000 idle on three": at_least(t["idle_3_instances_held"], 57000),
        "user-space <= 1 KiB per idle connection (redis engine)": at_most(
            t["idle_19000_redis_bytes_per_connection"], 1024),
        "user-space <= 1 KiB per idle connection (memory engine)": at_most(
            t["idle_19000_memory_bytes_per_connection"], 1024),
        "replay >= 200k/s": at_least(t["replay_per_s"], 200000),
        "storm of 15k <= 10 s": None if t["storm_seconds"] is None else (
            t["storm_seconds"] <= 10 and (t["storm_clients"] or 0) >= 15000),
        "churn >= 5000/s": at_least(t["churn_connects_per_s"], 5000),
        "zero lost": t["lost_total"] == 0,
        "zero duplicates": t["duplicates_total"] == 0,
    }
    failed = [r.get("label") for r in bench if r.get("ok") is False]
    return {
        "scenario": "summary",
        "label": "summary",
        "at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "targets": t,
        "met": met,
        "scenarios": len(bench),
        "failed_scenarios": failed,
        "ok": not failed,
    }


def main(argv):
    text = "--text" in argv
    paths = [a for a in argv if a != "--text"]
    if len(paths) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    s = summarise(load(paths[0]))
    if not text:
        print(json.dumps(s))
        return 0
    t = s["targets"]

    def f(v, fmt="{:,.0f}"):
        return "-" if v is None else fmt.format(v)

    print("---- herald-bench summary ----")
    print(f"durable notify, 2 instances + 1 redis: {f(t['notify_2_instances_per_s'])}/s flat out; beside the baseline"
          f" (back to back): herald {f(t['compare_herald_notify_per_s'])}/s, baseline {f(t['baseline_notify_per_s'])}/s"
          f" -> {f(t['vs_baseline'], '{:.2f}')}x (target >= 5x)")
    print(f"redis ceiling (redis-benchmark -P 16, herald's notify script): {f(t['redis_ceiling_notify_script_per_s'])}/s"
          f" (redis-server busy {f(t['redis_busy_in_ceiling'], '{:.2f}')} of a core)"
          f" -> herald reaches {f(t['vs_redis_ceiling'], '{:.2f}')} of it (target >= 0.5)")
    print(f"p99 at half of herald's max ({f(t['half_max_rate'])}/s): {f(t['p99_ms_at_half_max'], '{:.2f}')} ms"
          f" (target <= 5); from when each request was written {f(t['p99_ms_from_write_at_half_max'], '{:.2f}')} ms"
          f" (the driver's own lateness: p99 {f(t['send_lag_p99_ms_at_half_max'], '{:.2f}')} ms)")
    print(f"idle 19000, one instance: {f(t['idle_19000_memory_bytes_per_connection'])} B/connection (memory engine),"
          f" {f(t['idle_19000_redis_bytes_per_connection'])} B (redis engine), user space; kernel slab ~"
          f"{f(t['kernel_slab_bytes_per_connection_server_side'])} B/connection server side")
    print(f"idle over three instances: {f(t['idle_3_instances_held'])} held, "
          f"{f(t['idle_3_instances_bytes_per_connection'])} B/connection")
    print(f"replay: {f(t['replay_per_s'])}/s (target >= 200k); churn: {f(t['churn_connects_per_s'])} connects/s"
          " (target >= 5000)")
    print(f"storm: {f(t['storm_clients'])} clients re-homed with all pending in {f(t['storm_seconds'], '{:.2f}')} s"
          " (target <= 10)")
    print(f"lost {t['lost_total']}, duplicates {t['duplicates_total']}; failed scenarios: "
          f"{', '.join(map(str, s['failed_scenarios'])) or 'none'}")
    print("targets met: " + ", ".join(f"{k}: {'yes' if v else 'no' if v is False else '-'}" for k, v in s["met"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
