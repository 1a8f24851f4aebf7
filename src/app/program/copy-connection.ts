import { connect, type Socket } from "node:net";
import type { CodecError, CutReply, CutRequest, ProgramCodec, ReplyCutter } from "./codec.ts";
import { isCodecError } from "./codec.ts";
import { type Resp2Value, readResp2 } from "./redis-command-table.ts";
import { isRespAnswer, respPushKind } from "./resp-codec.ts";

/**
 * Without framing (--protocol raw) a request counts as answered once the copy sent something, or
 * after this long without a byte: output that comes later reaches the client as unasked output.
 */
export const RAW_REPLY_WAIT_MS = 50;

/** Pub/Sub messages: output a subscribed connection receives without asking. */
const MESSAGE_KINDS = new Set(["message", "pmessage", "smessage"]);
const CHANNEL_KINDS = new Set(["subscribe", "unsubscribe"]);
const PATTERN_KINDS = new Set(["psubscribe", "punsubscribe"]);
/** Shard channels are a namespace of their own: a bare UNSUBSCRIBE does not touch them. */
const SHARD_KINDS = new Set(["ssubscribe", "sunsubscribe"]);

interface Waiter {
  remaining: number;
  readonly replies: Uint8Array[];
  readonly resolve: (replies: Uint8Array[]) => void;
}

export interface CopyConnectionEvents {
  /** Output the copy sent without a request waiting for it (a Pub/Sub message). */
  onPush(bytes: Uint8Array): void;
  /** The copy broke its protocol on this connection: nothing it sends can be trusted. */
  onBroken(error: CodecError | Error): void;
}

/**
 * One loopback connection to the replica's copy of the program, standing for one client
 * connection (or the apply loop's own control connection). Requests go out in order; the reply
 * cutter cuts the copy's answers; each request's promise resolves with its replies. Read
 * everything, always: a reply nobody relays is still read (and hashed), never left in a buffer.
 */
export class CopyConnection {
  private readonly socket: Socket;
  private readonly cutter: ReplyCutter;
  private readonly framed: boolean;
  private readonly waiting: Waiter[] = [];
  private readonly events: CopyConnectionEvents;
  private rawTimer: NodeJS.Timeout | null = null;
  /** Channels and patterns this connection is subscribed to (RESP), for bare UNSUBSCRIBE. */
  readonly channels = new Set<string>();
  readonly patterns = new Set<string>();
  readonly shardChannels = new Set<string>();
  /** The copy's own id of this connection (Redis `CLIENT ID`), for probing and unblocking. */
  clientId = 0;
  /** The copy closed this connection (or we did), and what later requests on it are answered. */
  closed = false;
  private closedError = "-ERR the program closed this connection\r\n";

  private constructor(socket: Socket, codec: ProgramCodec, events: CopyConnectionEvents) {
    this.socket = socket;
    this.cutter = codec.replies();
    this.framed = codec.framesReplies;
    this.events = events;
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", () => {}); // 'close' follows
    socket.on("close", () => this.closeWith("-ERR the program closed this connection\r\n"));
  }

