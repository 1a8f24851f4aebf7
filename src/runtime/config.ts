import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { ApusError } from "../core/errors.ts";
import {
  APP_LOG_BYTES_MAX_DEFAULT,
  BATCH_BYTES_MAX_DEFAULT,
  BATCH_COMMANDS_MAX_DEFAULT,
  BLOCK_LEASE_MS_DEFAULT,
  BLOCK_LEASE_MS_MIN,
  CLIENTS_MAX_DEFAULT,
  COMPACTION_TAIL_BYTES_DEFAULT,
  COMPACTION_TAIL_SLOTS_DEFAULT,
  ELECTION_TIMEOUT_MS_DEFAULT,
  HEARTBEAT_MS_DEFAULT,
  KIB,
  MESSAGE_BYTES_MAX_LIMIT,
  MIB,
  PENDING_REQUESTS_MAX_DEFAULT,
  PROMOTE_LAG_SLOTS_DEFAULT,
  REPLICA_COUNT_MAX,
  REPLY_BYTES_MAX_DEFAULT,
  REQUEST_BYTES_MAX_DEFAULT,
  REQUEST_TIMEOUT_MS_DEFAULT,
  REQUEST_TIMEOUT_MS_MAX,
  RING_SPIN_US_DEFAULT,
  RING_SPIN_US_MAX,
  SNAPSHOT_EVERY_BYTES_DEFAULT,
  SNAPSHOT_EVERY_SLOTS,
  VALUE_BYTES_MAX_DEFAULT,
  WINDOW_SLOTS_DEFAULT,
} from "../limits.ts";
import {
  SNAPSHOT_CHUNK_BYTES_DEFAULT,
  SNAPSHOT_CHUNK_BYTES_MAX,
  SNAPSHOT_CHUNK_BYTES_MIN,
  SNAPSHOT_MEMORY_BYTES_MAX_DEFAULT,
  SNAPSHOT_STALL_TIMEOUT_MS_DEFAULT,
} from "../transport/snapshot-stream.ts";
import { type ListedPeer, parsePeerList, sparsePeersById } from "./peer-list.ts";

/**
 * Every setting of a replica, in one table: the flag, the JSON key in --config, the default, the
 * help line. Flags win over the file; the file wins over defaults. Checked once, here, at the
 * edge: a bad value stops the process with one line that names the setting.
 */
