/**
 * The history of one chaos run: every client operation as an invocation and a completion, in the
 * style of Jepsen. An operation completes `ok` (acknowledged, with its reply), `fail` (an error
 * that proves the command did not run) or `unknown` (a timeout, a dropped connection, any error
 * that does not prove non-execution: it may have taken effect at any time after its invocation,
 * or never). Times are milliseconds on one monotonic clock (`performance.now()` of the checker's
 * process), so real-time order between any two operations is known.
 */
import assert from "node:assert/strict";
import { appendFileSync, readFileSync } from "node:fs";

/**
 * write: SET key value (unique value) · read: GET key · append: RPUSH key value (unique value) ·
 * list-read: LRANGE key 0 -1 · enqueue: RPUSH queue job (unique job) · take: BLMOVE queue
 * processing RIGHT LEFT (a short timeout; the result is the job or nil) · queue-read: LRANGE of
 * a queue or processing list (queue-check.ts).
 */
export type OpKind = "write" | "read" | "append" | "list-read" | "enqueue" | "take" | "queue-read";
export type Outcome = "ok" | "fail" | "unknown";

/** A reply value as the checkers compare it: a string, nil, or a list of strings. */
export type ReplyValue = string | null | readonly string[];

export interface Operation {
  /** Unique in the history, in invocation order. */
  readonly id: number;
  readonly client: number;
  /** The replica the client sent it to. */
  readonly replica?: number;
  readonly kind: OpKind;
  readonly key: string;
  /** The written or appended value; null for reads. */
  readonly value: string | null;
  readonly invokeMs: number;
  /** When the reply (or the error) came; null while pending, and for an unknown outcome. */
  readonly completeMs: number | null;
  readonly outcome: Outcome | "pending";
  /** What a read returned (ok reads only). */
  readonly result: ReplyValue;
  /** The error text or the reason the outcome is unknown. */
  readonly error: string | null;
}

/** One line of the history file. */
export type HistoryEvent =
  | {
      readonly type: "invoke";
      readonly id: number;
      readonly client: number;
      readonly replica?: number;
      readonly kind: OpKind;
      readonly key: string;
      readonly value: string | null;
      readonly timeMs: number;
    }
  | {
      readonly type: Outcome;
      readonly id: number;
      readonly timeMs: number;
      readonly result: ReplyValue;
      readonly error: string | null;
    }
  | { readonly type: "nemesis"; readonly timeMs: number; readonly text: string }
  | { readonly type: "meta"; readonly timeMs: number; readonly data: Record<string, unknown> };

/** Records operations in memory and, line by line, to a JSON-lines file (when given a path). */
export class History {
  private readonly ops: Operation[] = [];
  private readonly path: string | null;
  private readonly origin: number;
  private readonly clock: () => number;
  private readonly values = new Map<string, string>();

  constructor(path: string | null, clock: () => number = () => performance.now()) {
    this.path = path;
    this.clock = clock;
    this.origin = clock();
  }

  /** Milliseconds since the history began. */
  now(): number {
    return this.clock() - this.origin;
  }

  invoke(
    client: number,
    kind: OpKind,
    key: string,
    value: string | null,
    replica?: number,
  ): number {
    const id = this.ops.length;
    const invokeMs = this.now();
    const at = replica === undefined ? {} : { replica };
    this.ops.push({
      id,
      client,
      ...at,
      kind,
      key,
      value,
      invokeMs,
      completeMs: null,
      outcome: "pending",
      result: null,
      error: null,
    });
    this.write({ type: "invoke", id, client, ...at, kind, key, value, timeMs: invokeMs });
    return id;
  }

  complete(id: number, outcome: Outcome, reply: ReplyValue, error: string | null = null): void {
    const result = Array.isArray(reply) ? reply.map((v: string) => this.intern(v)) : reply;
    const op = this.ops[id];
    assert(op !== undefined, `no operation ${id}`);
    assert(op.outcome === "pending", `operation ${id} completed twice`);
    const timeMs = this.now();
    this.ops[id] = {
      ...op,
      outcome,
      completeMs: outcome === "unknown" ? null : timeMs,
      result: outcome === "ok" ? result : null,
      error,
    };
    this.write({ type: outcome, id, timeMs, result: outcome === "ok" ? result : null, error });
  }

