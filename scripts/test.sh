#!/usr/bin/env bash
# Installs what seed's tests need on a fresh Debian machine, then builds and runs the whole suite.
# Usage: scripts/test.sh [extra `swift test` arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libarchive-dev zlib1g-dev pkg-config skopeo zstd xz-utils gzip tar curl containerd util-linux docker-registry apache2-utils openssl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# skopeo refuses to run without a signature policy; give it the permissive default if the
# machine has none (it only reads and writes local files and loopback registries in tests).
if [ ! -e /etc/containers/policy.json ] && [ -z "${SEED_TEST_NO_POLICY:-}" ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO mkdir -p /etc/containers
  echo '{"default":[{"type":"insecureAcceptAnything"}]}' | $SUDO tee /etc/containers/policy.json >/dev/null
fi

# Kubernetes schema validation of examples/ (offline once installed).
python3 -c "import kubernetes_validate" 2>/dev/null || python3 -m pip install -q kubernetes-validate

export CI="${CI:-true}"
swift build --build-tests 2>&1 | tee /tmp/seed-build.log | grep -E "warning:|error:" | grep -v "/.build/checkouts/" || true
if grep -q "error:" /tmp/seed-build.log; then
  echo "build failed" >&2
  exit 1
fi
swift test --skip-build "$@"
