#!/usr/bin/env python3
"""Writes hostile tar archives for seed's tests, one file per case, into the directory given.

Each starts from a small but valid oci-archive built here, and breaks one rule. The Swift test
(HostileArchiveTests) lists the cases and the error each must produce.
"""
import gzip, hashlib, io, json, os, sys, tarfile

out = sys.argv[1]
os.makedirs(out, exist_ok=True)

def sha(b): return hashlib.sha256(b).hexdigest()

def layer_tar():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        data = b"hello from a layer\n" * 100
        ti = tarfile.TarInfo("etc/hello.txt"); ti.size = len(data); ti.mtime = 0
        t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()

LAYER = layer_tar()
CONFIG = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(LAYER)]}}).encode()
def manifest(config=CONFIG, layer=LAYER, layer_size=None):
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + sha(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + sha(layer),
                    "size": len(layer) if layer_size is None else layer_size}]}).encode()
MANIFEST = manifest()
def index(m=MANIFEST, name="example.com/hostile/app:1"):
    return json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + sha(m), "size": len(m), "annotations": {"org.opencontainers.image.ref.name": name}}]}).encode()
INDEX = index()
LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'

def add(t, name, data=b"", type=tarfile.REGTYPE, link="", pax=None):
    ti = tarfile.TarInfo(name)
    ti.type = type; ti.mtime = 0; ti.mode = 0o644
    if link: ti.linkname = link
    if pax: ti.pax_headers = pax
    if type in (tarfile.REGTYPE, tarfile.AREGTYPE):
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    else:
        t.addfile(ti)

def valid_entries(t, layer=LAYER, config=CONFIG, m=MANIFEST, idx=INDEX):
    add(t, "oci-layout", LAYOUT)
    add(t, "index.json", idx)
    add(t, "blobs/sha256/" + sha(m), m)
    add(t, "blobs/sha256/" + sha(config), config)
    add(t, "blobs/sha256/" + sha(layer), layer)

def archive(name, extra=None, base=True, fmt=tarfile.PAX_FORMAT, **kw):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, encoding="utf-8", errors="surrogateescape") as t:
        if extra: extra(t)
        if base: valid_entries(t, **kw)
    data = buf.getvalue()
    open(os.path.join(out, name), "wb").write(data)
    return data

valid = archive("valid.tar")

archive("dotdot.tar", lambda t: add(t, "../evil", b"x"))
archive("dotdot-inside.tar", lambda t: add(t, "blobs/../../evil", b"x"))
archive("absolute.tar", lambda t: add(t, "/tmp/seed-evil", b"x"))
archive("symlink-out.tar", lambda t: add(t, "blobs/evil", type=tarfile.SYMTYPE, link="../../../etc/passwd"))
archive("symlink-absolute.tar", lambda t: add(t, "evil", type=tarfile.SYMTYPE, link="/etc/passwd"))
archive("hardlink-out.tar", lambda t: add(t, "evil", type=tarfile.LNKTYPE, link="../etc/passwd"))
archive("hardlink-absolute.tar", lambda t: add(t, "evil", type=tarfile.LNKTYPE, link="/etc/passwd"))
archive("chardev.tar", lambda t: add(t, "dev/null", type=tarfile.CHRTYPE))
archive("blockdev.tar", lambda t: add(t, "dev/sda", type=tarfile.BLKTYPE))
archive("fifo.tar", lambda t: add(t, "evil-fifo", type=tarfile.FIFOTYPE))

def dup(t):
    add(t, "index.json", index(name="example.com/other/app:2"))
archive("duplicate-index.tar", base=True, extra=None)
# duplicate with different content: the valid entries, then index.json again with other bytes
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    valid_entries(t)
    dup(t)
open(os.path.join(out, "duplicate-index.tar"), "wb").write(buf.getvalue())
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    valid_entries(t)
    add(t, "extra/layer.tar", b"one")
    add(t, "extra/layer.tar", b"two")
open(os.path.join(out, "duplicate-file.tar"), "wb").write(buf.getvalue())