export interface ReplicaConfig {
  /** This replica's stable id, 1..REPLICA_ID_MAX (its ID in --peers; a position in the old form). */
  readonly id: number;
  /**
   * Index id - 1: the peer address of each replica --peers names. Sparse: an id it does not name
   * is a hole (indexing gives undefined, which noUncheckedIndexedAccess makes every reader
   * handle; forEach, map, flatMap and filter skip it; do not spread or for-of it: use
   * listedPeers). The bootstrap configuration of a new cluster, and whom a replica dials at
   * start; after that the configuration in the log rules (src/core/membership.ts,
   * bootstrap-members.ts).
   */
  readonly peers: readonly PeerAddress[];
  /**
   * Start as a new member of a running cluster (etcd's --initial-cluster-state existing for a
   * new member): no configuration of its own; it learns one from the log once `apus member add`
   * made it a learner. Needs an empty data directory.
   */
  readonly join: boolean;
  /** A learner further behind the leader than this many slots is not promoted to voter. */
  readonly promoteLagSlots: number;
  readonly clientHost: string;
  readonly clientPort: number;
  readonly adminHost: string;
  /** 0 turns the admin HTTP server off. */
  readonly adminPort: number;
  /**
   * Which admin requests need HTTP Basic authentication when client users are configured
   * (--requirepass-file, --users-file): the state-changing ones (an admin-role user), those and
   * the reads (any user, for reads), or none. Without users it changes nothing.
   */
  readonly adminAuth: "writes" | "all" | "none";
  readonly workers: number;
  readonly dataDir: string;
  readonly durability: "fsync" | "memory";
  /**
   * What a replica that starts with no durable state is: a member of a cluster being created now
   * ("new": it may vote at once), or of one that already ran ("existing": it lost its state and
   * recovers from every other replica before it votes). Ignored when the WAL holds state.
   */
  readonly initialClusterState: "new" | "existing";
  /**
   * How read-only requests of the embedded store are served: "index" at a read index confirmed
   * by a heartbeat round (no log entry, no fsync); "log" through the log like writes.
   */
  readonly reads: "index" | "log";
  readonly batchBytesMax: number;
  readonly batchCommandsMax: number;
  /** adaptive: a slot in flight makes the next wait for a batch as big as the last one. */
  readonly batching: "adaptive" | "eager";
  readonly window: number;
  readonly heartbeatMs: number;
  readonly electionTimeoutMs: number;
  /** "shm" only for replicas that are threads of one process (dist/thread-cluster.js). */
  readonly transport: "udp" | "tcp" | "shm";
  /** One or two peer keys, one per line: the first signs, either is accepted (a key roll). */
  readonly secretFile: string | null;
  /**
   * Mutual TLS between peers (--transport tcp only): this replica's certificate and key, and the
   * CA that signed every replica's certificate. All three or none.
   */
  readonly peerTlsCert: string | null;
  readonly peerTlsKey: string | null;
  readonly peerTlsCa: string | null;
  /** A TCP peer connection that has not finished its handshake in this time is closed. */
  readonly peerHandshakeTimeoutMs: number;
  /**
   * SO_RCVBUF asked for the UDP peer socket, bytes; 0: the transport's own (4 MiB, capped by the
   * kernel's net.core.rmem_max). Tests set it small to show snapshots still arrive.
   */
  readonly peerRecvBufferBytes: number;
  /**
   * The snapshot stream (src/transport/snapshot-stream.ts) listens on TCP at each replica's
   * --peers port + this. 0 under UDP: the same port number. Under --transport tcp, 0 turns the
   * stream off (snapshots ride the transport's connection); any other value turns it on.
   */
  readonly snapshotPortOffset: number;
  /** Bytes of a snapshot per stream chunk. */
  readonly snapshotChunkBytes: number;
  /** A snapshot stream connection without progress this long is closed; it resumes on a new one. */
  readonly snapshotStallTimeoutMs: number;
  /** Largest snapshot transfer a replica without a data directory holds in memory. */
  readonly snapshotMemoryBytesMax: number;
  /** Client authentication: the default user's password (AUTH password), or null: none. */
  readonly requirepassFile: string | null;
  /** Client authentication: named users with a password and a role, one per line; or null. */
  readonly usersFile: string | null;
  /** TLS on the client port: certificate and key (PEM); both or neither. */
  readonly tlsCert: string | null;
  readonly tlsKey: string | null;
  /** With --tls-cert: CA whose client certificates are required; null: none asked for. */
  readonly tlsCa: string | null;
  readonly clusterId: number;
  readonly requestTimeoutMs: number;
  readonly requestBytesMax: number;
  readonly valueBytesMax: number;
  /** Largest reply one command may produce (MGET, LRANGE, KEYS, …), checked before it is built. */
  readonly replyBytesMax: number;
  /**
   * The embedded store's memory limit (Redis's maxmemory), in its own accounting of keys and
   * values; past it, commands that may add data get -OOM. 0: no limit.
   */
  readonly memoryBytesMax: number;
  /** How long a blocked command of the embedded store outlives the last word from its replica. */
  readonly blockLeaseMs: number;
  readonly clientsMax: number;
  readonly pendingRequestsMax: number;
  /** Command bytes applied since the last snapshot that trigger the next one (log compaction). */
  readonly snapshotEveryBytes: number;
  /** Chosen slots kept in memory below each snapshot, for peers a little behind (0: none). */
  readonly compactionTailSlots: number;
  /** Busy-poll of an empty ring before a thread parks on its doorbell, µs. */
  readonly ringSpinUs: number;
  /**
   * Transparent mode: the command line of the server program each replica runs its own copy of
   * ({port}, {dir}, {host}, {id} filled in), fronted by the client port; null: the embedded store.
   */
  readonly app: string | null;
  /**
   * With --app: a command that makes the program write its state to {dir} (redis-cli -p {port}
   * SAVE); the files it leaves are the checkpoint that lets the log be compacted. null: none.
   */
  readonly checkpoint: string | null;
  /** How client streams (and the program's replies) are cut into requests under --app. */
  readonly protocol: "resp" | "memcache" | "raw";
  /**
   * Under --app the log cannot be compacted (a program's state cannot be read out yet), so it is
   * bounded: past this many command bytes the replica refuses new requests with an error.
   */
  readonly appLogBytesMax: number;
  readonly logLevel: "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";
  readonly logFormat: "json" | "pretty";
}

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/** "flag": a boolean, given without a value (--join); true or false in --config. */
type Kind = "int" | "size" | "string" | "peers" | "choice" | "flag";

interface Setting {
  readonly key: keyof ReplicaConfig;
  readonly flag: string;
  readonly kind: Kind;
  readonly choices?: readonly string[];
  readonly min?: number;
  readonly max?: number;
  /** The camelCase key this setting had before it was renamed; still read from --config files. */
  readonly formerKey?: string;
  /**
   * Shown in --help where the default is not a plain value of DEFAULTS (it depends on the machine
   * or other settings, or is "off"); otherwise --help prints DEFAULTS' own value.
   */
  readonly defaultText?: string;
  readonly help: string;
}

/**
 * Connection workers for a replica that has `cores` cores to itself: one core is the consensus
 * thread's, the rest (at most 4) serve clients. With no core to spare (0) the clients are served on
 * the consensus thread itself: a connection worker then only adds two cross-thread wake-ups per
 * request and a thread that waits for a core (bench/results/workers-0-2026-11-29.md).
 */
export function workersForCores(cores: number): number {
  return Math.max(0, Math.min(4, Math.floor(cores) - 1));
}

export function defaultWorkers(): number {
  return workersForCores(availableParallelism());
}

/** A byte count as the size flags take it: 262144 → "256k", 16777216 → "16m". */
export function sizeText(bytes: number): string {
  if (bytes % MIB === 0) return `${bytes / MIB}m`;
  if (bytes % KIB === 0) return `${bytes / KIB}k`;
  return String(bytes);
}

