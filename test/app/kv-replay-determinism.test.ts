/**
 * Snapshots of the embedded store over its whole command set: a store runs a random sequence of
 * the compat lists' commands (12,000-odd cases of every data type, test/app/compat) under a clock
 * that moves and expires keys; at a random point a snapshot is taken, at once or in the
 * background while the store goes on, and a second store restored from it runs the rest. The two
 * must answer every later command alike and end with the same snapshot bytes and the same memory
 * accounting: what a replica that installs a snapshot relies on. `FC_SEED=…` replays a failure,
 * `FC_RUNS=…` runs more.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { findCommand } from "../../src/app/kv-command-table.ts";
import { type ExecContext, KvStore } from "../../src/app/kv-store.ts";
import { COMMANDS as BITS_HLL } from "./compat/bits-hll.ts";
import { COMMANDS as LISTS_HASHES } from "./compat/lists-hashes.ts";
import { COMMANDS as SERVER } from "./compat/server.ts";
import { COMMANDS as SETS_ZSETS } from "./compat/sets-zsets.ts";
import { COMMANDS as SORT_GEO } from "./compat/sort-geo.ts";
import { COMMANDS as STREAMS } from "./compat/streams.ts";
import { COMMANDS as STRINGS_KEYS } from "./compat/strings-keys.ts";

/** The store-level commands of every list (session and connection commands are the sessions'). */
const POOL = [
  ...STRINGS_KEYS,
  ...LISTS_HASHES,
  ...SETS_ZSETS,
  ...SORT_GEO,
  ...STREAMS,
  ...BITS_HLL,
  ...SERVER,
].filter((args) => {
  const spec = findCommand(Buffer.from(args[0]!, "latin1"));
  return spec !== undefined && (spec.kind === "write" || spec.kind === "read");
});

const context = (nowMs: number): ExecContext => ({ nowMs, info: () => "role:master\r\n" });

function run(store: KvStore, args: readonly string[], nowMs: number): string {
  const reply = store.execute(
    args.map((a) => Buffer.from(a, "latin1")),
    context(nowMs),
  );
  store.expireSweep(nowMs, 20);
  return Buffer.from(reply).toString("latin1");
}

function usedMemory(store: KvStore, nowMs: number): string {
  return /used_memory:\d+/.exec(run(store, ["INFO", "memory"], nowMs))?.[0] ?? "none";
}

describe("snapshots over the store's whole command set", () => {
  it("a store restored from a snapshot, taken at once or in the background, goes on exactly as the original", () => {
    expect(POOL.length).toBeGreaterThan(5000);
    fc.assert(
      fc.property(
        fc.array(fc.record({ pick: fc.nat(POOL.length - 1), advanceMs: fc.nat(40) }), {
          minLength: 1,
          maxLength: 150,
          size: "medium",
        }),
        fc.nat(),
        fc.boolean(),
        (steps, cut, background) => {
          const at = cut % (steps.length + 1);
          const original = new KvStore();
          let nowMs = 1_000_000;
          const clock = steps.map((step) => (nowMs += step.advanceMs));
          for (let i = 0; i < at; i++) run(original, POOL[steps[i]!.pick]!, clock[i]!);
          const expected: string[] = [];
          let image: Uint8Array;
          if (background) {
            // Copy-on-write while the store goes on: a step (256 entries) between two commands.
            const job = original.beginSnapshot();
            for (let i = at; i < steps.length; i++) {
              job.step(0);
              expected.push(run(original, POOL[steps[i]!.pick]!, clock[i]!));
            }
            image = job.finish();
          } else {
            image = original.snapshot();
            for (let i = at; i < steps.length; i++)
              expected.push(run(original, POOL[steps[i]!.pick]!, clock[i]!));
          }
          const restored = KvStore.restore(image);
          const replies = steps
            .slice(at)
            .map((step, i) => run(restored, POOL[step.pick]!, clock[at + i]!));
          expect(replies).toEqual(expected);
          expect(Buffer.from(restored.snapshot()).equals(Buffer.from(original.snapshot()))).toBe(
            true,
          );
          expect(usedMemory(restored, nowMs)).toBe(usedMemory(original, nowMs));
        },
      ),
      {
        numRuns: Number(process.env.FC_RUNS ?? 300),
        ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}),
      },
    );
  });
});
