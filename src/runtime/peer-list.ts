/**
 * --peers: every replica's peer (transport) address, with its stable id. Two forms, not mixed:
 *   ID=host:port,ID=host:port,...   stable ids (1..REPLICA_ID_MAX), in any order, gaps allowed
 *   host:port,host:port,...         positional: the n-th address is replica n (the form before
 *                                   membership changes; a cluster started so keeps those ids)
 * A replica's id never changes; a replica that replaces another gets a new id (see README,
 * Operations). Pure: parsing and formatting, no I/O.
 */
import { type Member, REPLICA_ID_MAX } from "../core/membership.ts";

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/** One replica of --peers. */
export interface ListedPeer extends PeerAddress {
  readonly id: number;
}

const ADDRESS = /^\s*(\[[0-9a-fA-F:.]+\]|[^:\s=[\]]+):(\d{1,5})\s*$/;

/** "host:port" or "[v6]:port" as an address, or null. */
export function parsePeerAddress(text: string): PeerAddress | null {
  const match = ADDRESS.exec(text);
  if (match === null) return null;
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return null;
  return { host: match[1]!.replace(/^\[|\]$/g, ""), port };
}

/** The address as --peers and Member.address write it: host:port, [v6]:port. */
export function formatPeerAddress(address: PeerAddress): string {
  return address.host.includes(":")
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

/**
 * The replicas of a --peers value, sorted by id, or why it is not one (a sentence that says what
 * is expected). Ids are unique and within 1..REPLICA_ID_MAX; addresses are unique.
 */
export function parsePeerList(text: string): ListedPeer[] | string {
  const parts = text.split(",");
  const withIds = parts.filter((part) => part.includes("="));
  if (withIds.length > 0 && withIds.length < parts.length)
    return `mixes ID=host:port and plain host:port entries; use one form (ID=host:port gives stable ids)`;
  const peers: ListedPeer[] = [];
  for (const [index, part] of parts.entries()) {
    let id = index + 1;
    let addressText = part;
    if (withIds.length > 0) {
      const eq = part.indexOf("=");
      const idText = part.slice(0, eq).trim();
      id = Number(idText);
      if (!/^\d+$/.test(idText) || id < 1 || id > REPLICA_ID_MAX)
        return `"${part.trim()}": the id must be 1..${REPLICA_ID_MAX}`;
      addressText = part.slice(eq + 1);
    }
    const address = parsePeerAddress(addressText);
    if (address === null)
      return `"${part.trim()}" is not ${withIds.length > 0 ? "ID=host:port" : "host:port"}`;
    peers.push({ id, ...address });
  }
  if (peers.length > REPLICA_ID_MAX)
    return `lists ${peers.length} replicas; at most ${REPLICA_ID_MAX} are supported`;
  const ids = new Set<number>();
  const addresses = new Set<string>();
  for (const peer of peers) {
    if (ids.has(peer.id)) return `lists replica ${peer.id} twice`;
    ids.add(peer.id);
    const key = formatPeerAddress(peer);
    if (addresses.has(key)) return `lists ${key} twice; every replica needs its own address`;
    addresses.add(key);
  }
  return peers.sort((a, b) => a.id - b.id);
}

/** Index id - 1: each listed replica's address; null where none has that id (the transports' form). */
export function peersById(peers: readonly ListedPeer[]): (PeerAddress | null)[] {
  const top = peers.reduce((max, peer) => Math.max(max, peer.id), 0);
  const out: (PeerAddress | null)[] = Array.from({ length: top }, () => null);
  for (const peer of peers) out[peer.id - 1] = { host: peer.host, port: peer.port };
  return out;
}

/** --peers as a configuration: every listed replica a voter (the bootstrap of a new cluster). */
export function membersOf(peers: readonly ListedPeer[]): Member[] {
  return peers.map((peer) => ({ id: peer.id, voter: true, address: formatPeerAddress(peer) }));
}

/** --peers written back in the stable-id form (for logs and the supervisor). */
export function formatPeerList(peers: readonly ListedPeer[]): string {
  return peers.map((peer) => `${peer.id}=${formatPeerAddress(peer)}`).join(",");
}

/** The replicas of a transports'-form list (index id - 1), as --peers lists them. */
export function listedPeers(peers: readonly (PeerAddress | null)[]): ListedPeer[] {
  return peers.flatMap((peer, index) => (peer === null ? [] : [{ id: index + 1, ...peer }]));
}

/** The transports' form as a sparse array: a hole, not null, where no replica has the id (ReplicaConfig.peers). */
export function sparsePeersById(peers: readonly ListedPeer[]): PeerAddress[] {
  const out: PeerAddress[] = [];
  for (const peer of peers) out[peer.id - 1] = { host: peer.host, port: peer.port };
  return out;
}
