#!/usr/bin/env bash
# Pushes an image from the coordinator cache to one agent on loopback with `seed sync`, and in
# the same run `curl -T` of the same archive into a receiver that hashes and writes it
# (receiver.py): the throughput ratio, and the peak RSS of the coordinator and the agent, for a
# 256 MiB and a 1 GiB image (so any growth with image size shows).
#
# Usage: scripts/bench/sync.sh [SIZES_MIB...]   (default: 256 1024)
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ $# -gt 0 ]; then sizes=("$@"); else sizes=(256 1024); fi
command -v bc >/dev/null || { echo "bench needs bc (apt-get install bc)" >&2; exit 1; }

swift build -c release --product seed >/dev/null
seed=$(swift build -c release --show-bin-path)/seed
work=$(mktemp -d "${TMPDIR:-/tmp}/seed-syncbench-XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }
now() { date +%s.%N; }
# Peak RSS (KiB) of a command, from getrusage of the child.
peak() { python3 -c "import resource,subprocess,sys; r=subprocess.run(sys.argv[1:]); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r.returncode)" "$@"; }

echo "token-$RANDOM-$RANDOM" > "$work/token"
rport=$(free_port)
python3 scripts/bench/receiver.py "$rport" "$work" & pids+=($!)
sleep 0.5

printf '%-8s %12s %12s %12s %8s %14s %14s\n' size bytes curl_MB/s seed_MB/s ratio coord_rss_MiB agent_rss_MiB
for mib in "${sizes[@]}"; do
  a="$work/img-$mib.tar"
  python3 scripts/bench/make-archive.py "$mib" "$a" "bench.local/seed/bench:$mib"
  bytes=$(stat -c %s "$a")
  cat "$a" >/dev/null

  # Baseline: curl -T into the hashing, writing receiver.
  t0=$(now); curl -sS -o /dev/null -T "$a" "http://127.0.0.1:$rport/upload"; t1=$(now)
  t_curl=$(echo "$t1 - $t0" | bc -l)

  # seed: fill the cache first (not timed), then time the push to a fresh agent.
  aport=$(free_port)
  "$seed" agent --listen "127.0.0.1:$aport" --store "$work/agent-$mib" --token-file "$work/token" --log-level warning & apid=$!; pids+=($apid)
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$aport/v1/health" >/dev/null && break; sleep 0.1; done
  cat > "$work/seed-$mib.yaml" <<YAML
version: 1
images:
  - ref: bench.local/seed/bench:$mib
    source: file:img-$mib.tar
nodes:
  - name: bench
    url: http://127.0.0.1:$aport
agents:
  tokenFile: token
YAML
  "$seed" fetch -f "$work/seed-$mib.yaml" --cache "$work/cache" --log-level warning >/dev/null
  t0=$(now)
  rss_coord=$(peak "$seed" sync -f "$work/seed-$mib.yaml" --cache "$work/cache" --log-level warning 2>&1 >/dev/null | tail -1)
  t1=$(now)
  t_seed=$(echo "$t1 - $t0" | bc -l)
  rss_agent=$(awk '/VmHWM/ {print $2}' /proc/$apid/status)
  kill "$apid"; wait "$apid" 2>/dev/null || true

  printf '%-8s %12s %12.1f %12.1f %8.2f %14.1f %14.1f\n' "${mib}MiB" "$bytes" \
    "$(echo "$bytes / 1048576 / $t_curl" | bc -l)" "$(echo "$bytes / 1048576 / $t_seed" | bc -l)" \
    "$(echo "$t_curl / $t_seed" | bc -l)" "$(echo "$rss_coord / 1024" | bc -l)" "$(echo "$rss_agent / 1024" | bc -l)"
  rm -rf "$a" "$work/agent-$mib" "$work/cache"
done
