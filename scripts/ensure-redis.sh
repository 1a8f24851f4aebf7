#!/usr/bin/env bash
# Make sure redis-cli, redis-benchmark and redis-server are on PATH: the integration tests and
# benchmarks use the real programs. On Debian/Ubuntu as root, installs them; elsewhere, says how.
set -euo pipefail
missing=()
for program in redis-cli redis-benchmark redis-server; do
  command -v "$program" >/dev/null 2>&1 || missing+=("$program")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "== installing ${missing[*]} (Debian packages redis-tools, redis-server)"
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends redis-tools redis-server >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends redis-tools redis-server >/dev/null; }
  exit 0
fi
echo "apus-smr tests need ${missing[*]}: install the Redis tools and server first," >&2
echo "  Debian/Ubuntu: sudo apt-get install redis-tools redis-server" >&2
echo "  Fedora: sudo dnf install redis    macOS: brew install redis" >&2
exit 1
