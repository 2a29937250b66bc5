#!/usr/bin/env bash
# make bench-compare: the same scenarios on Herald and on the baseline of the design
# it replaces (bench/baseline/server.mjs: Node.js ws + ioredis), in one run, side by side.
#
# Starts redis-server on a free loopback port, 2 baseline instances and 2 herald instances
# (--engine redis), then runs herald-bench `notify` with the clients on instance 2 and the service
# API on instance 1 of each system:
#   baseline       --protocol legacy (hello {"clientId"}, bare data frames, POST /notify)
#   herald         herald's own protocol (envelopes with ids, acks, POST /v1/notifications)
#   herald-legacy  herald spoken to exactly like the baseline (its legacy hello and POST /notify)
# Prints one JSON line per system and scenario and one with the ratios (herald / baseline) per
# scenario, writes them to
# build/bench/compare.jsonl (the bench's full lines go to build/bench/compare-full.jsonl), and
# stops everything it started. Loopback only; every step is bounded in time.
#
# Environment: HERALD, BENCH (binaries; default build/herald, build/bench/herald-bench),
# SCENARIOS ("notify rate idle replay"): notify = flat out (COUNT, RATE = 0), rate = notify at
# FIXED_RATE (2000/s) for 3 s, idle = IDLE (10000) connections held (RSS of the instance holding
# them), replay = BACKLOG (100) per client stored while offline, then connect;
# CLIENTS (100), COUNT (20000), RATE (0 = flat out), HTTP_CONNECTIONS (32), TIMEOUT (120 s per run),
# OUT (build/bench/compare.jsonl).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/bench/baseline"
HERALD=${HERALD:-$root/build/herald}
BENCH=${BENCH:-$root/build/bench/herald-bench}
CLIENTS=${CLIENTS:-100}
COUNT=${COUNT:-20000}
RATE=${RATE:-0}
HTTP_CONNECTIONS=${HTTP_CONNECTIONS:-32}
TIMEOUT=${TIMEOUT:-120}
SCENARIOS=${SCENARIOS:-notify rate idle replay}
FIXED_RATE=${FIXED_RATE:-2000}
export FIXED_RATE
IDLE=${IDLE:-10000}
BACKLOG=${BACKLOG:-100}
outdir=$(dirname "$BENCH")
out=${OUT:-$outdir/compare.jsonl}
full="$outdir/compare-full.jsonl"

for b in "$HERALD" "$BENCH"; do [[ -x $b ]] || { echo "compare: $b not built (make build)" >&2; exit 1; }; done
command -v node >/dev/null || { echo "compare: node (20+) is needed for the baseline" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "compare: redis-server is needed" >&2; exit 1; }
if [[ ! -d $here/node_modules/ws || ! -d $here/node_modules/ioredis ]]; then
  (cd "$here" && npm ci --no-audit --no-fund --silent) || { echo "compare: npm ci failed in bench/baseline" >&2; exit 1; }
fi

