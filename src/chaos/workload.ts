/**
 * The chaos clients: each runs one operation at a time against one replica and records it in the
 * history. Registers: SET of a unique value, GET, on a few keys. Lists: RPUSH of a unique value,
 * LRANGE 0 -1, on a few keys. ioredis with no retries, no offline queue, no resending after a
 * reconnect and a command timeout, so that what the history says happened is what the client saw.
 * After an unknown outcome the client drops its connection and opens a new one (to a replica it
 * picks at random), so a late reply can never be taken for the answer to a later command.
 */

import { Redis } from "ioredis";
import { SeededPrng } from "../core/prng.ts";
import type { ChaosCluster } from "./chaos-cluster.ts";
import { sleep } from "./chaos-cluster.ts";
import { errorOutcome } from "./error-outcome.ts";
import type { History, OpKind, Outcome, ReplyValue } from "./history.ts";
import { processingKey } from "./queue-check.ts";

/** Register keys in use at once (r0, r1, r2), list keys (l0, l1) and job queues (q0 with p0). */
const REGISTER_KEYS_AT_ONCE = 3;
const LIST_KEYS_AT_ONCE = 2;
const QUEUE_KEYS_AT_ONCE = 1;
/** A take's BLMOVE timeout, seconds: a consumer waits a little for a job, as workers do. */
const TAKE_TIMEOUT_S = 0.2;
/**
 * Clients move to fresh register keys (r0.1, r0.2, …) this often, so each key's history stays
 * small enough for the search however long the run (its memory grows with the square of a key's
 * operations).
 */
export const REGISTER_EPOCH_MS = 20_000;
/**
 * And to fresh list keys this often: every list read is kept (in memory and in the history
 * file), and its size grows with the list.
 */
export const LIST_EPOCH_MS = 5000;

export interface WorkloadOptions {
  readonly clients: number;
  /** A client's command timeout: longer than the replicas' --request-timeout-ms. */
  readonly commandTimeoutMs: number;
  /** Pause between two operations of one client, at most (uniform), to bound the history size. */
  readonly thinkMsMax: number;
  readonly seed: number;
}

const CONNECT_TIMEOUT_MS = 1000;
/** Wait before trying another replica after a failed connect. */
const RECONNECT_PAUSE_MS = 100;

export type OpCounts = Record<Outcome, number>;

export class Workload {
  readonly counts: OpCounts = { ok: 0, fail: 0, unknown: 0 };
  /** Every register and list key used so far (the final reads read them all). */
  readonly registerKeys = new Set<string>();
  readonly listKeys = new Set<string>();
  /** Every job queue key used so far (its processing list is processingKey(key)). */
  readonly queueKeys = new Set<string>();
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly cluster: ChaosCluster;
  private readonly history: History;
  private readonly options: WorkloadOptions;

  constructor(cluster: ChaosCluster, history: History, options: WorkloadOptions) {
    this.cluster = cluster;
    this.history = history;
    this.options = options;
  }

  start(): void {
    this.running = true;
    for (let client = 1; client <= this.options.clients; client++)
      this.loops.push(this.clientLoop(client));
  }

  /** Stop issuing operations; resolves when every client's last operation has completed. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
  }

  private async clientLoop(client: number): Promise<void> {
    const prng = new SeededPrng((this.options.seed ^ Math.imul(client, 0x9e3779b1)) >>> 0);
    let redis: Redis | null = null;
    let seq = 0;
    try {
      while (this.running) {
        if (redis === null) {
          redis = await connect(
            this.cluster,
            prng.nextInt(this.cluster.options.replicas) + 1,
            this.options.commandTimeoutMs,
          );
          if (redis === null) {
            await sleep(RECONNECT_PAUSE_MS);
            continue;
          }
        }
        seq++;
        const outcome = await this.operation(redis, client, seq, prng);
        if (outcome !== "ok") {
          redis.disconnect();
          redis = null;
        }
        await sleep(prng.nextInt(this.options.thinkMsMax + 1));
      }
    } finally {
      redis?.disconnect();
    }
  }

  private operation(redis: Redis, client: number, seq: number, prng: SeededPrng): Promise<Outcome> {
    const dice = prng.nextInt(100);
    const value = `c${client}-${seq}`;
    const nowMs = this.history.now();
    if (dice < 50) {
      const key = `r${prng.nextInt(REGISTER_KEYS_AT_ONCE)}.${Math.floor(nowMs / REGISTER_EPOCH_MS)}`;
      this.registerKeys.add(key);
      return dice < 25
        ? this.record(redis, client, "write", key, value)
        : this.record(redis, client, "read", key, null);
    }
    if (dice < 70) {
      // Queues share the lists' epochs: their final reads grow with them too.
      const key = `q${prng.nextInt(QUEUE_KEYS_AT_ONCE)}.${Math.floor(nowMs / LIST_EPOCH_MS)}`;
      this.queueKeys.add(key);
      return dice < 60
        ? this.record(redis, client, "enqueue", key, value)
        : this.record(redis, client, "take", key, null);
    }
    const key = `l${prng.nextInt(LIST_KEYS_AT_ONCE)}.${Math.floor(nowMs / LIST_EPOCH_MS)}`;
    this.listKeys.add(key);
    return dice < 85
      ? this.record(redis, client, "append", key, value)
      : this.record(redis, client, "list-read", key, null);
  }

  /** One operation on a fresh connection to `replica` (final reads, availability probes). */
  async once(
    replica: number,
    client: number,
    kind: OpKind,
    key: string,
    value: string | null,
  ): Promise<{ outcome: Outcome; result: ReplyValue }> {
    const redis = await connect(this.cluster, replica, this.options.commandTimeoutMs);
    if (redis === null) return { outcome: "fail", result: null }; // nothing was sent: not an operation
    try {
      const id = await this.recordId(redis, client, kind, key, value);
      const op = this.history.operation(id);
      return { outcome: op.outcome === "pending" ? "unknown" : op.outcome, result: op.result };
    } finally {
      redis.disconnect();
    }
  }

