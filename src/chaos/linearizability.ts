/**
 * A linearizability checker: Wing & Gong's search with Lowe's just-in-time linearization and
 * memoization of (linearized set, state) pairs, the algorithm of porcupine (Athalye,
 * github.com/anishathalye/porcupine) and of Lowe, "Testing for linearizability", CCPE 2017.
 *
 * Operations become call and return entries on one doubly linked list in time order (at equal
 * times calls come first: touching operations count as concurrent). The search walks the list:
 * at a call it tries to linearize that operation now (the model must accept it from the current
 * state, and the pair (linearized set + it, new state) must not have been explored already); it
 * then lifts the call and its return out of the list and starts again from the head. Reaching a
 * return means that operation's deadline passed with it not linearized: undo the last choice
 * (pop it, put its entries back) and try the next call after it. The history is linearizable
 * when the list empties, and is not when a return is reached with nothing left to undo.
 *
 * An operation whose outcome is unknown has no return (returnMs = Infinity): it can be
 * linearized at any point after its call, including after everything else, which for a model
 * whose unknown operations always succeed (a write) is the same as never.
 */
import assert from "node:assert/strict";

/** A sequential specification. States must be immutable values. */
export interface Model<State, Op> {
  init(): State;
  /** The state after `op` from `state`, or undefined when `op` (with its output) is impossible. */
  step(state: State, op: Op): State | undefined;
  /** A string that is equal for equal states (a cache key). */
  key(state: State): string;
  describe(state: State): string;
}

export interface TimedOp<Op> {
  readonly op: Op;
  readonly callMs: number;
  /** Infinity when the operation never returned (unknown outcome). */
  readonly returnMs: number;
}

export type LinearizabilityResult<Op> =
  | { readonly linearizable: true; readonly steps: number }
  | {
      readonly linearizable: false;
      readonly steps: number;
      /** Indices (into the checked ops) of the longest linearizable prefix the search found. */
      readonly longestPrefix: readonly number[];
      /** The state after that prefix. */
      readonly stateAfterPrefix: string;
      /** The operation whose return was reached, with that prefix, before it could be linearized. */
      readonly stuck: TimedOp<Op> & { readonly index: number };
    }
  | { readonly linearizable: "unknown"; readonly steps: number; readonly reason: string };

/** Search steps before giving up on one history (a limit on everything). */
export const SEARCH_STEPS_MAX = 50_000_000;

interface Entry {
  /** Index of the operation in the input. */
  readonly index: number;
  readonly time: number;
  /** A call's return entry; null for a return entry. */
  match: Entry | null;
  prev: Entry | null;
  next: Entry | null;
}

/** A fixed-size bit set keyed for the cache by its words. */
class BitSet {
  readonly words: Uint32Array;
  constructor(size: number, words?: Uint32Array) {
    this.words = words ?? new Uint32Array(Math.ceil(size / 32));
  }
  set(i: number): void {
    this.words[i >>> 5]! |= 1 << (i & 31);
  }
  clear(i: number): void {
    this.words[i >>> 5]! &= ~(1 << (i & 31));
  }
  with(i: number): BitSet {
    const copy = new BitSet(0, this.words.slice());
    copy.set(i);
    return copy;
  }
  hash(): number {
    let h = 0x811c9dc5;
    for (const word of this.words) h = Math.imul(h ^ word, 0x01000193);
    return h >>> 0;
  }
  equals(other: BitSet): boolean {
    for (let i = 0; i < this.words.length; i++) if (this.words[i] !== other.words[i]) return false;
    return true;
  }
}

/** Explored (linearized set, state) pairs. */
class Cache {
  private readonly buckets = new Map<string, BitSet[]>();
  /** Adds the pair; false when it was there already. */
  add(bits: BitSet, stateKey: string): boolean {
    const key = `${bits.hash()}|${stateKey}`;
    const bucket = this.buckets.get(key);
    if (bucket === undefined) {
      this.buckets.set(key, [bits]);
      return true;
    }
    if (bucket.some((b) => b.equals(bits))) return false;
    bucket.push(bits);
    return true;
  }
}

function buildList<Op>(ops: readonly TimedOp<Op>[]): Entry {
  const entries: Entry[] = [];
  ops.forEach((op, index) => {
    assert(op.returnMs >= op.callMs, `operation ${index} returns before it is called`);
    const ret: Entry = { index, time: op.returnMs, match: null, prev: null, next: null };
    entries.push({ index, time: op.callMs, match: ret, prev: null, next: null }, ret);
  });
  entries.sort((a, b) => {
    if (a.time !== b.time) return a.time - b.time;
    const aCall = a.match !== null ? 0 : 1;
    const bCall = b.match !== null ? 0 : 1;
    return aCall - bCall || a.index - b.index;
  });
  const head: Entry = { index: -1, time: -Infinity, match: null, prev: null, next: null };
  let last = head;
  for (const entry of entries) {
    last.next = entry;
    entry.prev = last;
    last = entry;
  }
  return head;
}

/** Take a call and its return out of the list. */
function lift(call: Entry): void {
  call.prev!.next = call.next;
  if (call.next !== null) call.next.prev = call.prev;
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next !== null) ret.next.prev = ret.prev;
}

/** Put back what `lift` took out (in reverse order). */
function unlift(call: Entry): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next !== null) ret.next.prev = ret;
  call.prev!.next = call;
  if (call.next !== null) call.next.prev = call;
}

export function checkLinearizable<State, Op>(
  model: Model<State, Op>,
  ops: readonly TimedOp<Op>[],
  stepsMax = SEARCH_STEPS_MAX,
): LinearizabilityResult<Op> {
  const head = buildList(ops);
  const cache = new Cache();
  const linearized = new BitSet(ops.length);
  const calls: { entry: Entry; state: State }[] = [];
  let state = model.init();
  let entry = head.next;
  let steps = 0;
  let best: { prefix: number[]; state: State; stuck: number } | null = null;
  while (head.next !== null) {
    if (++steps > stepsMax)
      return { linearizable: "unknown", steps, reason: `search gave up after ${stepsMax} steps` };
    assert(entry !== null, "walked off the end of the list with operations left");
    if (entry.match !== null) {
      const next = model.step(state, ops[entry.index]!.op);
      if (next !== undefined && cache.add(linearized.with(entry.index), model.key(next))) {
        calls.push({ entry, state });
        state = next;
        linearized.set(entry.index);
        lift(entry);
        entry = head.next;
      } else {
        entry = entry.next;
      }
      continue;
    }
    // A return: its operation was not linearized in time with the choices made so far.
    if (best === null || calls.length > best.prefix.length)
      best = { prefix: calls.map((c) => c.entry.index), state, stuck: entry.index };
    const top = calls.pop();
    if (top === undefined) {
      assert(best !== null);
      const stuck = ops[best.stuck]!;
      return {
        linearizable: false,
        steps,
        longestPrefix: best.prefix,
        stateAfterPrefix: model.describe(best.state),
        stuck: { ...stuck, index: best.stuck },
      };
    }
    state = top.state;
    linearized.clear(top.entry.index);
    unlift(top.entry);
    entry = top.entry.next;
  }
  return { linearizable: true, steps };
}
