#!/usr/bin/env bash
# Relay benchmark: seed direct, seed relay and concurrent registry pulls over rate-capped links.
#
# Builds a private network: one "switch" namespace holding a bridge, and one namespace per
# host (the coordinator, a registry, N agents), each joined to the bridge by a veth pair whose
# two ends are both capped with `tc tbf` at RATE (so every host has RATE up and RATE down).
# Addresses are 10.77.0.0/24 inside these namespaces only; the host's own network is not
# touched. Everything it starts is stopped by PID and every namespace it made is deleted on exit.
#
# For each N it measures, in one run:
#   curl     calibration: curl -T of the same archive over one link into a receiver that
#            hashes and writes it (receiver.py), N = 1 only
#   direct   seed sync --fanout direct (the coordinator sends N copies)
#   relay    seed sync --fanout chain (the coordinator sends one copy; each node forwards)
#   registry every node runs `skopeo copy docker://REGISTRY/... oci:...` at once against one
#            docker-registry behind the same cap (what users do today)
# and the coordinator's egress: seed's own count, and the tx bytes of its veth (measured).
# Agents start with empty stores for every measurement; stores live on a tmpfs so the disk
# of this shared machine does not decide the result.
#
# Usage (as root): scripts/bench/relay.sh
#   environment: NODES="1 4 8 16" RATE=200mbit SIZE_MIB=256 QUEUE_MS=20 OUT=relay-bench.json
#                MODES="curl direct relay registry" (a subset skips the others)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "relay.sh creates network namespaces: run it as root" >&2; exit 1; }
for t in ip tc curl skopeo docker-registry python3 bc; do
  command -v "$t" >/dev/null || { echo "relay.sh needs $t (apt-get install iproute2 curl skopeo docker-registry python3 bc)" >&2; exit 1; }
done
NODES=${NODES:-"1 4 8 16"}
RATE=${RATE:-200mbit}
SIZE_MIB=${SIZE_MIB:-256}
# Queue of each capped link: tbf's latency (how long a packet may wait before it is dropped).
QUEUE_MS=${QUEUE_MS:-20}
MODES=${MODES:-"curl direct relay registry"}
want() { [[ " $MODES " == *" $1 "* ]]; }
OUT=${OUT:-relay-bench.json}
maxn=0; for n in $NODES; do [ "$n" -gt "$maxn" ] && maxn=$n; done

swift build -c release --product seed >/dev/null
seed=$(swift build -c release --show-bin-path)/seed

P="sb$$"                       # every namespace of this run starts with this
work=$(mktemp -d "${TMPDIR:-/tmp}/seed-relaybench-XXXXXX")
fs="$work/fs"
pids=()
namespaces=()
cleanup() {
  set +e
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  sleep 1
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null; done
  mountpoint -q "$fs" && umount "$fs"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$fs"
# Room for the archive, the cache, the registry's copy and N stores or N pulled copies.
mount -t tmpfs -o size=$(( SIZE_MIB * (maxn + 6) + 512 ))m seed-relaybench "$fs"

now() { date +%s.%N; }
ns() { echo "$P-$1"; }
addr() { case "$1" in coord) echo 10.77.0.2 ;; reg) echo 10.77.0.3 ;; n*) echo "10.77.0.$(( 10 + ${1#n} ))" ;; esac; }

# --- the network ---
ip netns add "$(ns sw)"; namespaces+=("$(ns sw)")
ip -n "$(ns sw)" link set lo up
ip -n "$(ns sw)" link add br0 type bridge
ip -n "$(ns sw)" link set br0 up
idx=0
host() {
  local name=$1 a; a=$(addr "$1"); idx=$((idx + 1))
  ip netns add "$(ns "$name")"; namespaces+=("$(ns "$name")")
  ip -n "$(ns sw)" link add "v$idx" type veth peer name eth0 netns "$(ns "$name")"
  ip -n "$(ns sw)" link set "v$idx" master br0 up
  ip -n "$(ns "$name")" link set lo up
  ip -n "$(ns "$name")" addr add "$a/24" dev eth0
  ip -n "$(ns "$name")" link set eth0 up
  # Both directions capped: eth0's egress is the host's upload, v$idx's egress its download.
  tc -n "$(ns "$name")" qdisc add dev eth0 root tbf rate "$RATE" burst 256kb latency "${QUEUE_MS}ms"
  tc -n "$(ns sw)" qdisc add dev "v$idx" root tbf rate "$RATE" burst 256kb latency "${QUEUE_MS}ms"
}
host coord; host reg
for i in $(seq "$maxn"); do host "n$i"; done
nx() { local h=$1; shift; ip netns exec "$(ns "$h")" "$@"; }