export const SETTINGS: readonly Setting[] = [
  {
    key: "id",
    flag: "id",
    kind: "int",
    min: 1,
    max: REPLICA_COUNT_MAX,
    defaultText: "(required)",
    help: "this replica's stable id, 1..31: its ID in --peers (or, in the positional form, its position)",
  },
  {
    key: "peers",
    flag: "peers",
    kind: "peers",
    defaultText: "(required)",
    help: "the replicas' peer (transport) addresses with their stable ids, ID=host:port,ID=host:port,... (this replica's own included); or host:port,... in id order (position = id). For a new cluster, its first configuration (all voters), kept in the data directory; later the configuration in the log rules (apus member changes it) and a --peers that differs is only logged",
  },
  {
    key: "join",
    flag: "join",
    kind: "flag",
    defaultText: "off",
    help: "start as a NEW member of a running cluster (etcd's --initial-cluster-state existing): with an empty data directory and --peers naming the members and itself, it votes for nothing until it learns the configuration from the log, once the leader added it (apus member add ID HOST:PORT); if that configuration already names its id a voter (a machine that ran under this id and lost its data), it recovers from every member before it votes. Refused when the data directory holds state",
  },
  {
    key: "promoteLagSlots",
    flag: "promote-lag-slots",
    kind: "int",
    min: 0,
    max: 1 << 30,
    help: "apus member promote (and replace) refuses to make a learner a voter while it trails the leader by more than this many slots: a voter that is far behind can stall writes until it catches up",
  },
  {
    key: "clientHost",
    flag: "client-host",
    kind: "string",
    help: "address clients connect to (0.0.0.0 for every interface)",
  },
  {
    key: "clientPort",
    flag: "client-port",
    kind: "int",
    min: 1,
    max: 65535,
    help: "Redis-protocol port for clients",
  },
  {
    key: "adminHost",
    flag: "admin-host",
    kind: "string",
    help: "address of the admin HTTP server (/metrics, /status, POST /leader/transfer). Without client users (--requirepass-file, --users-file) it has no authentication: whoever reaches it can read the cluster's state and move leadership, so keep it on 127.0.0.1 or a private network",
  },
  {
    key: "adminPort",
    flag: "admin-port",
    kind: "int",
    min: 0,
    max: 65535,
    defaultText: "0 (off)",
    help: "port of the admin HTTP server",
  },
  {
    key: "adminAuth",
    flag: "admin-auth",
    kind: "choice",
    choices: ["writes", "all", "none"],
    help: "with client users (--requirepass-file, --users-file), which admin requests need HTTP Basic authentication: writes (POST /leader/transfer, POST /members, /latency?reset=1; an admin-role user, the requirepass user is named default), all (also GET /metrics, /status, /latency; any user), none (as without users). Without users it changes nothing: the admin port is unauthenticated",
  },
  {
    key: "workers",
    flag: "workers",
    kind: "int",
    min: 0,
    max: 64,
    defaultText: `${defaultWorkers()} (cores - 1, 0..4)`,
    help: "connection worker threads sharing the client port (needs Node >= 22.12); 0 serves clients on the consensus thread, no ring hop or wake-up between threads: best where a connection worker would not get a core of its own",
  },
  {
    key: "dataDir",
    flag: "data-dir",
    kind: "string",
    defaultText: "./data/replica-<id>",
    help: "directory of the write-ahead log",
  },
  {
    key: "durability",
    flag: "durability",
    kind: "choice",
    choices: ["fsync", "memory"],
    help: "fsync: survives the loss of every replica at once; memory: no disk, survives only minority failures",
  },
  {
    key: "initialClusterState",
    flag: "initial-cluster-state",
    kind: "choice",
    choices: ["new", "existing"],
    help: "for a replica that starts with no durable state (first start, memory durability, a wiped data directory): new = the cluster is being created now, vote at once; existing = the cluster ran before, recover from every other replica before voting (use it whenever such a replica ran before: a memory-mode restart, a replaced disk)",
  },
  {
    key: "reads",
    flag: "reads",
    kind: "choice",
    choices: ["index", "log"],
    help: "read-only requests of the embedded store (GET, MGET, EXISTS, HGET, LRANGE, …): index = served by the replica that took them once a majority confirmed the leader (ReadIndex: linearizable, no log entry, no fsync); log = through the log like writes",
  },
  {
    key: "batchBytesMax",
    formerKey: "batchMaxBytes",
    flag: "batch-max-bytes",
    kind: "size",
    min: 1,
    max: 64 * MIB,
    help: "command bytes per consensus slot (one larger command still gets a slot)",
  },
  {
    key: "batching",
    flag: "batching",
    kind: "choice",
    choices: ["adaptive", "eager"],
    help: "adaptive = while a slot is in flight, the next starts only once as many requests wait as the last slot carried (batches grow with load: fewer rounds, fewer fsyncs and sends per request); eager = every request that arrives starts a slot as soon as the window allows",
  },
  {
    key: "batchCommandsMax",
    formerKey: "batchMaxCommands",
    flag: "batch-max-commands",
    kind: "int",
    min: 1,
    max: 1 << 20,
    help: "client requests per consensus slot (1 turns batching off)",
  },
  {
    key: "window",
    flag: "window",
    kind: "int",
    min: 1,
    max: 4096,
    help: "consensus slots in flight at once (pipelining)",
  },
  {
    key: "heartbeatMs",
    flag: "heartbeat-ms",
    kind: "int",
    min: 1,
    max: 60_000,
    help: "leader heartbeat interval",
  },
  {
    key: "electionTimeoutMs",
    flag: "election-timeout-ms",
    kind: "int",
    min: 2,
    max: 600_000,
    help: "a follower that hears no leader for [T, 2T) starts an election",
  },
  {
    key: "transport",
    flag: "transport",
    kind: "choice",
    choices: ["udp", "tcp", "shm"],
    help: "peer transport; shm (shared memory, no kernel) only joins replicas run as threads of one process by dist/thread-cluster.js",
  },
  {
    key: "secretFile",
    flag: "secret-file",
    kind: "string",
    defaultText: "(required with more than one replica; npm start makes one)",
    help: "file holding the cluster key that authenticates peer packets (HMAC-SHA256 under keys derived from it), at least 16 bytes, e.g. openssl rand -hex 32 > FILE. A second line holds a second key during a key roll: the first line signs, either is accepted",
  },
  {
    key: "peerTlsCert",
    flag: "peer-tls-cert",
    kind: "string",
    defaultText: "(none)",
    help: "with --transport tcp: this replica's TLS certificate (PEM) for mutual TLS between peers, which encrypts peer traffic (client data included); needs --peer-tls-key and --peer-tls-ca",
  },
  {
    key: "peerTlsKey",
    flag: "peer-tls-key",
    kind: "string",
    defaultText: "(none)",
    help: "with --peer-tls-cert: its private key (PEM)",
  },
  {
    key: "peerTlsCa",
    flag: "peer-tls-ca",
    kind: "string",
    defaultText: "(none)",
    help: "with --peer-tls-cert: the CA (PEM) that signed every replica's certificate; a peer without one is refused",
  },
  {
    key: "peerHandshakeTimeoutMs",
    flag: "peer-handshake-timeout-ms",
    kind: "int",
    min: 10,
    max: 600_000,
    help: "with --transport tcp: a peer connection that has not authenticated within this time is closed (bounds what an unauthenticated host can hold)",
  },
  {
    key: "peerRecvBufferBytes",
    flag: "peer-recv-buffer-bytes",
    kind: "size",
    min: 0,
    max: 1024 * MIB,
    defaultText: "0 (the UDP transport asks for 4m; the kernel caps it at net.core.rmem_max)",
    help: "SO_RCVBUF of the UDP peer socket. Small buffers drop bursts (Paxos resends); snapshots do not depend on it: they travel on the snapshot stream (TCP)",
  },
  {
    key: "snapshotPortOffset",
    flag: "snapshot-port-offset",
    kind: "int",
    min: 0,
    max: 65534,
    defaultText: "0 (the --peers port, over TCP)",
    help: "the snapshot stream (a far-behind replica is sent the snapshot over TCP, in chunks, resuming after a break) listens on each replica's --peers port + this, over TCP. With --transport tcp that port is the transport's: 0 then keeps snapshots on the transport's connection (one message, at most 256 MiB), and another value, the same on every replica, starts the stream there",
  },
  {
    key: "snapshotChunkBytes",
    flag: "snapshot-chunk-bytes",
    kind: "size",
    min: SNAPSHOT_CHUNK_BYTES_MIN,
    max: SNAPSHOT_CHUNK_BYTES_MAX,
    help: "bytes of a snapshot per chunk of the snapshot stream (each is MACed and acknowledged)",
  },
  {
    key: "snapshotStallTimeoutMs",
    flag: "snapshot-stall-timeout-ms",
    kind: "int",
    min: 100,
    max: 600_000,
    help: "a snapshot stream connection that moves nothing this long is closed; the sender connects again and resumes at what the receiver holds",
  },
  {
    key: "snapshotMemoryBytesMax",
    flag: "snapshot-memory-max-bytes",
    kind: "size",
    min: MIB,
    max: 64 * 1024 * MIB,
    help: "with --durability memory (no data directory): the largest snapshot transfer held in memory while it arrives; a larger one is refused and counted. With a data directory partial transfers go to disk, with no limit but the disk",
  },
  {
    key: "requirepassFile",
    flag: "requirepass-file",
    kind: "string",
    defaultText: "(none: clients need no password)",
    help: "file holding the password clients give with AUTH (redis-cli -a, ioredis password); until then every command but AUTH, HELLO, QUIT gets -NOAUTH, and a request may hold at most 10 arguments and 64 KiB. The default user has every right. Not with --protocol memcache or raw (they have no AUTH)",
  },
  {
    key: "usersFile",
    flag: "users-file",
    kind: "string",
    defaultText: "(none)",
    help: "file of named client users, one per line: NAME ROLE PASSWORD (# starts a comment), ROLE one of read-only (commands that change no key), read-write (not FLUSHALL, FLUSHDB, CONFIG SET/RESETSTAT; with --app also none of redis-server's admin commands: DEBUG, SHUTDOWN, CLIENT KILL…) or admin; clients log in with AUTH NAME PASSWORD (redis-cli --user/--pass, ioredis username). Implies authentication",
  },
  {
    key: "tlsCert",
    flag: "tls-cert",
    kind: "string",
    defaultText: "(none: plain TCP)",
    help: "TLS on the client port: the certificate (PEM); the port then speaks only TLS (redis-cli --tls); needs --tls-key",
  },
  {
    key: "tlsKey",
    flag: "tls-key",
    kind: "string",
    defaultText: "(none)",
    help: "with --tls-cert: its private key (PEM)",
  },
  {
    key: "tlsCa",
    flag: "tls-ca",
    kind: "string",
    defaultText: "(none: no client certificate asked for)",
    help: "with --tls-cert: clients must present a certificate signed by this CA (PEM)",
  },
  {
    key: "clusterId",
    flag: "cluster-id",
    kind: "int",
    min: 0,
    max: 0xffff_ffff,
    help: "packets and data dirs of another cluster id are refused",
  },
  {
    key: "requestTimeoutMs",
    flag: "request-timeout-ms",
    kind: "int",
    min: 1,
    max: REQUEST_TIMEOUT_MS_MAX,
    help: "a request not committed within this time (e.g. no leader) fails with an error",
  },
  {
    key: "requestBytesMax",
    formerKey: "maxRequestBytes",
    flag: "max-request-bytes",
    kind: "size",
    min: 1 * KIB,
    max: MESSAGE_BYTES_MAX_LIMIT,
    help: "largest client request (one command with all its arguments)",
  },
  {
    key: "valueBytesMax",
    formerKey: "maxValueBytes",
    flag: "max-value-bytes",
    kind: "size",
    min: 1,
    max: 256 * MIB,
    help: "largest value the embedded store keeps. A command with a longer argument is refused by the replica that received it, with the store's own error, before it is proposed: it is never logged. Must be the same on every replica: it decides which writes succeed",
  },
  {
    key: "replyBytesMax",
    formerKey: "maxReplyBytes",
    flag: "max-reply-bytes",
    kind: "size",
    min: 1024,
    max: 2 ** 31 - 1,
    help: "largest reply of one command (MGET, LRANGE, KEYS, ...); larger ones get an error instead. Must be the same on every replica (LPOP, GETSET refuse before they change anything)",
  },
  {
    key: "memoryBytesMax",
    flag: "max-memory",
    kind: "size",
    min: 0,
    defaultText: "(default: 0, no limit)",
    help: "the embedded store's maxmemory: once its data takes more than this, a command that may add data (Redis's denyoom ones: SET, LPUSH, HSET, ZADD, ...) gets -OOM while reads, DEL and the other removals still work. What counts is the store's own accounting of its keys and values (each key's name and value and a fixed overhead per key and element: INFO used_memory), not the process's heap, so every replica refuses the same commands; leave the process room beyond it. There is no eviction (maxmemory-policy noeviction). Must be the same on every replica",
  },
  {
    key: "blockLeaseMs",
    flag: "block-lease-ms",
    kind: "int",
    min: BLOCK_LEASE_MS_MIN,
    max: 24 * 60 * 60 * 1000,
    help: "a blocked command (BLPOP, BLMOVE, XREAD BLOCK, ...; the embedded store, or --app redis-server) ends with an UNBLOCKED error once its client's replica has not been heard from in the log for this long (it crashed or is cut off), instead of taking an element for a client that may be gone; until then a crashed replica's blocked clients can still take one element each. A replica with blocked clients renews its lease every fifth of this. Must be the same on every replica",
  },
  {
    key: "clientsMax",
    formerKey: "maxClients",
    flag: "max-clients",
    kind: "int",
    min: 1,
    max: 1_000_000,
    help: "client connections per replica; more are refused with an error",
  },
  {
    key: "pendingRequestsMax",
    flag: "max-pending",
    kind: "int",
    min: 1,
    max: 10_000_000,
    help: "requests waiting for consensus at this replica; beyond it requests fail at once",
  },
  {
    key: "snapshotEveryBytes",
    flag: "snapshot-every-bytes",
    kind: "size",
    min: 1,
    max: 64 * 1024 * MIB,
    help: `snapshot the store and drop the log before it once this many command bytes were applied (also every ${SNAPSHOT_EVERY_SLOTS} slots)`,
  },
  {
    key: "compactionTailSlots",
    flag: "compaction-tail-slots",
    kind: "int",
    min: 0,
    max: 1_000_000,
    help: `chosen slots kept in memory below each snapshot (at most ${COMPACTION_TAIL_BYTES_DEFAULT / MIB} MiB of commands): a replica behind by less when the log is compacted is sent those entries instead of the whole snapshot. 0: every replica behind the snapshot is sent it`,
  },
  {
    key: "ringSpinUs",
    formerKey: "ringSpinMicros",
    flag: "ring-spin-us",
    kind: "int",
    min: 0,
    max: RING_SPIN_US_MAX,
    help: "the consensus worker busy-polls its empty request rings this long before sleeping (0: sleep at once; more burns CPU, saves a ~50 µs wake-up)",
  },
  {
    key: "app",
    flag: "app",
    kind: "string",
    defaultText: "(none: the embedded store)",
    help: "replicate an unmodified server program instead of the embedded store: each replica runs its own copy of CMD on a private loopback port and feeds it the ordered client input, e.g. \"redis-server --port {port} --bind {host} --dir {dir} --save ''\" ({port} {dir} {host} {id} are filled in; no shell: write a script for pipes)",
  },
  {
    key: "checkpoint",
    flag: "checkpoint",
    kind: "string",
    defaultText: "(none: the log is kept whole, up to --app-log-max-bytes)",
    help: 'with --app: a command that makes the copy save its state into {dir}, e.g. "redis-cli -p {port} SAVE"; the files it leaves become the snapshot that compacts the log (taken when no client connection holds MULTI, SELECT, a subscription or a blocked command), and a replica far behind installs them',
  },
  {
    key: "protocol",
    flag: "protocol",
    kind: "choice",
    choices: ["resp", "memcache", "raw"],
    help: "with --app: the program's protocol, which cuts client streams into requests and its replies into answers (resp: Redis; memcache: memcached's text protocol; raw: chunks as they arrive, no ordering guarantee across connections)",
  },
  {
    key: "appLogBytesMax",
    flag: "app-log-max-bytes",
    kind: "size",
    min: MIB,
    max: 1024 * 1024 * MIB,
    help: "with --app: the log is never compacted (each copy is rebuilt by replaying it), and the replica keeps it in memory and on disk; past this many command bytes it refuses new requests with an error (and says so in its log and /status) until the cluster is restarted with empty data directories",
  },
  {
    key: "logLevel",
    flag: "log-level",
    kind: "choice",
    choices: ["trace", "debug", "info", "warn", "error", "fatal", "silent"],
    help: "log level",
  },
  {
    key: "logFormat",
    flag: "log-format",
    kind: "choice",
    choices: ["json", "pretty"],
    help: "json lines, or pretty (readable, for a terminal)",
  },
];

