/**
 * MULTI … EXEC through the client port's gate (client-admission.ts), in transparent mode over
 * RESP: the program's redis-server runs the transaction, and what the gate answers itself fits
 * into it as redis-server 7 would answer it.
 *
 * - A command the gate refuses inside MULTI (-NOPERM, AUTH's arity) makes EXEC fail with
 *   -EXECABORT and apply nothing, as in Redis. In its place the copy is sent
 *   `apus-refused-in-multi`, the program layer's own device for its refusals (program-app.ts): a
 *   name redis-server does not know, so it rejects it when queued and flags the transaction. The
 *   marker goes alone in its request, and the client gets the refusal instead of the copy's
 *   unknown-command error.
 * - AUTH and HELLO … AUTH inside MULTI are queued (+QUEUED) and take effect at EXEC, as in Redis.
 *   Their passwords still never leave the replica: the copy queues PING in their place (HELLO
 *   without its AUTH when the password is right, so its reply is the copy's). When EXEC commits
 *   (its reply is an array of one element per command queued), their elements are replaced by
 *   AUTH's answers and the login happens; when it does not (-EXECABORT, a failed WATCH), nobody
 *   logs in. EXEC then goes alone in its request, so the commands after it are checked against
 *   the user it logged in.
 *
 * What the copy does not queue: EXEC, DISCARD and RESET (they end MULTI; EXEC with arguments too,
 * DISCARD or RESET with arguments are refused and flag it), MULTI and WATCH (refused, the
 * transaction goes on).
 *
 * The embedded store runs MULTI in its sessions (src/app/kv-sessions.ts) as redis-server does:
 * the same marker and placeholders work there. Without authentication the gate answers nothing,
 * so nothing is tracked.
 */

import { isCodecError } from "../app/program/codec.ts";
import { REFUSED_IN_MULTI } from "../app/program/redis-policy.ts";
import { respCodec, respRequest } from "../app/program/resp-codec.ts";
import { assert } from "../core/errors.ts";
import type { ClientUser } from "../runtime/client-auth.ts";
import type { Admission } from "./client-admission.ts";

/** Queued by the copy in place of an AUTH, whose password stays here. */
const PLACEHOLDER: Buffer[] = [Buffer.from("PING")];
const PLACEHOLDER_REQUEST = respRequest(PLACEHOLDER);

/** Whether `arg` is the command name `lowerName` (ASCII, any case), without allocating. */
export function isNamed(arg: Buffer, lowerName: string): boolean {
  if (arg.byteLength !== lowerName.length) return false;
  for (let i = 0; i < arg.byteLength; i++) {
    if ((arg[i]! | 0x20) !== lowerName.charCodeAt(i)) return false;
  }
  return true;
}

/** An AUTH or HELLO … AUTH queued inside MULTI. */
interface QueuedLogin {
  /** Its element in EXEC's reply: how many commands the copy queued before it. */
  readonly index: number;
  /** Its answer, in place of the copy's element; null: keep the copy's (HELLO's own reply). */
  readonly reply: Buffer | null;
  /** Who logs in when EXEC commits; null: nobody (a wrong password, an error). */
  readonly user: ClientUser | null;
}

/** The session a transaction belongs to (client-admission.ts ClientSession). */
interface LoginSession {
  user: ClientUser | null;
}

/** One connection's transaction as the gate sees it. */
export class ClientTransaction {
  /** Between a MULTI sent on to the copy and the EXEC, DISCARD or RESET that ends it. */
  private active = false;
  /** Commands sent on since MULTI that the copy queues. Invariant: every login's index < queued. */
  private queued = 0;
  /** AUTH and HELLO … AUTH queued since MULTI, in order. */
  private logins: QueuedLogin[] = [];

  get inMulti(): boolean {
    return this.active;
  }

  /**
   * AUTH or HELLO … AUTH inside MULTI: `forward` is what the copy queues in its place (PING
   * unless given), `reply` its element of EXEC's reply, `user` who logs in at EXEC.
   */
  queueLogin(reply: Buffer | null, user: ClientUser | null, forward = PLACEHOLDER): Admission {
    assert(this.active, "a login queued outside MULTI");
    this.logins.push({ index: this.queued, reply, user });
    return { kind: "forward", args: forward };
  }

  /** The gate's decision for one command, made to fit the transaction (file comment). */
  follow(session: LoginSession, decision: Admission): Admission {
    if (decision.kind === "reply") {
      if (!this.active) return decision;
      const refusal = decision.reply;
      return { kind: "alone", args: [REFUSED_IN_MULTI], rewrite: () => refusal };
    }
    const args = decision.args;
    const name = args[0]!;
    if (!this.active) {
      if (isNamed(name, "multi") && args.length === 1) this.begin();
      return decision;
    }
    if (isNamed(name, "exec")) return this.exec(session, decision);
    if (args.length === 1 && (isNamed(name, "discard") || isNamed(name, "reset"))) {
      this.end();
      return decision;
    }
    if (!isNamed(name, "multi") && !isNamed(name, "watch")) this.queued++;
    return decision;
  }

  private begin(): void {
    this.active = true;
    this.queued = 0;
    this.logins = [];
  }

  private end(): void {
    this.active = false;
    this.queued = 0;
    this.logins = [];
  }

  /** EXEC ends MULTI; with logins queued it goes alone and its reply is rewritten. */
  private exec(session: LoginSession, decision: Admission): Admission {
    assert(decision.kind !== "reply");
    const { queued, logins } = this;
    this.end();
    if (logins.length === 0 || decision.args.length !== 1) return decision;
    return {
      kind: "alone",
      args: decision.args,
      rewrite: (reply) => commit(session, reply, queued, logins),
    };
  }
}

/** EXEC's reply with the queued logins' answers put in, and the login done; or as it came. */
function commit(
  session: LoginSession,
  reply: Buffer,
  queued: number,
  logins: readonly QueuedLogin[],
): Buffer {
  const split = execElements(reply, queued);
  if (split === null) return reply; // not committed (EXECABORT, a failed WATCH): nobody logs in
  const { header, elements } = split;
  for (const login of logins) {
    if (login.reply !== null) elements[login.index] = login.reply;
    if (login.user !== null) session.user = login.user;
  }
  return Buffer.concat([header, ...elements]);
}

/** The header and the `count` elements of an EXEC reply that is an array of them, else null. */
function execElements(reply: Buffer, count: number): { header: Buffer; elements: Buffer[] } | null {
  const lineEnd = reply.indexOf("\r\n");
  if (reply[0] !== 0x2a || lineEnd < 0) return null; // '*'
  if (reply.toString("latin1", 1, lineEnd) !== String(count)) return null;
  const cutter = respCodec().replies();
  cutter.push(reply.subarray(lineEnd + 2));
  const elements: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    cutter.expect(PLACEHOLDER_REQUEST);
    const element = cutter.next();
    if (element === null || isCodecError(element)) return null;
    elements.push(Buffer.from(element.bytes));
  }
  if (cutter.bufferedBytes !== 0) return null;
  return { header: reply.subarray(0, lineEnd + 2), elements };
}