# --- the image, the registry, the cache ---
python3 scripts/bench/make-archive.py "$SIZE_MIB" "$fs/app.tar" "bench.local/seed/app:1"
bytes=$(stat -c %s "$fs/app.tar")
echo "token-$RANDOM-$RANDOM-$RANDOM" > "$work/token"
mkdir -p "$fs/registry"
cat > "$work/registry.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $fs/registry}, delete: {enabled: true}}
http: {addr: "$(addr reg):5000"}
YAML
# Started with `ip netns exec` directly (not through a shell function) so that $! is the PID of
# the server itself.
ip netns exec "$(ns reg)" docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do nx coord curl -sf "http://$(addr reg):5000/v2/" >/dev/null && break; sleep 0.1; done
nx coord skopeo copy -q --dest-tls-verify=false "oci-archive:$fs/app.tar" "docker://$(addr reg):5000/bench/app:1"
cat > "$work/fetch.yaml" <<YAML
version: 1
images:
  - ref: bench.local/seed/app:1
    source: file:$fs/app.tar
nodes:
  - {name: n1, url: "http://$(addr n1):7441"}
YAML
"$seed" fetch -f "$work/fetch.yaml" --cache "$fs/cache" --log-level warning >/dev/null

txbytes() { nx coord cat /sys/class/net/eth0/statistics/tx_bytes; }
agents=()
start_agents() {
  local n=$1 i
  agents=()
  for i in $(seq "$n"); do
    rm -rf "$fs/store-$i"
    ip netns exec "$(ns "n$i")" "$seed" agent --listen "$(addr "n$i"):7441" --store "$fs/store-$i" --token-file "$work/token" \
      --name "n$i" --log-level warning >>"$work/agent-$i.log" 2>&1 & agents+=($!); pids+=($!)
  done
  for i in $(seq "$n"); do
    for _ in $(seq 100); do nx coord curl -sf "http://$(addr "n$i"):7441/v1/health" >/dev/null && break; sleep 0.1; done
  done
  { echo "version: 1"; echo "images:"; echo "  - ref: bench.local/seed/app:1"; echo "    source: file:$fs/app.tar"
    echo "nodes:"; for i in $(seq "$n"); do echo "  - {name: n$i, url: \"http://$(addr "n$i"):7441\"}"; done
    echo "agents:"; echo "  tokenFile: $work/token"; } > "$work/seed.yaml"
}
peak_rss=0
stop_agents() {
  local p r
  peak_rss=0
  for p in "${agents[@]}"; do
    r=$(awk '/VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    [ "${r:-0}" -gt "$peak_rss" ] && peak_rss=$r
  done
  for p in "${agents[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${agents[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$fs"/store-*
}

results="$work/results.tsv"
: > "$results"
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "${6:-0}" >> "$results"; }   # mode n seconds seed_egress veth_egress agent_rss_kib

# Calibration: one link, curl into the hashing receiver.
if want curl; then
ip netns exec "$(ns n1)" python3 scripts/bench/receiver.py 9000 "$fs" "$(addr n1)" & rpid=$!; pids+=($rpid)
sleep 1
tx0=$(txbytes); t0=$(now)
nx coord curl -sS -o /dev/null -T "$fs/app.tar" "http://$(addr n1):9000/upload"
t1=$(now); tx1=$(txbytes)
record curl 1 "$(echo "$t1 - $t0" | bc -l)" "$bytes" "$((tx1 - tx0))" 0
kill "$rpid"; wait "$rpid" 2>/dev/null || true; rm -f "$fs/upload"
echo "curl   n=1  $(tail -1 "$results" | cut -f3) s" >&2
fi

