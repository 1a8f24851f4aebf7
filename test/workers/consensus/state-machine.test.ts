import { describe, expect, it } from "vitest";
import { encodeCommands } from "../../../src/app/command-codec.ts";
import { KvApp } from "../../../src/app/kv-app.ts";
import { SESSION_IDLE_MS } from "../../../src/workers/consensus/client-sessions.ts";
import { StateMachine } from "../../../src/workers/consensus/state-machine.ts";
import { LOG_HEADER_BYTES, writeLogHeader } from "../../../src/workers/log-command.ts";

function machine(): StateMachine {
  return new StateMachine(
    new KvApp({ valueBytesMax: 1 << 20, replyBytesMax: 1 << 20, info: () => "" }),
    {
      replicaId: 1,
      incarnation: 1,
    },
  );
}

function request(
  origin: number,
  incarnation: number,
  requestId: number,
  takenMs: number,
  ...args: string[]
) {
  const command = encodeCommands([args.map((a) => Buffer.from(a))], LOG_HEADER_BYTES);
  writeLogHeader(command, { origin, incarnation, requestId, floor: 0, takenMs });
  return command;
}

describe("the replicated state machine", () => {
  it("judges a late copy the same way on a replica that installed a snapshot (the log clock travels in it)", () => {
    const t = 10 * SESSION_IDLE_MS;
    const a = machine();
    const old = t - 2 * SESSION_IDLE_MS;
    a.applyBatch({ stampMs: old, commands: [request(2, 7, 1, old, "INCR", "n")] }, () => null);
    // Origin 2's session is forgotten after an hour of log time; the clock is now t.
    a.applyBatch({ stampMs: t, commands: [request(3, 1, 1, t, "SET", "x", "1")] }, () => null);
    const b = machine();
    b.install({ slot: 2, data: a.snapshot()! });
    // An old leader's copy of origin 2's request, taken 2 h ago, is chosen now.
    const late = { stampMs: old, commands: [request(2, 7, 1, old, "INCR", "n")] };
    a.applyBatch(late, () => null);
    b.applyBatch(late, () => null);
    expect(a.duplicates).toBe(1);
    expect(b.duplicates).toBe(a.duplicates);
    expect(Buffer.from(b.snapshot()!)).toEqual(Buffer.from(a.snapshot()!));
  });

  it("never runs a copy of a forgotten session's request, even one a leader stamps fresh (a forward queued for an hour)", () => {
    const t = 10 * SESSION_IDLE_MS;
    const m = machine();
    const taken = t - 2 * SESSION_IDLE_MS;
    m.applyBatch({ stampMs: taken, commands: [request(2, 7, 1, taken, "INCR", "n")] }, () => null);
    m.applyBatch({ stampMs: t, commands: [request(3, 1, 1, t, "SET", "x", "1")] }, () => null);
    // The same request, delivered late on a TCP link and proposed by a leader now: fresh batch
    // stamp, but its header still says when its origin took it.
    m.applyBatch({ stampMs: t, commands: [request(2, 7, 1, taken, "INCR", "n")] }, () => null);
    expect(m.duplicates).toBe(1);
  });
});
