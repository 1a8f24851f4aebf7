#!/usr/bin/env bash
# Make sure the programs the tests use are on PATH: redis-cli, redis-benchmark and redis-server
# (the integration tests and benchmarks drive the replicas with the real Redis tools), memcached
# (the transparent-mode test replicates an unmodified memcached), and nft (the lossy-network test
# drops peer packets with nftables; it is skipped without root or nft), and openssl (the TLS tests
# make their certificates with it).
# On Debian/Ubuntu as root, installs what is missing; elsewhere, says what to install.
set -euo pipefail
missing=()
packages=()
for program in redis-cli redis-benchmark redis-server; do
  command -v "$program" >/dev/null 2>&1 || missing+=("$program")
done
[ ${#missing[@]} -gt 0 ] && packages+=(redis-tools redis-server)
if ! command -v memcached >/dev/null 2>&1; then
  missing+=(memcached)
  packages+=(memcached)
fi
if ! command -v openssl >/dev/null 2>&1; then
  missing+=(openssl)
  packages+=(openssl)
fi
optional_nft=0
if ! command -v nft >/dev/null 2>&1 && ! [ -x /usr/sbin/nft ]; then
  packages+=(nftables)
  optional_nft=1
fi
if [ ${#packages[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing ${packages[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${packages[@]}" >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${packages[@]}" >/dev/null; }
  exit 0
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "apus-smr tests need ${missing[*]}: install them first," >&2
  echo "  Debian/Ubuntu: sudo apt-get install redis-tools redis-server memcached openssl" >&2
  echo "  Fedora: sudo dnf install redis memcached openssl    macOS: brew install redis memcached" >&2
  exit 1
fi
if [ "$optional_nft" = "1" ]; then
  echo "note: nft (nftables) is missing: the lossy-network test will be skipped" >&2
fi
exit 0
