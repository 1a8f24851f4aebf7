/**
 * Every shape that crosses a boundary in the scaling benchmark, in one file: the load-generator
 * task (main thread → piscina worker) and its result, and the variants compared (a mode on a
 * transport). The data path of the benchmark is TCP to the replicas; the piscina channel carries
 * one task and one result per load-generator thread per measurement.
 */

/** One load-generator thread's share of a measurement: closed-loop SETs over K connections. */
export interface DriveTask {
  readonly host: string;
  readonly port: number;
  /** Connections this thread opens; each keeps exactly one request outstanding. */
  readonly connectionCount: number;
  /** Global index of this thread's first connection (keys and PRNG seeds differ per connection). */
  readonly connectionIndexBase: number;
  /** Epoch ms: requests sent from here on are timed (everything before is warm-up). */
  readonly measureStartEpochMs: number;
  /** Epoch ms: no request is sent after this; replies still on the way are awaited. */
  readonly measureEndEpochMs: number;
  /** Value size, uniform in [min, max] bytes. */
  readonly valueBytesMin: number;
  readonly valueBytesMax: number;
  /** Keys key:0 … key:(keyCount-1), so the store stays bounded over a long run. */
  readonly keyCount: number;
  readonly seed: number;
}

export interface DriveResult {
  /** hdr-histogram of client-observed latency in µs, compressed base64 (encodeIntoCompressedBase64). */
  readonly histogramBase64: string;
  /** Requests answered +OK inside the measure window. */
  readonly requestCount: number;
  /** Error replies (-ERR …) inside the measure window. */
  readonly errorCount: number;
  /** Requests answered over the whole task, warm-up included. */
  readonly totalRequestCount: number;
  /** Length of the window this thread measured, ms (its own clock: start of first timed send → end). */
  readonly windowMs: number;
  /** CPU time of this load-generator thread during the measure window, µs (process.threadCpuUsage). */
  readonly cpuWindowUs: number;
}

/** How the replicas run: separate `dist/replica.js` processes, or threads of dist/thread-cluster.js. */
export type Runner = "processes" | "thread-cluster";

export interface Variant {
  /** Name in tables, charts and --modes. */
  readonly name: string;
  readonly runner: Runner;
  /** Peer transport: udp (kernel loopback) or shm (shared memory, thread-cluster only). */
  readonly transport: "udp" | "shm";
  /** Flags that make this mode, given to every replica (after the common ones). */
  readonly replicaFlags: readonly string[];
  readonly description: string;
}

/** Given to every replica in every mode: the comparison is about the network path and protocol. */
export const COMMON_REPLICA_FLAGS: readonly string[] = [
  "--durability",
  "memory",
  "--log-level",
  "warn",
];

export const VARIANTS: readonly Variant[] = [
  {
    name: "full",
    runner: "processes",
    transport: "udp",
    replicaFlags: [],
    description:
      "default flags: --workers default, batching on (everything waiting goes in one slot)",
  },
  {
    name: "one-slot",
    runner: "processes",
    transport: "udp",
    replicaFlags: ["--workers", "1", "--batch-max-commands", "1"],
    description:
      "--workers 1 --batch-max-commands 1: one consensus slot per request (classic design)",
  },
  {
    name: "full-shm",
    runner: "thread-cluster",
    transport: "shm",
    replicaFlags: [],
    description:
      "default flags, replicas as threads of one process (dist/thread-cluster.js) over shared memory",
  },
  {
    name: "full-threads-udp",
    runner: "thread-cluster",
    transport: "udp",
    replicaFlags: [],
    description:
      "default flags, replicas as threads of one process (dist/thread-cluster.js) over loopback UDP: full-shm's layout with the kernel path, to separate transport cost from process layout",
  },
];
