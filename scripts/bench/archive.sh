#!/usr/bin/env bash
# Streams image archives through seed's libarchive reader into the verified blob store, and from
# the store back out through the writer, next to `cat` and `sha256sum` of the same file in the
# same run. Prints throughput (MB/s), ratios, and each direction's peak RSS, for a 256 MiB and a
# 1 GiB archive (of incompressible layers), so memory growth with size shows directly.
#
# Usage: scripts/bench/archive.sh [SIZES_MIB...]   (default: 256 1024)
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ $# -gt 0 ]; then sizes=("$@"); else sizes=(256 1024); fi

swift build -c release --product seed-bench >/dev/null
bench=$(swift build -c release --show-bin-path)/seed-bench
work=$(mktemp -d "${TMPDIR:-/tmp}/seed-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT

# An oci-archive of one image with 4 equal layers of random bytes (uncompressed tar layers).
make_archive() { python3 "$(dirname "$0")/make-archive.py" "$1" "$2"; }

seconds() { local s=$(date +%s.%N); "$@" >/dev/null; echo "$(date +%s.%N) - $s" | bc -l; }
mbps() { echo "scale=1; $1 / 1048576 / $2" | bc -l; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

command -v bc >/dev/null || { echo "bench needs bc (apt-get install bc)" >&2; exit 1; }
printf '%-8s %-10s %10s %10s %14s %14s %8s %8s %12s %12s\n' size bytes cat_MB/s sha_MB/s read_MB/s write_MB/s read/sha write/cat read_rss_MiB write_rss_MiB
for mib in "${sizes[@]}"; do
  a="$work/in-$mib.tar"; make_archive "$mib" "$a"
  bytes=$(stat -c %s "$a")
  cat "$a" >/dev/null                     # warm the page cache for every contender alike
  t_cat=$(seconds cat "$a")
  t_sha=$(seconds sha256sum "$a")
  r=$("$bench" read "$a" "$work/store-$mib")
  w=$("$bench" write "$work/store-$mib" "$work/out-$mib.tar")
  t_read=$(echo "$r" | field seconds); rss_read=$(echo "$r" | field peak_rss_kib)
  t_write=$(echo "$w" | field seconds); rss_write=$(echo "$w" | field peak_rss_kib)
  printf '%-8s %-10s %10s %10s %14s %14s %8.2f %8.2f %12.1f %12.1f\n' "${mib}MiB" "$bytes" \
    "$(mbps "$bytes" "$t_cat")" "$(mbps "$bytes" "$t_sha")" "$(mbps "$bytes" "$t_read")" "$(mbps "$bytes" "$t_write")" \
    "$(echo "$t_sha / $t_read" | bc -l)" "$(echo "$t_cat / $t_write" | bc -l)" \
    "$(echo "$rss_read / 1024" | bc -l)" "$(echo "$rss_write / 1024" | bc -l)"
  rm -rf "$work/store-$mib" "$work/out-$mib.tar" "$a"
done
