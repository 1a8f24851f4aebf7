/**
 * The bootstrap configuration a replica started with, kept in its data directory
 * (`members.json`), so that a later restart with an edited --peers cannot rewrite history: the
 * configuration that governed slot 1 on is a fact of the log, like its entries. After that the
 * core's own history (the changes in the WAL, the snapshot's membership) rules; a --peers that
 * disagrees is logged, not used (MembershipAdmin.checkPeersFlag).
 *
 *  - A new cluster (no state, no --join): --peers is the bootstrap, every replica a voter.
 *  - --join (etcd's --initial-cluster-state existing for a new member): no configuration; the
 *    replica learns it from the log or a snapshot once a leader sends it (after apus member add).
 *    It refuses a data directory that holds another replica's state, or a cluster's it did not join.
 *  - A directory written before members.json existed (state, no file): --peers, as it always was.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { ApusError } from "../core/errors.ts";
import { type Member, membersProblem, sortedMembers } from "../core/membership.ts";
import { type ListedPeer, membersOf } from "./peer-list.ts";

export const MEMBERS_FILE = "members.json";
const MEMBERS_FORMAT = 1;

interface MembersFile {
  readonly format: number;
  readonly replicaId: number;
  readonly clusterId: number;
  /** The replica joined a running cluster (--join): it had no bootstrap configuration. */
  readonly joined: boolean;
  /** The bootstrap configuration; null when it joined. */
  readonly members: readonly Member[] | null;
}

export interface BootstrapInputs {
  readonly dataDir: string;
  /** fsync: the file lives in dataDir; memory: nothing is kept (and nothing read). */
  readonly durable: boolean;
  readonly id: number;
  readonly clusterId: number;
  readonly join: boolean;
  readonly peers: readonly ListedPeer[];
  /** The WAL recovered promises, votes or a snapshot (this directory ran before). */
  readonly hasState: boolean;
}

export interface Bootstrap {
  /** The core's bootstrap members (CoreOptions.members); null: join and learn them. */
  readonly members: readonly Member[] | null;
  /** Written now (first start of this directory), read back, or neither (memory). */
  readonly source: "written" | "read" | "memory";
}

function refuse(message: string): ApusError {
  return new ApusError("ERR_INVALID_CONFIG", message);
}

/** The bootstrap configuration for this start (see the comment at the top). */
export function bootstrapMembers(inputs: BootstrapInputs): Bootstrap {
  const fresh: MembersFile = {
    format: MEMBERS_FORMAT,
    replicaId: inputs.id,
    clusterId: inputs.clusterId,
    joined: inputs.join,
    members: inputs.join ? null : membersOf(inputs.peers),
  };
  if (!inputs.durable) return { members: fresh.members, source: "memory" };
  const path = join(inputs.dataDir, MEMBERS_FILE);
  const stored = existsSync(path) ? readMembersFile(path) : null;
  if (stored !== null) {
    if (stored.replicaId !== inputs.id || stored.clusterId !== inputs.clusterId)
      throw refuse(
        `--data-dir ${inputs.dataDir} holds replica ${stored.replicaId} of cluster id ${stored.clusterId} (${MEMBERS_FILE}), but this is replica ${inputs.id} of cluster id ${inputs.clusterId}: give it its own, empty data directory`,
      );
    if (inputs.join && !stored.joined)
      throw refuse(
        `--join: --data-dir ${inputs.dataDir} already holds the state of replica ${inputs.id} of a cluster it was created in, not one it joined; a replica joins with an empty data directory. Move the directory aside (or pick another --data-dir) to join as a new replica, or start without --join to run as that replica again`,
      );
    return { members: stored.members, source: "read" };
  }
  if (inputs.hasState && inputs.join)
    throw refuse(
      `--join: --data-dir ${inputs.dataDir} already holds write-ahead log state (from a cluster this replica did not join); a replica joins with an empty data directory. Move the directory aside or pick another --data-dir`,
    );
  writeMembersFile(inputs.dataDir, path, fresh);
  return { members: fresh.members, source: "written" };
}

function readMembersFile(path: string): MembersFile {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw refuse(
      `${path} cannot be read as JSON (${(error as Error).message}); restore it from a backup, or give this replica an empty data directory and add it anew (apus member add)`,
    );
  }
  const file = value as Partial<MembersFile> | null;
  const members = file?.members;
  const ok =
    file !== null &&
    typeof file === "object" &&
    file.format === MEMBERS_FORMAT &&
    Number.isInteger(file.replicaId) &&
    Number.isInteger(file.clusterId) &&
    typeof file.joined === "boolean" &&
    (members === null ||
      (Array.isArray(members) &&
        members.every(
          (m) =>
            typeof m === "object" &&
            m !== null &&
            Number.isInteger(m.id) &&
            typeof m.voter === "boolean" &&
            typeof m.address === "string",
        ) &&
        membersProblem(sortedMembers(members)) === null));
  if (!ok)
    throw refuse(
      `${path} is not a members file this version understands; restore it from a backup`,
    );
  return file as MembersFile;
}

/** Durably: written to a temporary file, renamed over, the directory synced (as the WAL's meta.json). */
function writeMembersFile(dir: string, path: string, file: MembersFile): void {
  const temp = `${path}.tmp`;
  writeFileSync(temp, `${JSON.stringify(file, null, 2)}\n`, { flush: true });
  renameSync(temp, path);
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