  static open(
    port: number,
    host: string,
    codec: ProgramCodec,
    events: CopyConnectionEvents,
  ): Promise<CopyConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host });
      socket.once("error", reject);
      socket.once("connect", () => {
        socket.off("error", reject);
        resolve(new CopyConnection(socket, codec, events));
      });
    });
  }

  get subscribed(): boolean {
    return this.channels.size + this.patterns.size + this.shardChannels.size > 0;
  }

  /** Replies the copy still owes on this connection. */
  get outstanding(): number {
    return this.waiting.length;
  }

  /** Write `request`; resolves with its replies (`request.replies` of them) once all came. */
  send(request: CutRequest): Promise<Uint8Array[]> {
    if (this.closed)
      return Promise.resolve(
        Array.from({ length: Math.max(1, request.replies) }, () => Buffer.from(this.closedError)),
      );
    this.cutter.expect(request);
    this.socket.write(request.bytes);
    const replies = this.framed ? request.replies : 1;
    if (replies === 0) return Promise.resolve([]);
    return new Promise((resolve) => {
      this.waiting.push({ remaining: replies, replies: [], resolve });
      if (!this.framed) this.armRawTimer();
    });
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }

  /** Closed: whatever still waits gets `error` for each reply it lacks; later sends get it too. */
  private closeWith(error: string): void {
    if (!this.closed) this.closedError = error;
    this.closed = true;
    this.socket.destroy();
    for (const waiter of this.waiting.splice(0)) {
      while (waiter.remaining-- > 0) waiter.replies.push(Buffer.from(error));
      waiter.resolve(waiter.replies);
    }
  }

  private armRawTimer(): void {
    if (this.rawTimer !== null) return;
    this.rawTimer = setTimeout(() => {
      this.rawTimer = null;
      const waiter = this.waiting.shift();
      if (waiter !== undefined) waiter.resolve(waiter.replies); // nothing came: an empty answer
      if (this.waiting.length > 0) this.armRawTimer();
    }, RAW_REPLY_WAIT_MS);
  }

  private onData(chunk: Buffer): void {
    this.cutter.push(chunk);
    for (;;) {
      const reply = this.cutter.next();
      if (reply === null) return;
      if (isCodecError(reply)) {
        if (reply.code === "ERR_CODEC_LIMIT") {
          // A reply too large to relay: the same on every copy, so not a broken program. The
          // connection's framing is lost: it closes, and what waits on it gets this error.
          this.closeWith(`-ERR the program's reply is too large to relay (${reply.message})\r\n`);
          return;
        }
        this.events.onBroken(reply);
        this.close();
        return;
      }
      this.onReply(reply);
    }
  }

  private onReply(reply: CutReply): void {
    if (this.isUnasked(reply)) {
      this.events.onPush(reply.bytes);
      return;
    }
    const waiter = this.waiting[0];
    if (waiter === undefined) {
      this.events.onPush(reply.bytes); // raw output after its request was answered
      return;
    }
    if (this.framed) this.noteSubscription(reply.bytes);
    waiter.replies.push(reply.bytes);
    if (--waiter.remaining > 0 && this.framed) return;
    this.waiting.shift();
    if (this.rawTimer !== null) {
      clearTimeout(this.rawTimer);
      this.rawTimer = null;
      if (this.waiting.length > 0) this.armRawTimer();
    }
    waiter.resolve(waiter.replies);
  }

  /** A Pub/Sub message (RESP3 push, or in RESP2 an array `message …` on a subscribed connection). */
  private isUnasked(reply: CutReply): boolean {
    if (!this.framed) return false;
    if (reply.push) return !isRespAnswer(reply);
    if (!this.subscribed) return false;
    const kind = respPushKind(reply.bytes);
    return kind !== null && MESSAGE_KINDS.has(kind);
  }

  /** Follow (un)subscribe confirmations: `subscribe <channel> <count>`. */
  private noteSubscription(bytes: Uint8Array): void {
    const kind = respPushKind(bytes);
    if (
      kind === null ||
      !(CHANNEL_KINDS.has(kind) || PATTERN_KINDS.has(kind) || SHARD_KINDS.has(kind))
    )
      return;
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // A RESP3 push reads as an array.
    let items: Resp2Value[] | undefined;
    try {
      const asArray =
        buffer[0] === 0x3e ? Buffer.concat([Buffer.from("*"), buffer.subarray(1)]) : buffer;
      items = readResp2(asArray)?.value as Resp2Value[] | undefined;
    } catch {
      return; // a RESP3 null name (`_`): nothing was subscribed
    }
    const name = items?.[1];
    if (!Buffer.isBuffer(name)) return; // UNSUBSCRIBE with nothing subscribed: a null name
    const set = PATTERN_KINDS.has(kind)
      ? this.patterns
      : SHARD_KINDS.has(kind)
        ? this.shardChannels
        : this.channels;
    const key = name.toString("latin1");
    if (kind.includes("unsubscribe")) set.delete(key);
    else set.add(key);
  }
}
