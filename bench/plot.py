#!/usr/bin/env python3
"""Charts of one `make bench` run, drawn by gnuplot (Debian's gnuplot-nox) as SVG.

    plot.py SUITE.jsonl OUTDIR

Writes into OUTDIR:
  latency.svg   (and .png) notification latency p50/p99/p99.9 against the offered rate (durable notify,
                2 instances + 1 redis; the rates are 10..100% of the flat-out maximum of the run)
  memory.svg    herald RSS per idle connection against connections held, and the kernel's slab
                per connection (machine wide delta / 2: the server's side of a loopback pair)
  compare.svg   herald beside the baseline (Node ws + ioredis), same notify scenario, same run:
                deliveries/s, p99 latency, server CPU seconds per 10,000 notifications
and the .dat/.gp files gnuplot read. Only the standard library; skips a chart without data.
"""
import json
import os
import shutil
import subprocess
import sys



def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass
    return rows


def get(row, path):
    v = row
    for k in path.split("."):
        v = v.get(k) if isinstance(v, dict) else None
    return v


def gnuplot(outdir, name, script, size=(760, 440)):
    """Draws `script` (without terminal and output) as NAME.svg and NAME.png."""
    w, h = size
    terms = [("svg", f'set terminal svg size {w},{h} dynamic font "sans,13" background "#ffffff"'),
             ("png", f'set terminal pngcairo size {w},{h} font "sans,10" background "#ffffff"')]
    for ext, term in terms:
        gp = os.path.join(outdir, f"{name}.{ext}.gp")
        with open(gp, "w") as f:
            f.write(f'{term}\nset output "{name}.{ext}"\n{script}')
        subprocess.run(["gnuplot", os.path.basename(gp)], check=True, cwd=outdir, timeout=60)
    print(f"plot: {os.path.join(outdir, name)}.svg and .png", file=sys.stderr)


def latency(rows, outdir):
    pts = []
    for r in rows:
        label = r.get("label") or ""
        if label.startswith("notify-redis-rate-") and get(r, "figures.latency.p99_ms") is not None:
            pts.append((get(r, "params.rate"), get(r, "figures.latency"),
                        get(r, "figures.latency_from_write.p99_ms") or get(r, "figures.latency.p99_ms")))
    if not pts:
        return
    pts.sort(key=lambda p: p[0])
    with open(os.path.join(outdir, "latency.dat"), "w") as f:
        f.write("# offered_per_s p50_ms p99_ms p999_ms p99_from_write_ms\n")
        for rate, lat, w99 in pts:
            f.write(f"{rate:.0f} {max(lat['p50_ms'], 0.01)} {max(lat['p99_ms'], 0.01)} {max(lat['p999_ms'], 0.01)}"
                    f" {max(w99, 0.01)}\n")
    gnuplot(outdir, "latency", f"""set title "Durable notify, 2 heralds + 1 redis: latency (due time of the POST -> client) against offered rate"
set xlabel "offered notifications/s"
set ylabel "latency, ms (log)"
set logscale y
set grid
set key top left Left reverse
set format x "%.0s%c"
plot "latency.dat" using 1:2 with linespoints lw 2 pt 7 title "p50", \\
     "" using 1:3 with linespoints lw 2 pt 5 title "p99", \\
     "" using 1:4 with linespoints lw 2 pt 9 title "p99.9", \\
     "" using 1:5 with linespoints lw 1 dt 2 pt 4 title "p99 from the actual write (without the driver's lateness)"
""")


def memory(rows, outdir):
    pts = []
    for r in rows:
        label = r.get("label") or ""
        if r.get("scenario") == "idle" and label.startswith("idle-") and get(r, "figures.bytes_per_connection"):
            engine = "memory engine" if "memory" in label else (
                "redis engine, 3 instances" if (get(r, "params.instances") or 1) > 1 else "redis engine")
            pts.append((engine, get(r, "figures.connections"), get(r, "figures.bytes_per_connection"),
                        get(r, "figures.kernel.slab_bytes_per_connection_server_side_estimate")))
    if not pts:
        return
    series = []
    with open(os.path.join(outdir, "memory.dat"), "w") as f:
        for engine in ("memory engine", "redis engine", "redis engine, 3 instances"):
            sel = sorted(p for p in pts if p[0] == engine)
            if not sel:
                continue
            f.write(f"# {engine}: connections bytes_per_connection kernel_slab_server_side\n")
            for _, n, b, k in sel:
                f.write(f"{n} {b:.0f} {k or 0:.0f}\n")
            f.write("\n\n")
            series.append(engine)
    plots = []
    for i, engine in enumerate(series):
        plots.append(f'"memory.dat" index {i} using 1:2 with linespoints lw 2 pt 7 title "herald RSS, {engine}"')
    plots.append('"memory.dat" index 0 using 1:3 with linespoints lw 2 dt 2 pt 6 title "kernel slab, server side (est.)"')
    gnuplot(outdir, "memory", f"""set title "Memory per idle connection (hello said, welcome received)"
set xlabel "connections held"
set ylabel "bytes per connection"
set yrange [0:*]
set grid
set key top right
set format x "%.0s%c"
set arrow from graph 0, first 1024 to graph 1, first 1024 nohead dt 3 lc rgb "#888888"
set label "1 KiB" at graph 0.01, first 1024 offset 0,0.6 tc rgb "#888888"
plot {", ".join(plots)}
""")


def compare(rows, outdir):
    rs = [r for r in rows if r.get("system") in ("baseline", "herald", "herald-legacy")
          and r.get("scenario") == "notify" and not r.get("rate")]
    latest = {}
    for r in rs:
        latest[r["system"]] = r
    if "baseline" not in latest or "herald" not in latest:
        return
    systems = [s for s in ("baseline", "herald", "herald-legacy") if s in latest]
    with open(os.path.join(outdir, "compare.dat"), "w") as f:
        f.write("# system deliveries_per_s p99_ms cpu_s_per_10k\n")
        for s in systems:
            r = latest[s]
            n = r.get("notifications") or 1
            cpu = (r.get("cpu") or {}).get("servers_s") or 0
            name = {"herald-legacy": "herald\\n(legacy wire)"}.get(s, s)
            f.write(f'"{name}" {r.get("deliveries_per_s") or 0:.0f} {r.get("p99_ms") or 0} {cpu * 10000 / n:.3f}\n')
    gnuplot(outdir, "compare", f"""set multiplot layout 1,3 title "Durable notify, 2 instances + 1 redis each, same run: herald beside the baseline (Node ws + ioredis)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set yrange [0:*]
set grid ytics
unset key
set xtics scale 0
set bmargin 4
set title "deliveries/s (higher is better)"
plot "compare.dat" using 2:xtic(1) lc rgb "#3b7dd8"
set title "p99 latency, ms (lower is better)"
plot "compare.dat" using 3:xtic(1) lc rgb "#d8833b"
set title "server CPU s per 10k notifications"
plot "compare.dat" using 4:xtic(1) lc rgb "#5aa469"
unset multiplot
""", size=(900, 380))


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    if not shutil.which("gnuplot"):
        print("plot: gnuplot is not installed (apt: gnuplot-nox; scripts/install-deps.sh)", file=sys.stderr)
        return 1
    rows = load(argv[0])
    os.makedirs(argv[1], exist_ok=True)
    latency(rows, argv[1])
    memory(rows, argv[1])
    compare(rows, argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