work=$(mktemp -d /tmp/herald-compare.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# Waits for "listening on 127.0.0.1:<port>" in a log; prints host:port.
listen_addr() {
  local log=$1 pid=$2
  for _ in $(seq 100); do
    local a
    a=$(grep -oE 'listening on 127\.0\.0\.1:[0-9]+' "$log" 2>/dev/null | head -1 | sed 's/listening on //') || true
    if [[ -n $a ]]; then echo "$a"; return 0; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "compare: no listen address in $log:" >&2
  tail -5 "$log" >&2
  return 1
}

rport=$(free_port)
redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no --daemonize no \
  --logfile "$work/redis.log" &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$rport" ping >/dev/null || { echo "compare: redis-server did not start" >&2; exit 1; }
url="redis://127.0.0.1:$rport"
echo "compare: redis-server on 127.0.0.1:$rport" >&2

# Started in this shell (not in $(...)), so that cleanup knows every pid.
start_baseline() {
  node "$here/server.mjs" --port 0 --redis-url "$url" --instance-id "$1" >"$work/$1.log" 2>&1 &
  pids+=($!)
  echo $! >"$work/$1.pid"
}
start_herald() {
  # The per-address limits are off, as for the heralds herald-bench starts: the bench opens
  # thousands of connections from each loopback source address (the baseline has no such limits).
  "$HERALD" --listen 127.0.0.1:0 --engine redis --redis-url "$url" --instance-id "$1" --threads 2 \
    --max-connections-per-ip 0 --connect-rate-per-ip 0 --hello-rate 0 \
    >"$work/$1.log" 2>&1 &
  pids+=($!)
  echo $! >"$work/$1.pid"
}
# CPU seconds (user + system) of the given processes, summed.
cpu_of() {
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  awk -v t="$t" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", t / hz}'
}

start_baseline baseline-1; start_baseline baseline-2
start_herald herald-1; start_herald herald-2
b1=$(listen_addr "$work/baseline-1.log" "$(cat "$work/baseline-1.pid")")
b2=$(listen_addr "$work/baseline-2.log" "$(cat "$work/baseline-2.pid")")
h1=$(listen_addr "$work/herald-1.log" "$(cat "$work/herald-1.pid")")
h2=$(listen_addr "$work/herald-2.log" "$(cat "$work/herald-2.pid")")
bpids=("$(cat "$work/baseline-1.pid")" "$(cat "$work/baseline-2.pid")")
hpids=("$(cat "$work/herald-1.pid")" "$(cat "$work/herald-2.pid")")
rpid=${pids[0]}
echo "compare: baseline on $b1 $b2, herald on $h1 $h2" >&2

: >"$full"
: >"$out"
# run SYSTEM SCENARIO API CLIENTS_ON PROTOCOL SERVER_PIDS... -- herald-bench args
run() {
  local name=$1 scen=$2 api=$3 target=$4 proto=$5
  shift 5
  local spids=()
  while (($#)) && [[ $1 != -- ]]; do spids+=("$1"); shift; done
  shift
  redis-cli -p "$rport" flushall >/dev/null
  local s0 r0 s1 r1
  s0=$(cpu_of "${spids[@]}"); r0=$(cpu_of "$rpid")
  echo "compare: $name: $scen $* (clients on $target, API on $api)" >&2
  local raw="$work/$name-$scen.jsonl"
  local pidlist
  pidlist=$(IFS=,; echo "${spids[*]}")
  timeout -k 5 $((TIMEOUT + 60)) "$BENCH" "$scen" --protocol "$proto" --target "$target" --api-target "$api" \
    --server-pids "$pidlist" --timeout "$TIMEOUT" --drain 10 --label "compare $name $scen" --out "$raw" --quiet \
    "$@" >/dev/null || true
  s1=$(cpu_of "${spids[@]}"); r1=$(cpu_of "$rpid")
  [[ -s $raw ]] || echo '{}' >"$raw"
  node -e '
    const fs = require("fs");
    const [name, scen, raw, scpu, rcpu] = process.argv.slice(1);
    const r = JSON.parse(fs.readFileSync(raw, "utf8").trim().split("\n").pop() || "{}");
    const f = r.figures || {}, c = r.checks || {}, l = f.latency || {}, p = r.params || {};
    console.log(JSON.stringify({system: name, scenario: scen, protocol: p.protocol, ok: r.ok === true,
      clients: p.clients ?? p.connections, notifications: p.notifications, rate: p.rate,
      deliveries_per_s: f.deliveries_per_s, accepted_per_s: f.accepted_per_s,
      notifications_per_s: f.notifications_per_s, bytes_per_connection: f.bytes_per_connection,
      connects_per_s: f.connects_per_s,
      p50_ms: l.p50_ms, p99_ms: l.p99_ms, p999_ms: l.p999_ms, max_ms: l.max_ms,
      api_p99_ms: (f.api_latency||{}).p99_ms, lost: c.lost, duplicates: c.duplicates,
      out_of_order: c.out_of_order, not_202: c.not_202,
      cpu: {...(f.cpu || {}), servers_s: +scpu, redis_s: +rcpu}, problems: r.problems}));
  ' "$name" "$scen" "$raw" "$(awk -v a="$s0" -v b="$s1" 'BEGIN{printf "%.2f", b - a}')" \
    "$(awk -v a="$r0" -v b="$r1" 'BEGIN{printf "%.2f", b - a}')" | tee -a "$out"
  cat "$raw" >>"$full"
}

# One scenario on each system, back to back.
for scen in $SCENARIOS; do
  case $scen in
    notify)
      args=(--clients "$CLIENTS" --count "$COUNT" --rate "$RATE" --http-connections "$HTTP_CONNECTIONS") ;;
    rate)
      args=(--clients "$CLIENTS" --count $((FIXED_RATE * 3)) --rate "$FIXED_RATE" --http-connections "$HTTP_CONNECTIONS") ;;
    idle)
      args=(--connections "$IDLE") ;;
    replay)
      args=(--clients "$CLIENTS" --backlog "$BACKLOG" --http-connections "$HTTP_CONNECTIONS") ;;
    *) echo "compare: unknown scenario $scen (notify, rate, idle, replay)" >&2; exit 2 ;;
  esac
  bench=$scen; [[ $scen == rate ]] && bench=notify
  # idle: the memory of the instance holding the clients; otherwise the CPU of both instances.
  if [[ $scen == idle ]]; then bp=("${bpids[1]}"); hp=("${hpids[1]}"); else bp=("${bpids[@]}"); hp=("${hpids[@]}"); fi
  run baseline "$bench" "$b1" "$b2" legacy "${bp[@]}" -- "${args[@]}"
  run herald "$bench" "$h1" "$h2" herald "${hp[@]}" -- "${args[@]}"
  [[ $scen == notify ]] && run herald-legacy "$bench" "$h1" "$h2" legacy "${hp[@]}" -- "${args[@]}"
  node -e '
    const fs = require("fs");
    const [path, scen] = process.argv.slice(1);
    const all = fs.readFileSync(path, "utf8").trim().split("\n").map(JSON.parse);
    const rows = Object.fromEntries(all.filter(r => r.system).map(r => [r.system + "/" + r.scenario + "/" + (r.rate || 0), r]));
    const key = (s) => s + "/" + (scen === "rate" ? "notify" : scen) + "/" + (scen === "rate" ? Number(process.env.FIXED_RATE) : 0);
    const b = rows[key("baseline")] || {};
    const ratio = (a, d) => (a && d ? +(a / d).toFixed(2) : null);
    const line = {ratios: "herald / baseline", scenario: scen, clients: b.clients, notifications: b.notifications};
    for (const s of ["herald", "herald-legacy"]) {
      const h = rows[key(s)];
      if (!h) continue;
      line[s] = {throughput: ratio(h.deliveries_per_s ?? h.notifications_per_s, b.deliveries_per_s ?? b.notifications_per_s),
                 p99: ratio(h.p99_ms, b.p99_ms), p50: ratio(h.p50_ms, b.p50_ms),
                 bytes_per_connection: ratio(h.bytes_per_connection, b.bytes_per_connection),
                 server_cpu: ratio((h.cpu || {}).servers_s, (b.cpu || {}).servers_s)};
    }
    line.all_ok = ["baseline", "herald", "herald-legacy"].map(key).filter(k => rows[k]).every(k => rows[k].ok);
    console.log(JSON.stringify(line));
  ' "$out" "$scen" | tee -a "$out"
done
echo "compare: lines in $out, the bench's full lines in $full" >&2
