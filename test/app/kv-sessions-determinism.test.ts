/**
 * The sessions layer as a replicated state machine: three replicas of the embedded store apply
 * the same random log of several origins' connections — transactions, watches, blocking pops
 * with and without timeouts, Pub/Sub, SELECT, CLIENT UNBLOCK, closes, unblock events, run
 * announcements, restarted origins, late copies and the log's clock jumping past the blocked
 * clients' lease — and one of them installs another's snapshot part-way. Every replica must give
 * every request the same replies and end with the same snapshot, byte for byte. A failing case
 * prints its seed and the shrunk log; `FC_SEED=… npx vitest run` replays it (`FC_RUNS` runs more).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeCommands } from "../../src/app/command-codec.ts";
import { KvApp } from "../../src/app/kv-app.ts";
import type { ConnectionRef } from "../../src/app/replicated-app.ts";
import { KvAppHarness } from "./kv-app-harness.ts";

const LEASE_MS = 1000;

type Event =
  | {
      kind: "data";
      origin: number;
      conn: number;
      commands: (readonly string[])[];
      takenBackMs: number;
    }
  | { kind: "close"; origin: number; conn: number }
  | { kind: "unblock"; origin: number; conn: number; block: number }
  | { kind: "announce"; origin: number }
  | { kind: "restart"; origin: number }
  | { kind: "advance"; ms: number };

const KEY = fc.constantFrom("q1", "q2", "k");
const COMMAND: fc.Arbitrary<readonly string[]> = fc.oneof(
  fc.tuple(fc.constantFrom("LPUSH", "RPUSH"), KEY, fc.constantFrom("a", "b", "c")),
  fc.tuple(fc.constantFrom("BLPOP", "BRPOP"), KEY, fc.constantFrom("0", "1", "0.5")),
  fc.tuple(
    fc.constant("BLMOVE"),
    KEY,
    KEY,
    fc.constant("LEFT"),
    fc.constant("RIGHT"),
    fc.constantFrom("0", "2"),
  ),
  fc.tuple(fc.constantFrom("LPOP", "LLEN", "INCR", "GET"), KEY),
  fc.constantFrom(
    ["MULTI"],
    ["EXEC"],
    ["DISCARD"],
    ["WATCH", "q1"],
    ["WATCH", "k"],
    ["UNWATCH"],
    ["SUBSCRIBE", "ch"],
    ["UNSUBSCRIBE"],
    ["PUBLISH", "ch", "hi"],
    ["SELECT", "1"],
    ["SELECT", "0"],
    ["CLIENT", "UNBLOCK", "1"],
    ["CLIENT", "UNBLOCK", "2", "ERROR"],
    ["HELLO", "3"],
    ["RESET"],
    ["XADD", "s", "*", "f", "v"],
    ["XREAD", "BLOCK", "0", "STREAMS", "s", "$"],
    ["SET", "k", "1"],
    ["DEL", "q1"],
    ["SET", "q2", "not-a-list"],
    ["SWAPDB", "0", "1"],
    ["MOVE", "k", "1"],
    ["FLUSHDB"],
    ["SET", "t", "v", "PX", "500"],
    ["EXPIRE", "q1", "1"],
    ["RANDOMKEY"],
    ["HSET", "h", "a", "1", "b", "2", "c", "3"],
    ["HRANDFIELD", "h", "-5"],
    ["SADD", "s1", "a", "b", "c"],
    ["SPOP", "s1"],
    ["SRANDMEMBER", "s1", "2"],
    ["ZADD", "z", "1", "a"],
    ["BZPOPMIN", "z", "0"],
    ["CLIENT", "LIST"],
    ["DBSIZE"],
  ),
);

const ORIGIN = fc.integer({ min: 1, max: 3 });
const CONN = fc.integer({ min: 1, max: 4 });
const EVENT: fc.Arbitrary<Event> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record({
      kind: fc.constant("data" as const),
      origin: ORIGIN,
      conn: CONN,
      commands: fc.array(COMMAND, { minLength: 1, maxLength: 3 }),
      // Mostly taken just now; now and then a late copy taken well before it is applied.
      takenBackMs: fc.oneof(
        { weight: 5, arbitrary: fc.constant(0) },
        fc.integer({ min: 0, max: 3000 }),
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("close" as const), origin: ORIGIN, conn: CONN }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("unblock" as const),
      origin: ORIGIN,
      conn: CONN,
      block: fc.integer({ min: 1, max: 3 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("announce" as const), origin: ORIGIN }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("restart" as const), origin: ORIGIN }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("advance" as const),
      ms: fc.integer({ min: 0, max: 1500 }),
    }),
  },
);

/** One replica: the store and every reply it gave, per request (in log order). */
class Replica {
  app: KvApp;
  /** Replies by request number; a blocked request's comes later, so it is keyed, not pushed. */
  readonly replies = new Map<number, string>();