const DEFAULTS: Omit<ReplicaConfig, "id" | "peers" | "dataDir" | "workers"> = {
  clientHost: "127.0.0.1",
  clientPort: 6379,
  adminHost: "127.0.0.1",
  adminPort: 0,
  adminAuth: "writes",
  durability: "fsync",
  reads: "index",
  batching: "adaptive",
  initialClusterState: "new",
  join: false,
  promoteLagSlots: PROMOTE_LAG_SLOTS_DEFAULT,
  batchBytesMax: BATCH_BYTES_MAX_DEFAULT,
  batchCommandsMax: BATCH_COMMANDS_MAX_DEFAULT,
  window: WINDOW_SLOTS_DEFAULT,
  heartbeatMs: HEARTBEAT_MS_DEFAULT,
  electionTimeoutMs: ELECTION_TIMEOUT_MS_DEFAULT,
  transport: "udp",
  secretFile: null,
  peerTlsCert: null,
  peerTlsKey: null,
  peerTlsCa: null,
  peerHandshakeTimeoutMs: 5000,
  peerRecvBufferBytes: 0,
  snapshotPortOffset: 0,
  snapshotChunkBytes: SNAPSHOT_CHUNK_BYTES_DEFAULT,
  snapshotStallTimeoutMs: SNAPSHOT_STALL_TIMEOUT_MS_DEFAULT,
  snapshotMemoryBytesMax: SNAPSHOT_MEMORY_BYTES_MAX_DEFAULT,
  requirepassFile: null,
  usersFile: null,
  tlsCert: null,
  tlsKey: null,
  tlsCa: null,
  clusterId: 1,
  requestTimeoutMs: REQUEST_TIMEOUT_MS_DEFAULT,
  requestBytesMax: REQUEST_BYTES_MAX_DEFAULT,
  valueBytesMax: VALUE_BYTES_MAX_DEFAULT,
  replyBytesMax: REPLY_BYTES_MAX_DEFAULT,
  memoryBytesMax: 0,
  blockLeaseMs: BLOCK_LEASE_MS_DEFAULT,
  clientsMax: CLIENTS_MAX_DEFAULT,
  pendingRequestsMax: PENDING_REQUESTS_MAX_DEFAULT,
  snapshotEveryBytes: SNAPSHOT_EVERY_BYTES_DEFAULT,
  compactionTailSlots: COMPACTION_TAIL_SLOTS_DEFAULT,
  ringSpinUs: RING_SPIN_US_DEFAULT,
  app: null,
  checkpoint: null,
  protocol: "resp",
  appLogBytesMax: APP_LOG_BYTES_MAX_DEFAULT,
  logLevel: "info",
  logFormat: "json",
};