# A blob whose content does not match its name.
archive("blob-mismatch.tar", lambda t: add(t, "blobs/sha256/" + sha(b"expected"), b"something else"))
# The layer's bytes replaced by other bytes under the same name.
def mismatch_layer(t):
    add(t, "oci-layout", LAYOUT); add(t, "index.json", INDEX)
    add(t, "blobs/sha256/" + sha(MANIFEST), MANIFEST); add(t, "blobs/sha256/" + sha(CONFIG), CONFIG)
    add(t, "blobs/sha256/" + sha(LAYER), LAYER[:-1] + b"X")
archive("layer-corrupted.tar", mismatch_layer, base=False)

# Truncations of the valid archive. Entry data ends are 512-aligned; find the end of the last
# entry: the archive ends with two zero blocks plus padding to a 10240-byte record.
with tarfile.open(fileobj=io.BytesIO(valid)) as t:
    members = t.getmembers()
last = members[-1]
end_of_last = last.offset_data + ((last.size + 511) // 512) * 512
open(os.path.join(out, "truncated-boundary.tar"), "wb").write(valid[:end_of_last])
open(os.path.join(out, "truncated-mid-entry.tar"), "wb").write(valid[:last.offset_data + 700])
open(os.path.join(out, "truncated-mid-header.tar"), "wb").write(valid[:last.offset + 100])
open(os.path.join(out, "trailing-garbage.tar"), "wb").write(valid + b"GARBAGE" * 100)
open(os.path.join(out, "trailing-garbage-after-marker.tar"), "wb").write(valid[:end_of_last + 1024] + b"\x01" + b"\0" * 511)
open(os.path.join(out, "trailing-garbage.tar.gz"), "wb").write(gzip.compress(valid, mtime=0) + b"GARBAGE" * 100)
open(os.path.join(out, "not-a-tar.bin"), "wb").write(bytes((i * 7919) % 251 for i in range(4096)))
open(os.path.join(out, "text.txt"), "wb").write(b"this is not an archive\n" * 50)
open(os.path.join(out, "empty.tar"), "wb").write(b"")
open(os.path.join(out, "only-end-marker.tar"), "wb").write(b"\0" * 10240)
open(os.path.join(out, "truncated.tar.gz"), "wb").write(gzip.compress(valid, mtime=0)[:-40])

# A gzip bomb: a few hundred KiB that expand to 256 MiB of zeros inside one entry.
with open(os.path.join(out, "bomb.tar.gz"), "wb") as f:
    with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, compresslevel=9) as g:
        with tarfile.open(fileobj=g, mode="w|", format=tarfile.PAX_FORMAT) as t:
            size = 256 << 20
            ti = tarfile.TarInfo("blobs/sha256/" + "0" * 64); ti.size = size; ti.mtime = 0
            class Zeros(io.RawIOBase):
                def __init__(self): self.left = size
                def readable(self): return True
                def readinto(self, b):
                    n = min(len(b), self.left); b[:n] = bytes(n); self.left -= n; return n
            t.addfile(ti, io.BufferedReader(Zeros(), 1 << 20))

# NUL inside a name: in the ustar name field (libarchive would cut the name at the NUL).
def patch_name(data, old, new):
    i = data.index(old)
    hdr = bytearray(data[i:i + 512])
    assert i % 512 == 0
    hdr[0:100] = new.ljust(100, b"\0")[:100]
    hdr[148:156] = b"        "
    chk = sum(hdr)
    hdr[148:156] = b"%06o\0 " % chk
    return data[:i] + bytes(hdr) + data[i + 512:]
d = archive("tmp-nul.tar", lambda t: add(t, "zzzz-placeholder-name", b"x"), fmt=tarfile.USTAR_FORMAT)
open(os.path.join(out, "nul-in-name.tar"), "wb").write(patch_name(d, b"zzzz-placeholder-name", b"index.json\0../../evil"))
os.remove(os.path.join(out, "tmp-nul.tar"))
archive("nul-in-pax-path.tar", lambda t: add(t, "placeholder", b"x", pax={"path": "index.json\0evil"}))
archive("invalid-utf8-name.tar", lambda t: add(t, "bad-\udcff\udcfe-name", b"x"), fmt=tarfile.GNU_FORMAT)
archive("invalid-utf8-pax.tar", lambda t: add(t, "placeholder", b"x", pax={"path": "bad-\udcff-name"}))
archive("control-char-name.tar", lambda t: add(t, "bad\nname", b"x"))

