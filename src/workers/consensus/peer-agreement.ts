/**
 * The settings every replica of a cluster must share, checked between peers before a peer's
 * messages are let through. A replica whose --max-value-bytes differs from the leader's applies
 * the same SET differently (one stores it, the other refuses it), and the replicas diverge
 * silently. (The replica count is not one of them: the membership is in the log, the same on every
 * replica by construction, and differs between replicas for a moment during a change.) So each replica sends
 * its settings to every peer (a "hello" on CHANNEL_AGREEMENT) and drops every other message of a
 * peer until that peer's hello has arrived and matches. A replica that differs is told why, in
 * its log and in its peers' logs, and never joins.
 *
 * Protocol: a hello carries the sender's settings, its incarnation, `heard`: the incarnation of
 * the receiver whose hello the sender holds (0: none), and `ask`: the sender has not yet seen
 * the receiver hold its hello, and wants an answer. A replica resends its hello (with `ask`)
 * every HELLO_RESEND_MS to each peer that has not shown (by `heard`) that it holds ours, and
 * answers every hello that asks. An answer asks only while the answerer itself lacks that proof,
 * and it carries `heard`, so after one exchange neither side asks: two replicas never bounce
 * hellos back and forth, agreeing or not, and a lost answer costs one resend interval. Hellos
 * ride the authenticated transport, so only holders of the cluster key can send one.
 *
 * Pure: no sockets, no clock of its own (the consensus node passes time and sends what
 * `hellosToSend` returns), so it is unit-tested alone.
 */
import { REPLICA_ID_MAX } from "../../core/membership.ts";
import { WIRE_VERSION } from "../../core/wire.ts";
import type { ReplicaConfig } from "../../runtime/config.ts";

/** What must agree, by setting name (the flag) and value; compared as strings. */
export type AgreedSettings = Readonly<Record<string, string>>;

/** A peer's hello resent this often until it shows it holds ours. */
export const HELLO_RESEND_MS = 250;
/** A disagreement is logged again this often while it lasts (an operator may miss the first). */
export const DISAGREEMENT_LOG_EVERY_MS = 10_000;
/** Longest hello accepted: a few settings as JSON. */
export const HELLO_BYTES_MAX = 4096;

export interface Hello {
  readonly incarnation: number;
  /** The receiver's incarnation whose hello the sender holds; 0: none yet. */
  readonly heard: number;
  /** The sender has not seen the receiver hold its hello: answer. */
  readonly ask: boolean;
  readonly settings: AgreedSettings;
}

export function encodeHello(hello: Hello): Uint8Array {
  return Buffer.from(JSON.stringify({ v: 1, ...hello }), "utf8");
}

/** The hello in `bytes`, or null when it is not one this version understands. */
export function decodeHello(bytes: Uint8Array): Hello | null {
  if (bytes.byteLength > HELLO_BYTES_MAX) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    return null;
  }
  if (parsed === null || typeof parsed !== "object") return null;
  const { v, incarnation, heard, ask, settings } = parsed as Record<string, unknown>;
  if (v !== 1 || !Number.isSafeInteger(incarnation) || !Number.isSafeInteger(heard)) return null;
  if (typeof ask !== "boolean") return null;
  if (settings === null || typeof settings !== "object" || Array.isArray(settings)) return null;
  const entries = Object.entries(settings as Record<string, unknown>);
  if (!entries.every(([, value]) => typeof value === "string")) return null;
  return {
    incarnation: incarnation as number,
    heard: heard as number,
    ask,
    settings: Object.fromEntries(entries) as AgreedSettings,
  };
}

/** Settings that differ, as "name: theirs X, ours Y" (a setting only one side has counts too). */
export function differences(ours: AgreedSettings, theirs: AgreedSettings): string[] {
  const names = [...new Set([...Object.keys(ours), ...Object.keys(theirs)])].sort();
  return names
    .filter((name) => ours[name] !== theirs[name])
    .map(
      (name) => `${name}: theirs ${theirs[name] ?? "(absent)"}, ours ${ours[name] ?? "(absent)"}`,
    );
}

type PeerState = "unknown" | "agreed" | "disagreed";

interface Peer {
  state: PeerState;
  /** The incarnation of the last hello received, 0 before any. */
  incarnation: number;
  /** The peer showed (by `heard`) that it holds a hello of our current incarnation. */
  holdsOurs: boolean;
  /** When our hello was last sent to it; -Infinity: never. */
  sentMs: number;
  /** The differences last reported, and when; for the log. */
  differences: string[];
  loggedMs: number;
}

/** What the node should tell the operator about a peer's hello. */
export type AgreementEvent =
  | { readonly kind: "agreed"; readonly peer: number }
  | { readonly kind: "disagreed"; readonly peer: number; readonly differences: readonly string[] };

export class PeerAgreement {
  /** Index id - 1 over 1..REPLICA_ID_MAX: the peers now (and ourselves); null: no member. */
  private readonly peers: (Peer | null)[] = [];
  private readonly self: number;
  private readonly incarnation: number;
  readonly settings: AgreedSettings;