function invalid(flag: string, message: string): ApusError {
  return new ApusError("ERR_INVALID_CONFIG", `--${flag}: ${message}`);
}

/** "256k", "16m", "1g" or plain bytes. */
export function parseSize(text: string): number | null {
  const match = /^(\d+)([kmg]?)b?$/i.exec(text.trim());
  if (match === null) return null;
  const scale = { "": 1, k: KIB, m: MIB, g: 1024 * MIB }[match[2]!.toLowerCase()] ?? 1;
  const value = Number(match[1]) * scale;
  return Number.isSafeInteger(value) ? value : null;
}

export function parsePeers(text: string): PeerAddress[] | null {
  const peers: PeerAddress[] = [];
  for (const part of text.split(",")) {
    const match = /^\s*(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})\s*$/.exec(part);
    if (match === null) return null;
    const port = Number(match[2]);
    if (port < 1 || port > 65535) return null;
    peers.push({ host: match[1]!.replace(/^\[|\]$/g, ""), port });
  }
  return peers;
}

function convert(setting: Setting, raw: unknown): unknown {
  const { flag } = setting;
  if (setting.kind === "flag") {
    if (raw === true || raw === "true") return true;
    if (raw === false || raw === "false") return false;
    throw invalid(flag, `expected true or false, got ${JSON.stringify(raw)}`);
  }
  const text = typeof raw === "number" ? String(raw) : raw;
  if (typeof text !== "string") throw invalid(flag, `expected a value, got ${JSON.stringify(raw)}`);
  switch (setting.kind) {
    case "string":
      if (text.length === 0) throw invalid(flag, "must not be empty");
      return text;
    case "choice":
      if (!setting.choices!.includes(text))
        throw invalid(flag, `must be one of ${setting.choices!.join(", ")}, got "${text}"`);
      return text;
    case "peers": {
      const peers = parsePeerList(text);
      if (typeof peers === "string")
        throw invalid(
          flag,
          `expected ID=host:port,ID=host:port,... (or host:port,... in id order): ${peers}`,
        );
      return peers;
    }
    case "int":
    case "size": {
      const value =
        setting.kind === "size" ? parseSize(text) : /^\d+$/.test(text) ? Number(text) : null;
      const unit = setting.kind === "size" ? " (bytes, or with a k/m/g suffix)" : "";
      if (value === null || !Number.isSafeInteger(value))
        throw invalid(flag, `expected a whole number${unit}, got "${text}"`);
      if (setting.min !== undefined && value < setting.min)
        throw invalid(flag, `must be at least ${setting.min}, got ${value}`);
      if (setting.max !== undefined && value > setting.max)
        throw invalid(flag, `must be at most ${setting.max}, got ${value}`);
      return value;
    }
  }
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw invalid("config", `cannot read ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw invalid("config", `${path} is not valid JSON: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
    throw invalid("config", `${path} must hold a JSON object of settings`);
  return parsed as Record<string, unknown>;
}

export type ParsedArgs =
  | { readonly action: "help" }
  | { readonly action: "version" }
  | { readonly action: "run"; readonly config: ReplicaConfig };

export interface ParseOptions {
  /**
   * Accept `--transport shm`: only the thread cluster, whose replicas share one process's memory,
   * can honour it; a lone replica has no peers in memory.
   */
  readonly allowShm?: boolean;
}

/** Parse argv (and --config FILE). Throws ApusError("ERR_INVALID_CONFIG") naming the setting. */
export function parseReplicaArgs(
  argv: readonly string[],
  parseOptions: ParseOptions = {},
): ParsedArgs {
  const options: Record<string, { type: "string" | "boolean" }> = {
    help: { type: "boolean" },
    version: { type: "boolean" },
    config: { type: "string" },
  };
  for (const setting of SETTINGS)
    options[setting.flag] = { type: setting.kind === "flag" ? "boolean" : "string" };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new ApusError("ERR_INVALID_CONFIG", (error as Error).message);
  }
  if (values.help === true) return { action: "help" };
  if (values.version === true) return { action: "version" };

  const chosen: Record<string, unknown> = {};
  if (typeof values.config === "string") {
    const file = readConfigFile(values.config);
    for (const [key, raw] of Object.entries(file)) {
      const setting = SETTINGS.find((s) => s.key === key || s.flag === key || s.formerKey === key);
      if (setting === undefined)
        throw invalid("config", `unknown setting "${key}" in ${values.config}; see --help`);
      chosen[setting.key] =
        setting.kind === "peers" && Array.isArray(raw)
          ? convert(setting, raw.join(","))
          : convert(setting, raw);
    }
  }
  for (const setting of SETTINGS) {
    const raw = values[setting.flag];
    if (typeof raw === "string" || raw === true) chosen[setting.key] = convert(setting, raw);
  }
  if (chosen.transport === "shm" && parseOptions.allowShm !== true)
    throw invalid(
      "transport",
      "shm joins replicas that run as threads of one process, and this replica has no peers in its memory: use node dist/thread-cluster.js --replicas N --transport shm, or udp/tcp here",
    );
  return { action: "run", config: finish(chosen) };
}

