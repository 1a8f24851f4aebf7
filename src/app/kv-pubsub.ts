/**
 * Pub/Sub of the embedded store: SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE PUNSUBSCRIBE PUBLISH PUBSUB.
 * Subscriptions are session state, the same on every replica (they arrive through the log), so
 * PUBLISH, applied at its place in the log, counts the same receivers everywhere and each replica
 * sends the message to those of its own clients that receive it: messages reach every subscriber
 * in log order. A RESP3 session gets them as push messages (`>`), a RESP2 one as arrays.
 */
import { GlobPattern } from "./glob.ts";
import type { KvSession } from "./kv-session.ts";
import { latin1, upper, wrongArity } from "./kv-shared.ts";
import { array, bulk, bulkArray, errorReply, integer, NULL_BULK } from "./resp.ts";

/** `*n` for RESP2, `>n` (push) for RESP3, then the items. */
export function pubsubFrame(resp: 2 | 3, items: readonly Buffer[]): Buffer {
  const out = array(items);
  if (resp === 3) out[0] = 0x3e; // '>'
  return out;
}

/** The null of the session's protocol, as an item of a push. */
function nullItem(resp: 2 | 3): Buffer {
  return resp === 3 ? Buffer.from("_\r\n") : NULL_BULK;
}

interface PatternSubscribers {
  readonly glob: GlobPattern;
  readonly sessions: Set<KvSession>;
}

/** Where a published message goes: a session and the bytes for it. */
export type Deliver = (session: KvSession, bytes: Buffer) => void;

export class PubSub {
  /** channel → its subscribers, in subscription order. */
  private readonly channels = new Map<string, Set<KvSession>>();
  private readonly patterns = new Map<string, PatternSubscribers>();

  subscribe(session: KvSession, names: readonly Buffer[]): Buffer {
    const replies: Buffer[] = [];
    for (const name of names) {
      const channel = latin1(name);
      if (!session.channels.has(channel)) {
        session.channels.add(channel);
        let set = this.channels.get(channel);
        if (set === undefined) {
          set = new Set();
          this.channels.set(channel, set);
        }
        set.add(session);
      }
      replies.push(
        pubsubFrame(session.resp, [
          bulk("subscribe"),
          bulk(name),
          integer(session.subscriptionCount),
        ]),
      );
    }
    return Buffer.concat(replies);
  }

  psubscribe(session: KvSession, names: readonly Buffer[]): Buffer {
    const replies: Buffer[] = [];
    for (const name of names) {
      const pattern = latin1(name);
      if (!session.patterns.has(pattern)) {
        session.patterns.add(pattern);
        let entry = this.patterns.get(pattern);
        if (entry === undefined) {
          entry = { glob: new GlobPattern(pattern), sessions: new Set() };
          this.patterns.set(pattern, entry);
        }
        entry.sessions.add(session);
      }
      replies.push(
        pubsubFrame(session.resp, [
          bulk("psubscribe"),
          bulk(name),
          integer(session.subscriptionCount),
        ]),
      );
    }
    return Buffer.concat(replies);
  }

  /** UNSUBSCRIBE [channel …]: none named → every channel of the session. */
  unsubscribe(session: KvSession, names: readonly Buffer[]): Buffer {
    const targets = names.length > 0 ? names.map(latin1) : [...session.channels];
    if (targets.length === 0)
      return pubsubFrame(session.resp, [
        bulk("unsubscribe"),
        nullItem(session.resp),
        integer(session.subscriptionCount),
      ]);
    const replies: Buffer[] = [];
    for (const channel of targets) {
      if (session.channels.delete(channel)) {
        const set = this.channels.get(channel)!;
        set.delete(session);
        if (set.size === 0) this.channels.delete(channel);
      }
      replies.push(
        pubsubFrame(session.resp, [
          bulk("unsubscribe"),
          bulk(channel),
          integer(session.subscriptionCount),
        ]),
      );
    }
    return Buffer.concat(replies);
  }