for n in $NODES; do
  for mode in direct chain; do
    if [ "$mode" = chain ]; then want relay || continue; else want direct || continue; fi
    start_agents "$n"
    tx0=$(txbytes); t0=$(now)
    if ! nx coord "$seed" sync -f "$work/seed.yaml" --cache "$fs/cache" --fanout "$mode" -o json --log-level warning \
         >"$work/sync-$mode-$n.json" 2>"$work/sync-$mode-$n.log"; then
      echo "seed sync --fanout $mode with $n nodes failed:" >&2; cat "$work/sync-$mode-$n.json" "$work/sync-$mode-$n.log" >&2; exit 1
    fi
    t1=$(now); tx1=$(txbytes)
    egress=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['egressBytes'])" "$work/sync-$mode-$n.json")
    [ "$mode" = chain ] && m=relay || m=direct
    stop_agents
    record "$m" "$n" "$(echo "$t1 - $t0" | bc -l)" "$egress" "$((tx1 - tx0))" "$peak_rss"
    echo "$m n=$n  $(tail -1 "$results" | cut -f3) s, agents' peak RSS $((peak_rss / 1024)) MiB" >&2
  done
  # What users run today: every node pulls from the one registry at once.
  want registry || continue
  t0=$(now)
  pulls=()
  for i in $(seq "$n"); do
    ip netns exec "$(ns "n$i")" skopeo copy -q --src-tls-verify=false "docker://$(addr reg):5000/bench/app:1" "oci:$fs/pull-$i:app" & pulls+=($!)
  done
  for p in "${pulls[@]}"; do wait "$p" || { echo "a registry pull failed" >&2; exit 1; }; done
  t1=$(now)
  record registry "$n" "$(echo "$t1 - $t0" | bc -l)" 0 0 0
  echo "registry n=$n  $(tail -1 "$results" | cut -f3) s" >&2
  rm -rf "$fs"/pull-*
done

python3 - "$results" "$OUT" "$bytes" "$RATE" "$SIZE_MIB" "$QUEUE_MS" <<'PY'
import json, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
out, size, rate, mib, queue = sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
t, runs = {}, []
for mode, n, secs, egress, veth, rss in rows:
    n, secs, egress, veth, rss = int(n), float(secs), int(egress), int(veth), int(rss)
    t[(mode, n)] = secs
    seedrun = mode in ("direct", "relay")
    runs.append({"mode": mode, "nodes": n, "seconds": round(secs, 3),
                 "seedEgressBytes": egress if seedrun else None,
                 "vethEgressBytes": veth if mode != "registry" else None,
                 "copiesFromCoordinator": round(veth / size, 2) if seedrun else None,
                 "agentPeakRSSMiB": round(rss / 1024, 1) if seedrun else None})
def f(x, w, p=2): return f"{x:>{w}.{p}f}" if x is not None else f"{'-':>{w}}"
def ratio(a, b): return a / b if a is not None and b else None
ns = sorted({r["nodes"] for r in runs if r["mode"] != "curl"})
t1 = t.get(("relay", 1))
print(f"archive {size} bytes ({mib} MiB); every link capped at {rate} with a {queue} ms queue (tc tbf), both ways")
print(f"{'nodes':>5} {'direct s':>9} {'relay s':>8} {'registry s':>11} {'relay/T(1)':>11} {'registry/relay':>15} {'copies out (relay)':>19} {'relay agent RSS MiB':>20}")
for n in ns:
    d, r, g = t.get(("direct", n)), t.get(("relay", n)), t.get(("registry", n))
    copies = next((x["copiesFromCoordinator"] for x in runs if x["mode"] == "relay" and x["nodes"] == n), None)
    rss = next((x["agentPeakRSSMiB"] for x in runs if x["mode"] == "relay" and x["nodes"] == n), None)
    print(f"{n:>5} {f(d, 9)} {f(r, 8)} {f(g, 11)} {f(ratio(r, t1), 11, 3)} {f(ratio(g, r), 15)} {f(copies, 19)} {f(rss, 20, 1)}")
ratios = {}
top = max(ns) if ns else None
if top and ratio(t.get(("relay", top)), t1): ratios[f"relayT({top})/T(1)"] = round(t[("relay", top)] / t1, 3)
if top and ratio(t.get(("registry", top)), t.get(("relay", top))): ratios[f"registryT({top})/relayT({top})"] = round(t[("registry", top)] / t[("relay", top)], 3)
if ratio(t.get(("direct", 1)), t.get(("curl", 1))): ratios["seedT(1)/curlT(1)"] = round(t[("direct", 1)] / t[("curl", 1)], 3)
if ("curl", 1) in t: print("curl T(1) = %.2f s" % t[("curl", 1)])
for k, v in ratios.items(): print(f"{k} = {v}")
json.dump({"archiveBytes": size, "rate": rate, "queueMs": queue, "runs": runs, "ratios": ratios}, open(out, "w"), indent=2)
print(f"wrote {out}")
PY
