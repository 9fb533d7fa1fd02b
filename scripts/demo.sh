#!/usr/bin/env bash
# A complete local demonstration of seed on this one machine, with nothing but the repo:
# installs what it needs (Debian), builds seed, starts three agents on loopback (OCI-layout
# runtime, one labelled gpu=true), makes example images locally (no internet), syncs them, syncs
# again (nothing moves), shows a node's inventory, and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for p in libarchive-dev zlib1g-dev pkg-config curl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ -n "${SEED_BINARY:-}" ]; then
  seed="$SEED_BINARY"          # an already built seed (the tests run the demo this way)
else
  step "building seed"
  swift build --product seed 2>&1 | tail -2
  seed="$(swift build --show-bin-path)/seed"
fi
"$seed" version

work=$(mktemp -d "${TMPDIR:-/tmp}/seed-demo-XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }

step "starting three agents on loopback"
head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$work/token"
ports=()
for i in 1 2 3; do
  port=$(free_port); ports+=("$port")
  labels=(); [ "$i" = 3 ] && labels=(--label gpu=true)
  "$seed" agent --listen "127.0.0.1:$port" --store "$work/node-$i" --token-file "$work/token" \
    --name "node-$i" "${labels[@]}" --log-level warning 2>>"$work/agent-$i.log" &
  pids+=($!)
done
for port in "${ports[@]}"; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v1/health" >/dev/null && break; sleep 0.1; done
  echo "agent on 127.0.0.1:$port: $(curl -sf "http://127.0.0.1:$port/v1/health")"
done

step "making example images locally (random layers, no registry needed)"
mkdir -p "$work/images"
python3 scripts/bench/make-archive.py 24 "$work/images/web-1.0.tar" demo.local/team/web:1.0
python3 scripts/bench/make-archive.py 12 "$work/images/worker-2.1.tar" demo.local/team/worker:2.1
python3 scripts/bench/make-archive.py 32 "$work/images/model-0.3.tar" demo.local/ml/model:0.3
gzip "$work/images/worker-2.1.tar"
ls -l "$work/images"

cat > "$work/seed.yaml" <<YAML
version: 1
images:
  - ref: demo.local/team/web:1.0
    source: file:images/web-1.0.tar
  - ref: demo.local/team/worker:2.1
    source: file:images/worker-2.1.tar.gz
  - ref: demo.local/ml/model:0.3
    source: file:images/model-0.3.tar
    nodes: {gpu: "true"}
nodes:
  - name: node-1
    url: http://127.0.0.1:${ports[0]}
  - name: node-2
    url: http://127.0.0.1:${ports[1]}
  - name: node-3
    url: http://127.0.0.1:${ports[2]}
agents:
  tokenFile: token
YAML
step "the manifest"
cat "$work/seed.yaml"

step "seed plan: what a sync would move"
"$seed" plan -f "$work/seed.yaml" --cache "$work/cache" --log-level warning

step "seed sync"
"$seed" sync -f "$work/seed.yaml" --cache "$work/cache" --log-level warning

step "seed sync again: nothing to move"
"$seed" sync -f "$work/seed.yaml" --cache "$work/cache" --log-level warning

step "seed status: every image present on every node"
"$seed" status -f "$work/seed.yaml" --cache "$work/cache"

step "node-2 loses an image; seed status shows the drift (exit code 1), seed sync repairs it"
curl -sf -X DELETE -H "Authorization: Bearer $(cat "$work/token")" \
  "http://127.0.0.1:${ports[1]}/v1/images?ref=demo.local%2Fteam%2Fweb%3A1.0" >/dev/null
"$seed" status -f "$work/seed.yaml" --cache "$work/cache" || echo "(seed status exited $?)"
"$seed" sync -f "$work/seed.yaml" --cache "$work/cache" --log-level warning
"$seed" status -f "$work/seed.yaml" --cache "$work/cache" -o wide

step "node-3's inventory, as its agent reports it"
curl -sf -H "Authorization: Bearer $(cat "$work/token")" "http://127.0.0.1:${ports[2]}/v1/inventory" | python3 -m json.tool

step "done: stopping the agents and removing $work"
