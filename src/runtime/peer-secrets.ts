/**
 * The cluster secrets from --secret-file: the keys peer frames and the TCP handshake are
 * authenticated with are derived from them (src/transport/peer-keys.ts).
 *
 * There is no built-in key: a replica of a multi-replica cluster refuses to start without
 * --secret-file, since a key everyone can read lets anyone who reaches the peer port forge
 * Promises and Accepts. A single replica has no peers, so it makes a random key per run.
 *
 * File format: one key per line, the line's bytes as written (typically the 64 hex characters
 * of `openssl rand -hex 32`), surrounding white space and blank lines ignored. One line, or two
 * during a key roll: the first signs, both are accepted.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { ApusError } from "../core/errors.ts";
import { SECRET_BYTES_MIN } from "../limits.ts";
import { PEER_SECRETS_MAX } from "../transport/peer-keys.ts";
import type { ReplicaConfig } from "./config.ts";

/** Bytes of the random key of a replica that needs none from a file. */
const RANDOM_SECRET_BYTES = 32;

function invalid(message: string): ApusError {
  return new ApusError("ERR_INVALID_CONFIG", message);
}

/** The secrets this replica uses, the signing one first. Throws ERR_INVALID_CONFIG saying what to do. */
export function readPeerSecrets(config: Pick<ReplicaConfig, "secretFile" | "peers">): Uint8Array[] {
  if (config.secretFile === null) {
    if (config.peers.length > 1)
      throw invalid(
        `a cluster of ${config.peers.length} replicas needs a shared key for its peers: run \`openssl rand -hex 32 > cluster.secret\`, copy the file to every replica and pass --secret-file cluster.secret to each (npm start makes one)`,
      );
    return [randomBytes(RANDOM_SECRET_BYTES)];
  }
  return parseSecretFile(config.secretFile, readSecretFile(config.secretFile));
}

/**
 * A warning when the secret file's mode lets its group or others at it (mode & 0o077), naming the
 * file and the fix, or null; logged once at start, not refused, as client-auth.ts's
 * authFileWarnings does for the password files. Whoever reads the key can forge peer frames.
 */
export function secretFileWarning(config: Pick<ReplicaConfig, "secretFile">): string | null {
  const file = config.secretFile;
  if (file === null) return null;
  let mode: number;
  try {
    mode = statSync(file).mode & 0o777;
  } catch {
    return null; // readPeerSecrets' error to give
  }
  if ((mode & 0o077) === 0) return null;
  const octal = mode.toString(8).padStart(4, "0");
  return `--secret-file ${file} is open to group or others (mode ${octal}) and holds the cluster key; run chmod 600 ${file}`;
}

function readSecretFile(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new ApusError(
      "ERR_INVALID_CONFIG",
      `--secret-file: cannot read ${file}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** The keys in a secret file's contents (exported for the tests). */
export function parseSecretFile(file: string, contents: Uint8Array): Uint8Array[] {
  const lines = Buffer.from(contents)
    .toString("latin1")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  const example = `openssl rand -hex 32 > ${file}`;
  if (lines.length === 0) throw invalid(`--secret-file: ${file} holds no key; e.g. ${example}`);
  if (lines.length > PEER_SECRETS_MAX)
    throw invalid(
      `--secret-file: ${file} holds ${lines.length} keys; it holds one, or ${PEER_SECRETS_MAX} during a key roll (the first signs, the second is still accepted)`,
    );
  return lines.map((line, index) => {
    const key = Buffer.from(line, "latin1");
    if (key.byteLength < SECRET_BYTES_MIN)
      throw invalid(
        `--secret-file: line ${index + 1} of ${file} holds ${key.byteLength} bytes; a key needs at least ${SECRET_BYTES_MIN} (e.g. ${example})`,
      );
    return key;
  });
}