  /**
   * `peers`: the ids of the replicas we talk to at start (ourselves may be among them), or a
   * count n for ids 1..n. The membership adds and removes them later (addPeer, removePeer).
   */
  constructor(
    self: number,
    peers: number | readonly number[],
    incarnation: number,
    settings: AgreedSettings,
  ) {
    this.self = self;
    this.incarnation = incarnation;
    this.settings = settings;
    for (let id = 1; id <= REPLICA_ID_MAX; id++) this.peers.push(null);
    const ids = typeof peers === "number" ? Array.from({ length: peers }, (_, i) => i + 1) : peers;
    for (const id of [self, ...ids]) this.addPeer(id);
  }

  /** `id` is a member now: its hello is asked for (idempotent: a known peer keeps its standing). */
  addPeer(id: number): void {
    if (this.peers[id - 1] != null) return;
    this.peers[id - 1] = {
      state: id === this.self ? "agreed" : "unknown",
      incarnation: 0,
      holdsOurs: id === this.self,
      sentMs: Number.NEGATIVE_INFINITY,
      differences: [],
      loggedMs: Number.NEGATIVE_INFINITY,
    };
  }

  /** `id` left the membership: its messages no longer pass, and it is sent no hello. */
  removePeer(id: number): void {
    if (id !== this.self) this.peers[id - 1] = null;
  }

  /** Whether `peer`'s messages may go on to the core and the router (one array read). */
  agreed(peer: number): boolean {
    return this.peers[peer - 1]?.state === "agreed";
  }

  /** Peers whose settings differ from ours (for /status). */
  disagreeing(): number[] {
    return this.peers.flatMap((p, i) => (p?.state === "disagreed" ? [i + 1] : []));
  }

  /** The hellos due now: to each peer that has not shown it holds ours, every HELLO_RESEND_MS. */
  hellosToSend(nowMs: number): { readonly to: number; readonly payload: Uint8Array }[] {
    const out: { to: number; payload: Uint8Array }[] = [];
    this.peers.forEach((peer, index) => {
      if (peer === null || peer.holdsOurs || nowMs - peer.sentMs < HELLO_RESEND_MS) return;
      peer.sentMs = nowMs;
      out.push({ to: index + 1, payload: this.helloFor(peer) });
    });
    return out;
  }

  /**
   * A hello from `from`. Returns the answer to send at once (when it has not heard us), and an
   * event when the peer's standing changed or a disagreement is due to be logged again.
   */
  receive(
    from: number,
    hello: Hello,
    nowMs: number,
  ): { readonly reply: Uint8Array | null; readonly event: AgreementEvent | null } {
    const peer = this.peers[from - 1];
    if (peer == null || from === this.self) return { reply: null, event: null };
    // A restarted peer's settings may have changed: its first hello decides again.
    peer.incarnation = hello.incarnation;
    peer.holdsOurs = hello.heard === this.incarnation;
    const diff = differences(this.settings, hello.settings);
    const before = peer.state;
    peer.state = diff.length === 0 ? "agreed" : "disagreed";
    let event: AgreementEvent | null = null;
    if (peer.state === "agreed" && before !== "agreed") event = { kind: "agreed", peer: from };
    if (peer.state === "disagreed") {
      const changed = diff.join("\n") !== peer.differences.join("\n");
      if (changed || nowMs - peer.loggedMs >= DISAGREEMENT_LOG_EVERY_MS) {
        peer.loggedMs = nowMs;
        event = { kind: "disagreed", peer: from, differences: diff };
      }
    }
    peer.differences = diff;
    // Answer a peer that asks: it has not seen us hold its hello (or has not heard us at all).
    const reply = hello.ask ? this.helloFor(peer) : null;
    if (reply !== null) peer.sentMs = nowMs;
    return { reply, event };
  }

  private helloFor(peer: Peer): Uint8Array {
    return encodeHello({
      incarnation: this.incarnation,
      heard: peer.incarnation,
      ask: !peer.holdsOurs,
      settings: this.settings,
    });
  }
}

/**
 * The settings that decide what a replica does with a chosen command, or how it counts votes: they
 * must be the same everywhere. Named by their flags, so a disagreement reads as what to change.
 */
export function agreedSettings(config: ReplicaConfig): AgreedSettings {
  return {
    "wire-version": String(WIRE_VERSION),
    "cluster-id": String(config.clusterId),
    app: config.app === null ? "embedded store" : `program (--app), --protocol ${config.protocol}`,
    "max-value-bytes": String(config.valueBytesMax),
    "max-reply-bytes": String(config.replyBytesMax),
    // Sent only when set, so a replica without a limit still agrees with one of an older
    // version, which does not know the setting.
    ...(config.memoryBytesMax > 0 ? { "max-memory": String(config.memoryBytesMax) } : {}),
    // Always sent, the default too: a build without the lease applies blocked commands
    // differently (it serves a silent replica's clients), so it must not join this one.
    "block-lease-ms": String(config.blockLeaseMs),
  };
}