  constructor() {
    this.app = Replica.fresh();
  }

  static fresh(): KvApp {
    // No connection is this test's own (isLocal false): no timers, no renewals; the log decides.
    return new KvApp({
      valueBytesMax: 1024 * 1024,
      replyBytesMax: 1024 * 1024,
      blockLeaseMs: LEASE_MS,
      info: () => "role:master\r\n",
    });
  }
}

function connection(origin: number, incarnation: number, conn: number): ConnectionRef {
  return { origin, incarnation, worker: 0, connId: conn };
}

/** Applies `events` to three replicas; the third installs the second's snapshot after `restoreAt`. */
function run(events: readonly Event[], restoreAt: number): Replica[] {
  const replicas = [new Replica(), new Replica(), new Replica()];
  let nowMs = 1_000_000;
  const incarnations = new Map<number, number>([
    [1, 11],
    [2, 21],
    [3, 31],
  ]);
  let request = 0;
  events.forEach((event, index) => {
    if (index === restoreAt) {
      const image = replicas[1]!.app.snapshot();
      replicas[2]!.app = Replica.fresh();
      replicas[2]!.app.restore(image);
    }
    if (event.kind === "advance") {
      nowMs += event.ms;
      for (const replica of replicas) replica.app.endBatch(nowMs);
      return;
    }
    if (event.kind === "restart") {
      incarnations.set(event.origin, incarnations.get(event.origin)! + 1);
      return;
    }
    const incarnation = incarnations.get(event.origin)!;
    const ref = connection(event.origin, incarnation, event.kind === "announce" ? 0 : event.conn);
    const number = ++request;
    for (const replica of replicas) {
      const sink = (reply: Uint8Array) => {
        replica.replies.set(number, Buffer.from(reply).toString("latin1"));
      };
      const body =
        event.kind === "data"
          ? encodeCommands(
              event.commands.map((args) => args.map((a) => Buffer.from(a))),
              0,
            )
          : event.kind === "unblock"
            ? encodeCommands([[Buffer.from(String(event.block))]], 0)
            : encodeCommands([], 0);
      replica.app.apply(
        {
          connection: ref,
          event: event.kind === "data" ? "data" : event.kind === "unblock" ? "unblock" : "close",
          body,
          bodyOffset: 0,
          nowMs,
          takenMs: nowMs - (event.kind === "data" ? event.takenBackMs : 0),
        },
        event.kind === "data" ? sink : null,
      );
      replica.app.endBatch(nowMs);
    }
  });
  return replicas;
}

describe("the sessions layer is deterministic", () => {
  it("a database the snapshot left out (it held no key) restores with the log's clock: its random picks agree", () => {
    const live = new KvAppHarness();
    live.run(1, "SET", "in-db0", "1");
    live.nowMs += 5000;
    live.run(1, "SET", "in-db0", "2");
    const restored = new KvAppHarness({ origin: 2 });
    restored.app.restore(live.app.snapshot());
    restored.nowMs = live.nowMs;
    const picks = [live, restored].map((replica) => {
      replica.run(3, "SELECT", "1");
      replica.run(3, "HSET", "h", ...[..."abcdefghijklmnop"].flatMap((f) => [f, "v"]));
      return replica.run(3, "HRANDFIELD", "h", "-20");
    });
    expect(picks[1]).toBe(picks[0]);
  });

  it("replicas fed the same log answer alike and end with the same snapshot, one of them restored part-way", () => {
    fc.assert(
      fc.property(
        fc.array(EVENT, { minLength: 1, maxLength: 80, size: "medium" }),
        fc.nat(),
        (events, restorePick) => {
          const restoreAt = restorePick % (events.length + 1);
          const [a, b, c] = run(events, restoreAt);
          expect([...b!.replies]).toEqual([...a!.replies]);
          const image = Buffer.from(a!.app.snapshot()).toString("base64");
          expect(Buffer.from(b!.app.snapshot()).toString("base64")).toBe(image);
          expect(Buffer.from(c!.app.snapshot()).toString("base64")).toBe(image);
          // The restored replica answers every request it applied after the restore alike,
          // except those of commands blocked across it (their replies belonged to the origin).
          for (const [number, reply] of c!.replies) expect(reply).toBe(a!.replies.get(number));
        },
      ),
      {
        numRuns: Number(process.env.FC_RUNS ?? 1000),
        ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}),
      },
    );
  });
});
