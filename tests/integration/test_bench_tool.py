"""herald-bench itself, at small sizes: the storm scenario (redis-server + 3 heralds, SIGKILL of the
one holding every client, re-home with last_id), durable notify through 2 instances, and the
suite's summary of the targets. Skipped where herald-bench is not built (-DHERALD_BENCH=OFF)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from herald_it import herald_bin

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(os.path.dirname(herald_bin()), "bench", "herald-bench")
REDIS = os.environ.get("REDIS_SERVER") or shutil.which("redis-server") or ""

pytestmark = pytest.mark.skipif(not os.access(BENCH, os.X_OK) or not REDIS,
                                reason="herald-bench not built, or no redis-server")


def bench(tmp_path, *args, timeout=50):
    out = tmp_path / "out.jsonl"
    p = subprocess.run([BENCH, *args, "--herald", herald_bin(), "--redis-server", REDIS, "--out", str(out),
                        "--timeout", str(timeout - 10), "--quiet"],
                       capture_output=True, text=True, timeout=timeout)
    lines = out.read_text().splitlines() if out.exists() else []
    assert lines, f"no JSON line; exit {p.returncode}; stderr:\n{p.stderr[-2000:]}"
    return p.returncode, json.loads(lines[-1])


def test_storm_rehomes_every_client_with_every_pending_notification(tmp_path):
    code, r = bench(tmp_path, "storm", "--clients", "300", "--pending", "3", "--reconnect-jitter-ms", "100")
    assert r["problems"] == [] and r["ok"] is True and code == 0, r
    f, c = r["figures"], r["checks"]
    assert c["connections_lost_at_kill"] == 300 and c["not_rehomed"] == 0
    assert f["rehomed"] == 300
    assert f["pending_accepted"] == 900 and f["delivered"] == 300 + 900
    assert r["lost"] == 0 and r["duplicates"] == 0 and c["out_of_order"] == 0
    assert 0 < f["rehome_seconds"] <= f["storm_seconds"]
    # Both survivors took clients over, and the dead instance's clients resumed after last_id:
    # each survivor delivered only what was posted after the kill (plus nothing twice).
    m = r["herald"]["metrics"]
    assert m["b"]["herald_connections"] > 0 and m["c"]["herald_connections"] > 0
    assert m["b"]["herald_connections"] + m["c"]["herald_connections"] == 300


def test_durable_notify_through_two_instances(tmp_path):
    code, r = bench(tmp_path, "notify", "--engine", "redis", "--instances", "2", "--clients", "20", "--count", "400")
    assert r["ok"] is True and code == 0, r
    assert r["herald"]["engine"] == "redis" and r["herald"]["instances"] == 2
    assert r["figures"]["delivered"] == 400 and r["lost"] == 0
    assert "redis_s" in r["figures"]["cpu"]


def test_instances_need_the_redis_engine(tmp_path):
    code, r = bench(tmp_path, "notify", "--instances", "2", "--clients", "2", "--count", "2")
    assert code == 1 and r["ok"] is False
    assert any("--engine redis" in p for p in r["problems"])


def test_summary_checks_the_targets(tmp_path):
    suite = tmp_path / "suite.jsonl"
    rows = [
        {"label": "notify-redis-max", "scenario": "notify", "figures": {"deliveries_per_s": 50000.0}, "lost": 0,
         "duplicates": 0, "ok": True},
        {"label": "notify-redis-rate-50", "scenario": "notify", "params": {"rate": 25000},
         "figures": {"latency": {"p99_ms": 7.5}}, "lost": 0, "duplicates": 0, "ok": True},
        {"label": "redis-ceiling", "scenario": "redis_ceiling", "figures": {"notify_script_per_s": 80000.0}},
        {"label": "compare", "system": "baseline", "scenario": "notify", "rate": 0, "deliveries_per_s": 9000.0},
        {"label": "compare", "system": "herald", "scenario": "notify", "rate": 0, "deliveries_per_s": 45000.0},
        {"label": "storm", "scenario": "storm", "figures": {"rehomed": 15000, "storm_seconds": 4.2}, "lost": 2,
         "duplicates": 0, "ok": False},
    ]
    suite.write_text("".join(json.dumps(r) + "\n" for r in rows))
    p = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "summary.py"), str(suite)],
                       capture_output=True, text=True, timeout=20, check=True)
    s = json.loads(p.stdout)
    t, met = s["targets"], s["met"]
    assert t["vs_baseline"] == 5.0 and met["vs_baseline >= 5"] is True
    assert t["vs_redis_ceiling"] == 0.62 and met["vs_redis_ceiling >= 0.5"] is True
    assert met["p99 <= 5 ms at half max"] is False
    assert met["storm of 15k <= 10 s"] is True
    assert t["lost_total"] == 2 and met["zero lost"] is False
    assert s["failed_scenarios"] == ["storm"] and s["ok"] is False
    assert met["replay >= 200k/s"] is None  # not run
