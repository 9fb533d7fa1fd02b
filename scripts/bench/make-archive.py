#!/usr/bin/env python3
"""make-archive.py MIB OUT [REF]: an oci-archive of one image whose 4 layers are uncompressed
tars of random (incompressible) bytes, MIB MiB in all, named REF (default
bench.local/seed/bench:MIB). Written as a stream: memory stays small whatever the size."""
import hashlib, io, json, os, sys, tarfile

mib, out = int(sys.argv[1]), sys.argv[2]
ref = sys.argv[3] if len(sys.argv) > 3 else "bench.local/seed/bench:%d" % mib
per = (mib << 20) // 4
layers, diffs = [], []
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    def add(name, data):
        ti = tarfile.TarInfo(name); ti.size = len(data); ti.mtime = 0
        t.addfile(ti, io.BytesIO(data))
    for i in range(4):
        inner = io.BytesIO()
        with tarfile.open(fileobj=inner, mode="w") as lt:
            data = os.urandom(per - 4096)
            ti = tarfile.TarInfo("layer-%d.bin" % i); ti.size = len(data)
            lt.addfile(ti, io.BytesIO(data))
            del data
        layer = inner.getvalue(); del inner
        d = hashlib.sha256(layer).hexdigest()
        add("blobs/sha256/" + d, layer)
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + d, "size": len(layer)})
        diffs.append("sha256:" + d); del layer
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
    c = hashlib.sha256(cfg).hexdigest(); add("blobs/sha256/" + c, cfg)
    m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + c, "size": len(cfg)},
        "layers": layers}).encode()
    md = hashlib.sha256(m).hexdigest(); add("blobs/sha256/" + md, m)
    add("index.json", json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + md, "size": len(m), "annotations": {"org.opencontainers.image.ref.name": ref}}]}).encode())
    add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
