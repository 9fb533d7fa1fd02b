#!/usr/bin/env bash
# A fleet on loopback: N agents (default 100) and M images (default 50, sharing one small layer,
# each with its own config and manifest). Syncs once, then times what a cron job does every few
# minutes when nothing changed: a no-op `seed sync` (target < 2 s, zero blob bytes) and
# `seed status` (target: about a second).
#
# Usage: scripts/bench/fleet.sh [AGENTS] [IMAGES]
set -euo pipefail
cd "$(dirname "$0")/../.."
agents=${1:-100}
images=${2:-50}

swift build -c release --product seed >/dev/null
seed=$(swift build -c release --show-bin-path)/seed
work=$(mktemp -d "${TMPDIR:-/tmp}/seed-fleet-XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

python3 - "$images" "$work/all.tar" <<'PY'
import hashlib, io, json, sys, tarfile
n, out = int(sys.argv[1]), sys.argv[2]
def sha(b): return hashlib.sha256(b).hexdigest()
inner = io.BytesIO()
with tarfile.open(fileobj=inner, mode="w") as lt:
    data = b"shared layer\n" * 300
    ti = tarfile.TarInfo("etc/shared"); ti.size = len(data); lt.addfile(ti, io.BytesIO(data))
layer = inner.getvalue()
entries = []
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    def add(name, data):
        ti = tarfile.TarInfo(name); ti.size = len(data); ti.mtime = 0; t.addfile(ti, io.BytesIO(data))
    add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    add("blobs/sha256/" + sha(layer), layer)
    for i in range(n):
        cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"n": str(i)}},
                          "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(layer)]}}).encode()
        m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + sha(cfg), "size": len(cfg)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + sha(layer), "size": len(layer)}]}).encode()
        add("blobs/sha256/" + sha(cfg), cfg); add("blobs/sha256/" + sha(m), m)
        entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + sha(m), "size": len(m),
                        "annotations": {"org.opencontainers.image.ref.name": "fleet.local/app/img-%d:1" % i}})
    add("index.json", json.dumps({"schemaVersion": 2, "manifests": entries}).encode())
PY

{
  echo "version: 1"; echo "images:"
  for i in $(seq 0 $((images - 1))); do printf '  - ref: fleet.local/app/img-%d:1\n    source: file:all.tar\n' "$i"; done
  echo "nodes:"
} > "$work/seed.yaml"
for i in $(seq 1 "$agents"); do
  port=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
  "$seed" agent --listen "127.0.0.1:$port" --store "$work/a$i" --name "n$i" --log-level error 2>/dev/null &
  pids+=($!)
  printf '  - name: n%d\n    url: http://127.0.0.1:%d\n' "$i" "$port" >> "$work/seed.yaml"
done
for p in $(sed -n 's/.*127.0.0.1:\([0-9]*\).*/\1/p' "$work/seed.yaml"); do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$p/v1/health" >/dev/null && break; sleep 0.05; done
done

t() { local s=$(date +%s.%N); "$@" >"$work/out" 2>"$work/err" || true; echo "$(date +%s.%N) - $s" | bc -l; }
first=$(t "$seed" sync -f "$work/seed.yaml" --cache "$work/cache" --concurrency 16 -o json)
grep -q '"ok":true' "$work/out" || { echo "first sync failed:"; tail -5 "$work/err"; exit 1; }
noop=$(t "$seed" sync -f "$work/seed.yaml" --cache "$work/cache" --concurrency 16 -o json)
noop_bytes=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['bytes'])" "$work/out")
status=$(t "$seed" status -f "$work/seed.yaml" --cache "$work/cache" -o json)
insync=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['inSync'])" "$work/out")
printf '%d agents x %d images on loopback\n' "$agents" "$images"
printf 'first sync         %6.2f s\n' "$first"
printf 'no-op sync         %6.2f s  (%s blob bytes; target < 2 s, 0 bytes)\n' "$noop" "$noop_bytes"
printf 'status             %6.2f s  (inSync=%s; target about 1 s)\n' "$status" "$insync"
