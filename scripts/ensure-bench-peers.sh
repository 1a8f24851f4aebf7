#!/usr/bin/env bash
# Make sure the peers `npm run bench:peers` compares apus-smr with are installed: etcd (Debian
# package etcd-server, 3.4: the `etcd` binary) and ZooKeeper (Debian package zookeeper, 3.8: its
# jars under /usr/share/java, run with a Java runtime). The benchmark starts its own clusters in
# temp dirs on loopback ports; the packages' own services must never run.
#
# On Debian/Ubuntu as root, installs what is missing with apt-get, with a /usr/sbin/policy-rc.d
# that exits 101 in place during the install (so no service is started), and then checks with ps
# that no etcd or ZooKeeper server was left running (and stops one if it was). Elsewhere, says
# what to install.
set -euo pipefail

have_etcd() { command -v etcd >/dev/null 2>&1 || [ -x /usr/bin/etcd ]; }
have_zookeeper() { [ -f /usr/share/java/zookeeper.jar ] && command -v java >/dev/null 2>&1; }

packages=()
have_etcd || packages+=(etcd-server)
have_zookeeper || packages+=(zookeeper)
if [ ${#packages[@]} -eq 0 ]; then
  exit 0
fi

# Server processes of either system started by anyone but this benchmark (the benchmark's own
# run from temp dirs it names apus-peers-*; the packages' services use /etc and /var/lib).
stray_servers() {
  ps -eo pid=,args= |
    grep -E '(/usr/bin/etcd( |$)|org\.apache\.zookeeper\.server\.quorum\.QuorumPeerMain)' |
    grep -v -e 'apus-peers-' -e grep || true
}

# bash's EUID comes from geteuid(); `id -u` may be a wrapper on some machines.
if [ "${EUID}" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  before="$(stray_servers | awk '{print $1}' | sort)"
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# apus-smr bench:peers: no service starts during this install\nexit 101\n' \
      >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  remove_policy() { if [ "$created_policy" = "1" ]; then rm -f /usr/sbin/policy-rc.d; fi; }
  trap remove_policy EXIT
  echo "== installing ${packages[*]} (Debian packages; their services are not started)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${packages[@]}" >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${packages[@]}" >/dev/null; }
  remove_policy
  trap - EXIT
  # A package whose service started anyway (no policy-rc.d honoured, a systemd unit): stop it.
  for pid in $(stray_servers | awk '{print $1}'); do
    if ! grep -qx "$pid" <<<"$before"; then
      echo "== stopping a server the install started: $(ps -o args= -p "$pid" || true)" >&2
      kill "$pid" 2>/dev/null || true
    fi
  done
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now etcd.service zookeeper.service >/dev/null 2>&1 || true
  fi
  have_etcd || { echo "bench:peers: etcd-server installed but no etcd binary found" >&2; exit 1; }
  have_zookeeper || {
    echo "bench:peers: zookeeper installed but /usr/share/java/zookeeper.jar or java is missing" >&2
    exit 1
  }
  exit 0
fi

echo "bench:peers needs ${packages[*]}: install them first (do not start their services)," >&2
echo "  Debian/Ubuntu: sudo apt-get install --no-install-recommends etcd-server zookeeper" >&2
echo "  (the benchmark runs the etcd binary and ZooKeeper's jars from /usr/share/java itself)" >&2
exit 1
