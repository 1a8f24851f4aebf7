/**
 * Per-purpose peer keys, derived from the cluster secret(s) with HKDF-SHA256 (RFC 5869).
 *
 * Why derive instead of using the secret itself: one secret serves several uses (frame MACs, the
 * TCP handshake, later perhaps more), and a key used for two purposes lets a message of one be
 * replayed as the other. HKDF with an `info` naming the purpose gives independent keys, so a
 * handshake transcript can never verify as a frame nor the reverse; naming the cluster id too
 * keeps two clusters that share a secret by mistake from accepting each other's frames even if
 * the clusterId header check were skipped. The version lets a later format change its keys.
 *
 *   salt = "apus-smr/peer-keys/v1"                    (ASCII, fixed: RFC 5869 §3.1 allows a
 *                                                       non-secret constant salt)
 *   info = "apus-smr/v1/<purpose>/cluster=<clusterId>" (ASCII; purpose "frames", "handshake" or
 *                                                       "snapshots"; clusterId in decimal)
 *   key  = HKDF-SHA256(ikm = secret bytes as given, salt, info, L = PEER_KEY_BYTES)
 *
 * The secret bytes are the file's line as written (the hex text of `openssl rand -hex 32`, not
 * decoded): HKDF's extract step concentrates whatever entropy the line has.
 *
 * Key roll: the secret file holds one or two lines. Index 0 of each list, derived from the first
 * secret, signs; every index verifies, in order. Every replica must accept what every other
 * signs at each moment of a rolling restart, so a roll takes three rounds, one replica at a time
 * each: (1) `old` then `new` (sign old, accept both); (2) `new` then `old` (sign new, accept
 * both); (3) `new` alone, once no replica's count of frames accepted under the second key
 * (apus_peer_frames_second_key_total) grows any more. Going from `old` straight to `new, old`
 * would leave the replicas not yet restarted unable to read the restarted ones.
 */
import { hkdfSync } from "node:crypto";
import { assert } from "../core/errors.ts";
import { SECRET_BYTES_MIN } from "../limits.ts";

/** Bytes of every derived key: SHA-256's output, and HMAC-SHA256's natural key size. */
export const PEER_KEY_BYTES = 32;
/** Secrets accepted at once: the signing one and, during a roll, the one before it. */
export const PEER_SECRETS_MAX = 2;
/** Bumped when the derivation or what the keys protect changes incompatibly. */
export const PEER_KEYS_VERSION = 1;
export const PEER_KEYS_SALT = `apus-smr/peer-keys/v${PEER_KEYS_VERSION}`;

/** What each derived key is for: one key per purpose, never shared. */
export type PeerKeyPurpose = "frames" | "handshake" | "snapshots";

export interface PeerKeys {
  /** HMAC keys of transport frames. Index 0 signs; all verify, index 0 first. */
  readonly frames: readonly Uint8Array[];
  /** Keys of the TCP connection handshake. Index 0 signs; all verify, index 0 first. */
  readonly handshake: readonly Uint8Array[];
  /**
   * Keys the snapshot stream's per-connection keys are derived from (snapshot-stream-frame.ts),
   * with the handshake transcript of that connection. Index 0 signs; all verify.
   */
  readonly snapshots: readonly Uint8Array[];
}

/** The HKDF `info` of one purpose and cluster (exported for the known-answer tests). */
export function peerKeyInfo(purpose: PeerKeyPurpose, clusterId: number): string {
  return `apus-smr/v${PEER_KEYS_VERSION}/${purpose}/cluster=${clusterId}`;
}

/** One derived key. */
export function derivePeerKey(
  secret: Uint8Array,
  purpose: PeerKeyPurpose,
  clusterId: number,
): Uint8Array {
  assert(secret.byteLength >= SECRET_BYTES_MIN, "peer secret shorter than SECRET_BYTES_MIN");
  assert(Number.isInteger(clusterId) && clusterId >= 0 && clusterId <= 0xffff_ffff, "clusterId");
  const key = hkdfSync(
    "sha256",
    secret,
    PEER_KEYS_SALT,
    peerKeyInfo(purpose, clusterId),
    PEER_KEY_BYTES,
  );
  return new Uint8Array(key);
}

/**
 * Every purpose's keys from the cluster secrets (1..PEER_SECRETS_MAX, the signing one first).
 * The secrets were validated at the edge (replica-runner.ts reads --secret-file), so a bad list
 * here is a programmer error.
 */
export function derivePeerKeys(secrets: readonly Uint8Array[], clusterId: number): PeerKeys {
  assert(
    secrets.length >= 1 && secrets.length <= PEER_SECRETS_MAX,
    `1 to ${PEER_SECRETS_MAX} peer secrets`,
  );
  return {
    frames: secrets.map((secret) => derivePeerKey(secret, "frames", clusterId)),
    handshake: secrets.map((secret) => derivePeerKey(secret, "handshake", clusterId)),
    snapshots: secrets.map((secret) => derivePeerKey(secret, "snapshots", clusterId)),
  };
}