# An enormous JSON entry: index.json of 50 MiB.
big = b'{"schemaVersion":2,"manifests":[],"pad":"' + b"a" * (50 << 20) + b'"}'
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    add(t, "oci-layout", LAYOUT)
    add(t, "index.json", big)
open(os.path.join(out, "huge-index.tar"), "wb").write(buf.getvalue())
# An enormous manifest blob referenced by the index.
bigm = b'{"schemaVersion":2,"pad":"' + b"a" * (50 << 20) + b'"}'
archive("huge-manifest.tar", base=False, extra=lambda t: (add(t, "oci-layout", LAYOUT),
    add(t, "index.json", index(m=bigm)), add(t, "blobs/sha256/" + sha(bigm), bigm)))

# Graph problems.
ABSENT = LAYER.replace(b"hello", b"absent")
m_absent = manifest(layer=ABSENT)
archive("missing-blob.tar", base=False, extra=lambda t: (add(t, "oci-layout", LAYOUT), add(t, "index.json", index(m=m_absent)),
    add(t, "blobs/sha256/" + sha(m_absent), m_absent), add(t, "blobs/sha256/" + sha(CONFIG), CONFIG)))
m2 = manifest(layer_size=len(LAYER) + 1)
archive("size-mismatch.tar", base=False, extra=lambda t: (add(t, "oci-layout", LAYOUT), add(t, "index.json", index(m=m2)),
    add(t, "blobs/sha256/" + sha(m2), m2), add(t, "blobs/sha256/" + sha(CONFIG), CONFIG), add(t, "blobs/sha256/" + sha(LAYER), LAYER)))
archive("no-index.tar", base=False, extra=lambda t: add(t, "blobs/sha256/" + sha(LAYER), LAYER))
archive("bad-ref-name.tar", base=False, extra=lambda t: valid_entries(t, idx=index(name="example.com/UPPER/case:1")))
archive("duplicate-json-key.tar", base=False, extra=lambda t: (add(t, "oci-layout", LAYOUT),
    add(t, "index.json", b'{"schemaVersion":2,"schemaVersion":2,"manifests":[]}')))
archive("many-entries.tar", lambda t: [add(t, "junk/%d" % i, b"x") for i in range(300)])

# docker-archive whose layer does not match its config's diff_id.
other = LAYER.replace(b"hello", b"HELLO")
cfg_hex = sha(CONFIG)
dm = json.dumps([{"Config": cfg_hex + ".json", "RepoTags": ["example.com/hostile/docker:1"], "Layers": ["l/layer.tar"]}]).encode()
archive("docker-diffid-mismatch.tar", base=False, extra=lambda t: (add(t, "l/layer.tar", other),
    add(t, cfg_hex + ".json", CONFIG), add(t, "manifest.json", dm)))
dm_bad = json.dumps([{"Config": cfg_hex + ".json", "RepoTags": ["Bad Name:1"], "Layers": ["l/layer.tar"]}]).encode()
archive("docker-bad-repotag.tar", base=False, extra=lambda t: (add(t, "l/layer.tar", LAYER),
    add(t, cfg_hex + ".json", CONFIG), add(t, "manifest.json", dm_bad)))
dm_missing = json.dumps([{"Config": cfg_hex + ".json", "RepoTags": ["example.com/a:1"], "Layers": ["nowhere/layer.tar"]}]).encode()
archive("docker-missing-layer.tar", base=False, extra=lambda t: (add(t, cfg_hex + ".json", CONFIG), add(t, "manifest.json", dm_missing)))
dm_link = json.dumps([{"Config": cfg_hex + ".json", "RepoTags": ["example.com/a:1"], "Layers": ["l/layer.tar"]}]).encode()
archive("docker-link-loop.tar", base=False, extra=lambda t: (add(t, "l/layer.tar", type=tarfile.SYMTYPE, link="other.tar"),
    add(t, "l/other.tar", type=tarfile.SYMTYPE, link="layer.tar"), add(t, cfg_hex + ".json", CONFIG), add(t, "manifest.json", dm_link)))