/** Fill defaults and check the relations between settings. */
export function finish(chosen: Record<string, unknown>): ReplicaConfig {
  if (chosen.peers === undefined)
    throw invalid(
      "peers",
      "required: every replica's ID=host:port (e.g. 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003), or host:port,... in id order",
    );
  if (chosen.id === undefined)
    throw invalid("id", "required: this replica's stable id (its ID in --peers), 1..31");
  // A string (--config) was converted already; an array (tests, thread-cluster) is the list form.
  const listed = chosen.peers as ListedPeer[];
  const id = chosen.id as number;
  if (!listed.some((peer) => peer.id === id))
    throw invalid(
      "id",
      `is ${id} but --peers names no replica ${id} (it lists ${listed.map((p) => p.id).join(", ")}): list this replica's own ID=host:port too`,
    );
  chosen.peers = sparsePeersById(listed);
  const config: ReplicaConfig = {
    ...DEFAULTS,
    workers: defaultWorkers(),
    dataDir: `./data/replica-${id}`,
    ...chosen,
  } as ReplicaConfig;
  for (const peer of listed) {
    if (peer.port + config.snapshotPortOffset > 65535)
      throw invalid(
        "snapshot-port-offset",
        `(${config.snapshotPortOffset}) puts ${peer.host}:${peer.port}'s snapshot stream past port 65535`,
      );
  }
  if (config.join && config.initialClusterState === "existing")
    throw invalid(
      "join",
      "is for a new replica joining with an empty data directory, and --initial-cluster-state existing for one of the configuration that lost its state; not both. A replica that joined restarts without either (its data directory remembers it joined)",
    );
  if (config.heartbeatMs * 2 > config.electionTimeoutMs)
    throw invalid(
      "heartbeat-ms",
      `(${config.heartbeatMs}) must be at most half of --election-timeout-ms (${config.electionTimeoutMs}), or followers time out between heartbeats`,
    );
  if (config.blockLeaseMs < 2 * config.electionTimeoutMs)
    throw invalid(
      "block-lease-ms",
      `(${config.blockLeaseMs}) must be at least 2 × --election-timeout-ms (${config.electionTimeoutMs}): a leader change must not end the blocked commands of live replicas`,
    );
  if (config.valueBytesMax > config.requestBytesMax)
    throw invalid(
      "max-value-bytes",
      `(${config.valueBytesMax}) cannot exceed --max-request-bytes (${config.requestBytesMax}): a value arrives inside a request`,
    );
  if (
    config.app !== null &&
    config.protocol !== "resp" &&
    (config.requirepassFile !== null || config.usersFile !== null)
  )
    throw invalid(
      config.requirepassFile !== null ? "requirepass-file" : "users-file",
      `client authentication speaks RESP (AUTH), and --protocol ${config.protocol} has no AUTH: require client certificates (--tls-cert, --tls-key, --tls-ca) or firewall the client port instead`,
    );
  if (config.checkpoint !== null && config.app === null)
    throw invalid("checkpoint", "only means something with --app (the program to checkpoint)");
  if ((config.tlsCert === null) !== (config.tlsKey === null))
    throw invalid(
      config.tlsKey === null ? "tls-key" : "tls-cert",
      "--tls-cert and --tls-key go together: the certificate and its private key",
    );
  if (config.tlsCa !== null && config.tlsCert === null)
    throw invalid("tls-ca", "needs --tls-cert and --tls-key (the client port's own certificate)");
  const peerTls = [config.peerTlsCert, config.peerTlsKey, config.peerTlsCa];
  if (peerTls.some((v) => v !== null)) {
    if (peerTls.some((v) => v === null))
      throw invalid(
        "peer-tls-cert",
        "mutual TLS between peers needs all three of --peer-tls-cert, --peer-tls-key and --peer-tls-ca",
      );
    if (config.transport !== "tcp")
      throw invalid(
        "peer-tls-cert",
        `TLS between peers runs over --transport tcp (this replica uses ${config.transport})`,
      );
  }
  if (config.clientPort === config.adminPort && config.clientHost === config.adminHost)
    throw invalid("admin-port", `is the same as --client-port (${config.clientPort})`);
  return config;
}