  punsubscribe(session: KvSession, names: readonly Buffer[]): Buffer {
    const targets = names.length > 0 ? names.map(latin1) : [...session.patterns];
    if (targets.length === 0)
      return pubsubFrame(session.resp, [
        bulk("punsubscribe"),
        nullItem(session.resp),
        integer(session.subscriptionCount),
      ]);
    const replies: Buffer[] = [];
    for (const pattern of targets) {
      if (session.patterns.delete(pattern)) {
        const entry = this.patterns.get(pattern)!;
        entry.sessions.delete(session);
        if (entry.sessions.size === 0) this.patterns.delete(pattern);
      }
      replies.push(
        pubsubFrame(session.resp, [
          bulk("punsubscribe"),
          bulk(pattern),
          integer(session.subscriptionCount),
        ]),
      );
    }
    return Buffer.concat(replies);
  }

  /** Forget every subscription (a snapshot being installed). */
  clear(): void {
    this.channels.clear();
    this.patterns.clear();
  }

  /** Every subscription of a session that goes away (close, RESET), without replies. */
  drop(session: KvSession): void {
    for (const channel of session.channels) {
      const set = this.channels.get(channel)!;
      set.delete(session);
      if (set.size === 0) this.channels.delete(channel);
    }
    for (const pattern of session.patterns) {
      const entry = this.patterns.get(pattern)!;
      entry.sessions.delete(session);
      if (entry.sessions.size === 0) this.patterns.delete(pattern);
    }
    session.channels.clear();
    session.patterns.clear();
  }

  /** PUBLISH: hands the message to every receiver (`deliver`); returns how many received it. */
  publish(channel: Buffer, message: Buffer, deliver: Deliver): number {
    const name = latin1(channel);
    let receivers = 0;
    const subscribers = this.channels.get(name);
    if (subscribers !== undefined) {
      for (const session of subscribers) {
        deliver(
          session,
          pubsubFrame(session.resp, [bulk("message"), bulk(channel), bulk(message)]),
        );
        receivers++;
      }
    }
    for (const [pattern, entry] of this.patterns) {
      if (!entry.glob.matches(name)) continue;
      for (const session of entry.sessions) {
        deliver(
          session,
          pubsubFrame(session.resp, [
            bulk("pmessage"),
            bulk(pattern),
            bulk(channel),
            bulk(message),
          ]),
        );
        receivers++;
      }
    }
    return receivers;
  }

  /** PUBSUB CHANNELS|NUMSUB|NUMPAT|SHARDCHANNELS|SHARDNUMSUB|HELP. */
  pubsubCommand(args: readonly Buffer[]): Buffer {
    const sub = upper(args[1]!);
    if (sub === "CHANNELS") {
      if (args.length > 3) return wrongArity("pubsub|channels");
      const glob = args.length === 3 ? new GlobPattern(latin1(args[2]!)) : null;
      // Sorted: the same list on every replica, whatever order a restored one subscribed in.
      const names = [...this.channels.keys()].filter((c) => glob === null || glob.matches(c));
      return bulkArray(names.sort());
    }
    if (sub === "NUMSUB") {
      const items: Buffer[] = [];
      for (let i = 2; i < args.length; i++) {
        items.push(bulk(args[i]!), integer(this.channels.get(latin1(args[i]!))?.size ?? 0));
      }
      return array(items);
    }
    if (sub === "NUMPAT") {
      if (args.length !== 2) return wrongArity("pubsub|numpat");
      return integer(this.patterns.size);
    }
    if (sub === "SHARDCHANNELS") return array([]);
    if (sub === "SHARDNUMSUB") {
      const items: Buffer[] = [];
      for (let i = 2; i < args.length; i++) items.push(bulk(args[i]!), integer(0));
      return array(items);
    }
    return errorReply(`ERR unknown subcommand '${latin1(args[1]!)}'. Try PUBSUB HELP.`);
  }
}
