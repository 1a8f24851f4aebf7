/**
 * The limits and defaults that more than one module shares, in one place (after TigerBeetle's
 * constants.zig): the settings table (src/runtime/config.ts), the core's defaults
 * (src/core/config.ts), the store, the transport and the command line all take them from here, so
 * a number is written once. A limit that only one module knows stays beside its code. The
 * relations between them are checked when this module loads: a change that breaks one fails at
 * once, in every process and test.
 *
 * Names put the qualifier last (`BATCH_BYTES_MAX`, not `MAX_BATCH_BYTES`), sizes are in bytes,
 * times carry their unit (`_MS`, `_US`: µs is always spelled `Us`). This file imports nothing, so
 * every layer, the pure core included, may import it.
 */

export const KIB = 1024;
export const MIB = 1024 * KIB;

// ---- the cluster ------------------------------------------------------------------------------

/** Largest cluster the core accepts: votes are tracked in a 32-bit mask. */
export const REPLICA_COUNT_MAX = 31;
/** Largest cluster the local launchers start on one machine (`npm start`, the chaos runs). */
export const LOCAL_REPLICA_COUNT_MAX = 9;
/** Shortest cluster key (--secret-file) accepted: 128 bits. */
export const SECRET_BYTES_MIN = 16;

// ---- consensus --------------------------------------------------------------------------------

/** Client requests per consensus slot (--batch-max-commands). */
export const BATCH_COMMANDS_MAX_DEFAULT = 1024;
/** Command bytes per consensus slot (--batch-max-bytes); one larger command still gets a slot. */
export const BATCH_BYTES_MAX_DEFAULT = 256 * KIB;
/** Slots in flight at once (--window). */
export const WINDOW_SLOTS_DEFAULT = 32;
/**
 * A membership change chosen in slot c governs the slots from c + this on (src/core/membership.ts),
 * and a leader proposes slot s only once s - this is chosen. A protocol constant: every replica of
 * a cluster must use the same one (it is part of the wire version). Twice the default window, so
 * the rule does not limit pipelining unless slots are chosen far out of order.
 */
export const MEMBERSHIP_LAG_SLOTS = 64;
/**
 * A learner is promoted to voter only while it trails the leader by at most this many slots
 * (--promote-lag-slots): a voter far behind stalls writes whenever its vote is needed. Twice the
 * membership lag: a learner that keeps up with a busy leader is within a few windows of it.
 */
export const PROMOTE_LAG_SLOTS_DEFAULT = 2 * MEMBERSHIP_LAG_SLOTS;
/** Leader heartbeat interval (--heartbeat-ms). */
export const HEARTBEAT_MS_DEFAULT = 50;
/** Election timeout lower bound (--election-timeout-ms). */
export const ELECTION_TIMEOUT_MS_DEFAULT = 500;
/** Longest peer message, bytes (a snapshot is sent in pieces of at most this). */
export const MESSAGE_BYTES_MAX_DEFAULT = 16 * MIB;
/** Upper bound on the message limit: reassembly and TCP frames allocate up to this per message. */
export const MESSAGE_BYTES_MAX_LIMIT = 256 * MIB;

// ---- clients and requests ---------------------------------------------------------------------

/** Largest client request, one command with its arguments (--max-request-bytes). */
export const REQUEST_BYTES_MAX_DEFAULT = 16 * MIB;
/** Largest value the embedded store keeps (--max-value-bytes). */
export const VALUE_BYTES_MAX_DEFAULT = 8 * MIB;
/** Largest reply of one command (--max-reply-bytes): eight of the largest default values. */
export const REPLY_BYTES_MAX_DEFAULT = 64 * MIB;
/**
 * Replies to one client request (its pipelined commands) held at once: 1,024 pipelined GETs of
 * 8 MiB values must not make the replica build 8 GiB. Redis caps this per client too
 * (client-output-buffer-limit).
 */
export const REQUEST_REPLY_BYTES_MAX = 64 * MIB;
/** A request not committed within this time fails with an error (--request-timeout-ms). */
export const REQUEST_TIMEOUT_MS_DEFAULT = 5000;
export const REQUEST_TIMEOUT_MS_MAX = 600_000;
/**
 * A blocked command (BLPOP, XREAD BLOCK, …) of the embedded store ends with an error once its
 * origin replica has not been heard from in the log for this long (--block-lease-ms), instead of
 * taking an element for a client that may be gone. Longer than an election and a request
 * timeout, so a live replica's clients are not ended by a leader change.
 */