/** What a flag takes, for --help. */
function placeholder(s: Setting): string {
  switch (s.kind) {
    case "peers":
      return "ID=H:P,...";
    case "flag":
      return "";
    case "choice":
      return s.choices!.length <= 3 ? s.choices!.join("|") : "LEVEL";
    case "size":
      return "BYTES";
    case "int":
      return s.flag.endsWith("-ms")
        ? "MS"
        : s.flag.endsWith("-us")
          ? "US"
          : s.flag.endsWith("port")
            ? "PORT"
            : "N";
    case "string":
      return s.flag.endsWith("host") ? "HOST" : s.flag.endsWith("dir") ? "DIR" : "FILE";
  }
}

/** Wrap `text` to `width` columns, continuation lines indented by `indent`. */
function wrap(text: string, indent: number, width: number): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line.length > 0 && indent + line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line.length === 0 ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines.join(`\n${" ".repeat(indent)}`);
}

/** The default --help shows: the setting's own text, or DEFAULTS' value as the flag takes it. */
function defaultShown(s: Setting): string {
  if (s.defaultText !== undefined) return s.defaultText;
  const value = DEFAULTS[s.key as keyof typeof DEFAULTS];
  return s.kind === "size" ? sizeText(value as number) : String(value);
}

export function helpText(version: string): string {
  const heads = SETTINGS.map((s) => `  --${s.flag} ${placeholder(s)}`.trimEnd());
  const column = Math.max(...heads.map((h) => h.length)) + 2;
  const option = (head: string, text: string) => `${head.padEnd(column)}${wrap(text, column, 100)}`;
  const lines = SETTINGS.map((s, i) =>
    option(
      heads[i]!,
      `${s.help} ${defaultShown(s).startsWith("(") ? defaultShown(s) : `(default: ${defaultShown(s)})`}`,
    ),
  );
  return `apus-smr ${version}: one replica of a Multi-Paxos replicated Redis-protocol store

Usage: node dist/replica.js --id I --peers 1=H:P,2=H:P,3=H:P [options]

A replica serves Redis clients on --client-port; every command, reads included, is ordered
through Multi-Paxos among the replicas listed in --peers before it runs. Start one process per
replica with the same --peers and its own --id. For a local three-replica cluster: npm start.
To add a replica to a running cluster: start it with --join, then apus member add (README,
Operations).

Options (also accepted as a JSON object in --config FILE, by flag name or camelCase key;
flags win over the file):
${option("  --config FILE", "JSON file of settings")}
${lines.join("\n")}
${option("  --help", "show this text")}
${option("  --version", "print the version")}

Sizes take k, m or g suffixes (256k, 16m). Stop with SIGTERM or SIGINT: the replica stops
accepting clients, fails what is still waiting with an error, flushes its log and exits 0.
`;
}