  private async record(
    redis: Redis,
    client: number,
    kind: OpKind,
    key: string,
    value: string | null,
  ): Promise<Outcome> {
    const id = await this.recordId(redis, client, kind, key, value);
    const outcome = this.history.operation(id).outcome;
    return outcome === "pending" ? "unknown" : outcome;
  }

  /** Invoke, send, complete: the one place an operation's outcome is decided. */
  private async recordId(
    redis: Redis,
    client: number,
    kind: OpKind,
    key: string,
    value: string | null,
  ): Promise<number> {
    const id = this.history.invoke(client, kind, key, value, replicaOf.get(redis));
    let outcome: Outcome;
    try {
      const reply = await send(redis, kind, key, value);
      const result = replyValue(kind, reply);
      if (result === undefined) {
        outcome = "unknown";
        this.history.complete(id, outcome, null, `unexpected reply ${JSON.stringify(reply)}`);
      } else {
        outcome = "ok";
        this.history.complete(id, outcome, result);
      }
    } catch (error) {
      const classified = errorOutcome(error);
      outcome = classified.outcome;
      this.history.complete(id, outcome, null, classified.reason);
    }
    this.counts[outcome]++;
    return id;
  }
}

function send(
  redis: Redis,
  kind: OpKind,
  key: string,
  value: string | null,
): Promise<string | null | string[] | number> {
  switch (kind) {
    case "write":
      return redis.set(key, value!);
    case "read":
      return redis.get(key);
    case "append":
      return redis.rpush(key, value!);
    case "list-read":
    case "queue-read":
      return redis.lrange(key, 0, -1);
    case "enqueue":
      return redis.rpush(key, value!);
    case "take":
      return redis.blmove(key, processingKey(key), "RIGHT", "LEFT", TAKE_TIMEOUT_S);
  }
}

/** The reply as the history keeps it, or undefined when it is not a reply this command gives. */
function replyValue(
  kind: OpKind,
  reply: string | null | string[] | number,
): ReplyValue | undefined {
  switch (kind) {
    case "write":
      return reply === "OK" ? null : undefined;
    case "read":
      return reply === null || typeof reply === "string" ? reply : undefined;
    case "append":
      return typeof reply === "number" ? null : undefined;
    case "list-read":
    case "queue-read":
      return Array.isArray(reply) ? reply : undefined;
    case "enqueue":
      return typeof reply === "number" ? null : undefined;
    case "take":
      return reply === null || typeof reply === "string" ? reply : undefined;
  }
}

/** The replica each connection talks to (recorded with every operation). */
const replicaOf = new WeakMap<Redis, number>();

/** A connected client to `replica`, or null when it cannot be reached now. */
async function connect(
  cluster: ChaosCluster,
  replica: number,
  commandTimeoutMs: number,
): Promise<Redis | null> {
  if (cluster.state(replica) !== "running") return null;
  const { host, port } = cluster.clientAddress(replica);
  const redis = new Redis({
    host,
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    enableReadyCheck: false,
    autoResendUnfulfilledCommands: false,
    commandTimeout: commandTimeoutMs,
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: () => null,
  });
  redis.on("error", () => {}); // outcomes are read from each command's promise
  try {
    await redis.connect();
    replicaOf.set(redis, replica);
    return redis;
  } catch {
    redis.disconnect();
    return null;
  }
}