export const BLOCK_LEASE_MS_DEFAULT = 15_000;
export const BLOCK_LEASE_MS_MIN = 100;
/** Client connections per replica (--max-clients). */
export const CLIENTS_MAX_DEFAULT = 10_000;
/** Requests waiting for consensus at one replica (--max-pending). */
export const PENDING_REQUESTS_MAX_DEFAULT = 100_000;

// ---- log compaction ---------------------------------------------------------------------------

/** Command bytes applied between snapshots (--snapshot-every-bytes). */
export const SNAPSHOT_EVERY_BYTES_DEFAULT = 64 * MIB;
/** A snapshot is also taken after this many slots, however small their commands. */
export const SNAPSHOT_EVERY_SLOTS = 100_000;
/**
 * Chosen slots a replica keeps in memory below its newest snapshot (at most this many, holding at
 * most COMPACTION_TAIL_BYTES_DEFAULT of commands), so a peer a little behind at the moment of
 * compaction is sent those entries rather than the whole snapshot (etcd keeps 5,000 entries for
 * the same reason). The tail lives in memory only: a restarted replica starts without one.
 */
export const COMPACTION_TAIL_SLOTS_DEFAULT = 1024;
export const COMPACTION_TAIL_BYTES_DEFAULT = 16 * MIB;

/**
 * Under --app, command bytes the uncompacted log may hold (--app-log-max-bytes): the core keeps
 * the log in memory until a snapshot, and a program's copy has none yet.
 */
export const APP_LOG_BYTES_MAX_DEFAULT = 1024 * MIB;

// ---- threads ----------------------------------------------------------------------------------

/** Busy-poll of an empty ring before a thread parks on its doorbell (--ring-spin-us). */
export const RING_SPIN_US_DEFAULT = 20;
/** Longest busy-poll: beyond it a thread burns a core for nothing a wake-up would not give. */
export const RING_SPIN_US_MAX = 1_000;

// ---- relations, checked at load ---------------------------------------------------------------

function check(holds: boolean, relation: string): void {
  if (!holds) throw new Error(`src/limits.ts: ${relation} does not hold`);
}

check(REPLICA_COUNT_MAX < 32, "REPLICA_COUNT_MAX < 32 (a vote mask is 32 bits)");
check(LOCAL_REPLICA_COUNT_MAX <= REPLICA_COUNT_MAX, "LOCAL_REPLICA_COUNT_MAX <= REPLICA_COUNT_MAX");
check(
  VALUE_BYTES_MAX_DEFAULT <= REQUEST_BYTES_MAX_DEFAULT,
  "VALUE_BYTES_MAX_DEFAULT <= REQUEST_BYTES_MAX_DEFAULT (a value arrives inside a request)",
);
check(
  REQUEST_BYTES_MAX_DEFAULT <= MESSAGE_BYTES_MAX_DEFAULT,
  "REQUEST_BYTES_MAX_DEFAULT <= MESSAGE_BYTES_MAX_DEFAULT (a request travels in one peer message)",
);
check(
  BATCH_BYTES_MAX_DEFAULT <= MESSAGE_BYTES_MAX_DEFAULT,
  "BATCH_BYTES_MAX_DEFAULT <= MESSAGE_BYTES_MAX_DEFAULT",
);
check(
  MESSAGE_BYTES_MAX_DEFAULT <= MESSAGE_BYTES_MAX_LIMIT,
  "MESSAGE_BYTES_MAX_DEFAULT <= MESSAGE_BYTES_MAX_LIMIT",
);
check(
  REPLY_BYTES_MAX_DEFAULT <= REQUEST_REPLY_BYTES_MAX,
  "REPLY_BYTES_MAX_DEFAULT <= REQUEST_REPLY_BYTES_MAX (one command's reply fits its request's)",
);
check(
  HEARTBEAT_MS_DEFAULT * 2 <= ELECTION_TIMEOUT_MS_DEFAULT,
  "HEARTBEAT_MS_DEFAULT * 2 <= ELECTION_TIMEOUT_MS_DEFAULT (followers hear a leader in time)",
);
check(
  REQUEST_TIMEOUT_MS_DEFAULT > ELECTION_TIMEOUT_MS_DEFAULT * 2,
  "REQUEST_TIMEOUT_MS_DEFAULT > 2 * ELECTION_TIMEOUT_MS_DEFAULT (a request outlives one election)",
);
check(
  REQUEST_TIMEOUT_MS_DEFAULT <= REQUEST_TIMEOUT_MS_MAX,
  "REQUEST_TIMEOUT_MS_DEFAULT <= REQUEST_TIMEOUT_MS_MAX",
);
check(RING_SPIN_US_DEFAULT <= RING_SPIN_US_MAX, "RING_SPIN_US_DEFAULT <= RING_SPIN_US_MAX");