  /** Nemesis events so far, in time order. */
  readonly notes: { readonly timeMs: number; readonly text: string }[] = [];

  note(text: string): void {
    const timeMs = this.now();
    this.notes.push({ timeMs, text });
    this.write({ type: "nemesis", timeMs, text });
  }

  meta(data: Record<string, unknown>): void {
    this.write({ type: "meta", timeMs: this.now(), data });
  }

  operation(id: number): Operation {
    const op = this.ops[id];
    assert(op !== undefined, `no operation ${id}`);
    return op;
  }

  /** Operations so far; a pending one reads as unknown (it never returned). */
  operations(): Operation[] {
    return this.ops.map(settlePending);
  }

  /**
   * One copy of each value: a list read returns fresh strings for values the history already
   * holds, and a long run keeps every list read.
   */
  private intern(value: string): string {
    const known = this.values.get(value);
    if (known !== undefined) return known;
    this.values.set(value, value);
    return value;
  }

  private write(event: HistoryEvent): void {
    if (this.path !== null) appendFileSync(this.path, `${JSON.stringify(event)}\n`);
  }
}

function settlePending(op: Operation): Operation {
  return op.outcome === "pending" ? { ...op, outcome: "unknown", error: "never returned" } : op;
}

/** Rebuild the operations of a history file (for `--check FILE`). */
export function readHistory(path: string): { operations: Operation[]; events: HistoryEvent[] } {
  const events = readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as HistoryEvent);
  const ops = new Map<number, Operation>();
  for (const event of events) {
    if (event.type === "invoke") {
      ops.set(event.id, {
        id: event.id,
        client: event.client,
        ...(event.replica === undefined ? {} : { replica: event.replica }),
        kind: event.kind,
        key: event.key,
        value: event.value,
        invokeMs: event.timeMs,
        completeMs: null,
        outcome: "pending",
        result: null,
        error: null,
      });
    } else if (event.type === "ok" || event.type === "fail" || event.type === "unknown") {
      const op = ops.get(event.id);
      if (op === undefined) throw new Error(`${path}: completion of unknown operation ${event.id}`);
      ops.set(event.id, {
        ...op,
        outcome: event.type,
        completeMs: event.type === "unknown" ? null : event.timeMs,
        result: event.result,
        error: event.error,
      });
    }
  }
  return { operations: [...ops.values()].sort((a, b) => a.id - b.id).map(settlePending), events };
}

/** Values of a list reply shown at each end, at most. */
const LIST_ENDS_SHOWN = 4;

/** A reply for a report: long lists cut to their ends, with their length. */
export function formatReply(result: ReplyValue): string {
  if (!Array.isArray(result) || result.length <= 2 * LIST_ENDS_SHOWN) return JSON.stringify(result);
  const list = result as readonly string[];
  const head = list.slice(0, LIST_ENDS_SHOWN).join(", ");
  const tail = list.slice(-LIST_ENDS_SHOWN).join(", ");
  return `[${list.length} values: ${head} … ${tail}]`;
}

/** One line per operation, for anomaly reports. */
export function formatOperation(op: Operation): string {
  const end = op.completeMs === null ? "      ∞" : op.completeMs.toFixed(1).padStart(7);
  const args = op.value === null ? op.key : `${op.key} ${op.value}`;
  const verb = {
    write: "SET",
    read: "GET",
    append: "RPUSH",
    "list-read": "LRANGE",
    enqueue: "RPUSH",
    take: "BLMOVE",
    "queue-read": "LRANGE",
  }[op.kind];
  const reply =
    op.outcome === "ok" &&
    (op.kind === "read" ||
      op.kind === "list-read" ||
      op.kind === "take" ||
      op.kind === "queue-read")
      ? ` → ${formatReply(op.result)}`
      : op.outcome === "ok"
        ? ""
        : ` (${op.error ?? op.outcome})`;
  const at = op.replica === undefined ? "" : `@r${op.replica}`;
  return `#${op.id} c${op.client}${at} [${op.invokeMs.toFixed(1).padStart(7)} .. ${end}] ${op.outcome.padEnd(7)} ${verb} ${args}${reply}`;
}
