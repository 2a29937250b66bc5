#!/usr/bin/env bash
# Redis's own ceiling on this machine for what a durable notify costs it: `redis-benchmark -P 16`
# running Herald's notify script (EVALSHA, with the keys and arguments Herald passes), and, for
# scale, plain XADD and PUBLISH. Prints one JSON line (and appends it to --out).
#
#   bench/redis_ceiling.sh [--out FILE] [--requests N] [--clients C] [--keyspace K] [--threads T]
#
# The script is read from src/engine/redis/redis_engine.cpp (kNotifyScript), so it is the one the
# herald being measured runs. Its KEYS are herald:{cid}:last, :inbox, :route, :idem and its ARGV
# maxlen, data, expires_ms, ts_ms, key_ttl_ms, idem key (empty: no idempotency key), idem ttl, this
# instance, client id. Client ids vary with redis-benchmark's __rand_int__ over --keyspace; every
# client has a route naming another instance, so each call also PUBLISHes, as a notify to a client
# on another instance does (redis-benchmark draws each __rand_int__ on its own, so the four keys
# of one call belong to different clients: the same commands, on as many keys).
# Starts its own redis-server on a free loopback port and stops it; bounded in time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=""
requests=200000
clients=50
keyspace=10000
threads=""
while (($#)); do
  case $1 in
    --out) out=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --keyspace) keyspace=$2; shift 2 ;;
    --threads) threads="--threads $2"; shift 2 ;;
    *) echo "redis_ceiling: unknown argument $1" >&2; exit 2 ;;
  esac
done
for c in redis-server redis-cli redis-benchmark; do
  command -v "$c" >/dev/null || { echo "redis_ceiling: $c is needed (apt: redis-server, redis-tools)" >&2; exit 2; }
done

src="$root/src/engine/redis/redis_engine.cpp"
script=$(sed -n '/kNotifyScript = R"lua(/,/^)lua";/p' "$src" | sed '1d;$d')
[[ -n $script ]] || { echo "redis_ceiling: kNotifyScript not found in $src" >&2; exit 2; }
nargs=$(grep -o 'ARGV\[[0-9]*\]' <<<"$script" | tr -dc '0-9\n' | sort -n | tail -1)
if [[ $nargs != 9 ]]; then
  echo "redis_ceiling: the notify script now takes $nargs ARGV (this tool passes 9): update bench/redis_ceiling.sh" >&2
  exit 2
fi

work=$(mktemp -d /tmp/herald-ceiling.XXXXXX)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize no --logfile "$work/redis.log" &
rpid=$!
trap 'kill $rpid 2>/dev/null; wait $rpid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
cli() { redis-cli -p "$port" "$@"; }

sha=$(cli SCRIPT LOAD "$script")
# Every client has a route on another instance (so the script publishes), as redis-benchmark's
# __rand_int__ prints it: 12 digits.
awk -v n="$keyspace" 'BEGIN { for (i = 0; i < n; ++i) printf "SET herald:{rc-%012d}:route inst-b:1.%d\n", i, i }' |
  cli --pipe >/dev/null
now_ms=$(date +%s%3N)
data='{"c":4711,"s":42,"t":1764866400000000}'

# CPU seconds redis-server has used so far.
rcpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$rpid/stat"; }
# bench NAME ARGS...: "requests/s busy" of one redis-benchmark run (-P 16), from its CSV line;
# busy = redis-server's CPU seconds / wall seconds over the run (near 1: Redis itself is the limit;
# well below: the benchmark client or a busy machine is).
bench() {
  local name=$1
  shift
  local line c0 c1 t0 t1
  c0=$(rcpu); t0=$(date +%s.%N)
  line=$(timeout 120 redis-benchmark -h 127.0.0.1 -p "$port" -P 16 -c "$clients" -n "$requests" -r "$keyspace" $threads \
    --csv "$@" 2>/dev/null | grep -v '^"test"' | tail -1)
  c1=$(rcpu); t1=$(date +%s.%N)
  local rps busy
  rps=$(awk -F'","' '{print $2}' <<<"$line" | tr -d '"')
  busy=$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.2f", (b - a) / (e - s) }')
  echo "redis_ceiling: $name: ${rps:-?} requests/s, redis-server busy $busy of a core" >&2
  echo "${rps:-0} $busy"
}

echo "redis_ceiling: redis-benchmark -P 16, $clients clients, $requests requests each, on 127.0.0.1:$port" >&2
notify=$(bench notify_script EVALSHA "$sha" 4 \
  'herald:{rc-__rand_int__}:last' 'herald:{rc-__rand_int__}:inbox' 'herald:{rc-__rand_int__}:route' \
  'herald:{rc-__rand_int__}:idem' 10000 "$data" $((now_ms + 86400000)) "$now_ms" 86400000 '' 86400000 \
  inst-a 'rc-__rand_int__')
xadd=$(bench xadd XADD 'herald:{rc-__rand_int__}:inbox' MAXLEN 10000 '*' d "$data" x $((now_ms + 86400000)) t "$now_ms")
publish=$(bench publish PUBLISH 'herald:inst:{inst-b}' "d
rc-1
1.1
$now_ms-0
0-0
$now_ms
$data")
inbox_entries=$(cli XLEN 'herald:{rc-000000000001}:inbox')
version=$(redis-server --version | grep -o 'v=[0-9.]*' | cut -d= -f2)

line=$(/usr/bin/python3 - $notify $xadd $publish "$version" "$requests" "$clients" "$keyspace" "$inbox_entries" <<'EOF'
import json, sys, datetime
n, nb, x, xb, p, pb, version, requests, clients, keyspace, entries = sys.argv[1:]
f = lambda v: round(float(v or 0), 1)
print(json.dumps({
    "scenario": "redis_ceiling",
    "at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "params": {"pipeline": 16, "clients": int(clients), "requests": int(requests), "keyspace": int(keyspace),
               "redis_version": version, "script": "kNotifyScript of src/engine/redis/redis_engine.cpp"},
    "figures": {"notify_script_per_s": f(n), "xadd_per_s": f(x), "publish_per_s": f(p),
                "redis_busy": {"notify_script": float(nb), "xadd": float(xb), "publish": float(pb)},
                "sample_inbox_entries": int(entries or 0)},
    "ok": float(n or 0) > 0}))
EOF
)
echo "$line"
if [[ -n $out ]]; then mkdir -p "$(dirname "$out")"; echo "$line" >>"$out"; fi
