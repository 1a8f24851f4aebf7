import { createServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import type { Logger } from "pino";
import { Counter, Gauge, Registry } from "prom-client";
import { encodeCommands } from "../app/command-codec.ts";
import { findCommand } from "../app/kv-command-table.ts";
import type { ProgramCodec } from "../app/program/codec.ts";
import {
  isProtocolError,
  RESP_PARSER_DEFAULTS,
  RespParser,
  type RespParserOptions,
} from "../app/resp-parser.ts";
import { assert } from "../core/errors.ts";
import type { BellRinger, BellWaiter } from "../ring/bell.ts";
import { FrameRingReader, FrameRingWriter } from "../ring/frame-ring.ts";
import { authFileWarnings, ClientUsers } from "../runtime/client-auth.ts";
import type { ReplicaConfig } from "../runtime/config.ts";
import {
  PUSH_SEQ,
  REPLY_CONN_ID,
  REPLY_FINAL,
  REPLY_FLAGS,
  REPLY_HEADER_BYTES,
  REPLY_SEQ,
  REQUEST_CONN_ID,
  REQUEST_PREFIX_BYTES,
  REQUEST_SEQ,
  REQUEST_SEQ_EVENT,
  type WorkerRings,
} from "../runtime/thread-contracts.ts";
import { ClientAdmission, type ClientSession } from "./client-admission.ts";
import { type CommandRights, embeddedRights, loadProgramRights } from "./client-rights.ts";
import { loadClientTls } from "./client-tls.ts";
import {
  CONNECTION_PREFIX_BYTES,
  LOG_HEADER_BYTES,
  type LogConnection,
  writeConnectionPrefix,
} from "./log-command.ts";
import { ProgramRequests, programRequestCodec } from "./program-requests.ts";

/** Pipelined commands of one connection that travel in one log command, at most. */
const CHUNK_COMMANDS_MAX = 1024;
/** Bytes of pipelined commands gathered into one log command (a single larger command goes alone). */
const CHUNK_BYTES_MAX = 256 * 1024;
/** Retry of a request that found the ring full. */
const RING_RETRY_MS = 1;
/**
 * With authentication on, a connection that has not logged in this long after it opened (or
 * after RESET logged it out) is closed and counted: what a stranger holds before login is
 * bounded in time as well as in bytes. Redis has no such limit; a client logs in at once.
 */
export const LOGIN_TIMEOUT_MS = 10_000;

const OK = Buffer.from("+OK\r\n");

/**
 * What a connection may send before it logs in: Redis's limits for an unauthenticated client (10
 * arguments, 16 KiB bulks), enough for AUTH and HELLO and little for a stranger to hold on each
 * of --max-clients connections. Beyond them: a protocol error, and the connection is closed.
 */
const LOGGED_OUT_ARGS_MAX = 10;
const LOGGED_OUT_BULK_BYTES_MAX = 16 * 1024;
const LOGGED_OUT_REQUEST_BYTES_MAX = 64 * 1024;

/** The request parser's limits once a connection has logged in (or with no authentication). */
function loggedInLimits(requestBytesMax: number): RespParserOptions {
  return { ...RESP_PARSER_DEFAULTS, requestBytesMax, bulkBytesMax: requestBytesMax };
}

function loggedOutLimits(requestBytesMax: number): RespParserOptions {
  return {
    argsMax: LOGGED_OUT_ARGS_MAX,
    bulkBytesMax: Math.min(LOGGED_OUT_BULK_BYTES_MAX, requestBytesMax),
    inlineBytesMax: Math.min(LOGGED_OUT_BULK_BYTES_MAX, requestBytesMax),
    requestBytesMax: Math.min(LOGGED_OUT_REQUEST_BYTES_MAX, requestBytesMax),
  };
}

function isQuit(args: readonly Uint8Array[]): boolean {
  const name = args[0];
  return (
    args.length === 1 &&
    name !== undefined &&
    name.byteLength === 4 &&
    Buffer.from(name).toString("latin1").toLowerCase() === "quit"
  );
}

type ReplyRewrite = (reply: Buffer) => Buffer;

/** Whether an embedded-store command leaves state in its connection's session (kv-sessions.ts). */
function leavesSessionState(args: readonly Uint8Array[]): boolean {
  const spec = args.length > 0 ? findCommand(args[0]!) : undefined;
  return (
    spec !== undefined && (spec.kind === "session" || spec.flags?.includes("blocking") === true)
  );
}

/** A request record (thread-contracts.ts): its prefix, and the log command. */
interface RequestRecord {
  readonly header: Uint8Array;
  readonly body: Uint8Array;
}

function requestHeader(connId: number, seq: number): Uint8Array {
  const header = new Uint8Array(REQUEST_PREFIX_BYTES);
  const view = new DataView(header.buffer);
  view.setUint32(REQUEST_CONN_ID, connId, true);
  view.setUint32(REQUEST_SEQ, seq, true);
  return header;
}

/** One client connection. At most one request (a chunk of pipelined commands) is in flight. */
class Client {
  readonly parser: RespParser;
  /** Program mode, memcache or raw: cuts the stream instead of `parser`; null otherwise. */
  readonly program: ProgramRequests | null;
  /** Sequence number of the request in flight, or 0. */
  inFlightSeq = 0;
  nextSeq = 1;
  /** Commands parsed but not yet sent (beyond the last chunk's limit). */
  backlog: Uint8Array[][] = [];
  /** A protocol error to report once the request in flight is answered; then close. */
  protocolError: string | null = null;
  /** QUIT seen: answer +OK once the request in flight is answered, then close. */
  quitting = false;
  /** The request record waiting for ring space. */
  blocked: RequestRecord | null = null;
  closed = false;
  /**
   * The replicas hold state for this connection, so its close goes in the log: in program mode
   * once a request was sent (or waits for ring space: the copies know the connection); with the
   * embedded store once it sent a command that leaves state in its session (a "session" or
   * blocking command: SELECT, MULTI, SUBSCRIBE, BLPOP, …). A connection of plain commands closes
   * without a log entry.
   */
  sentData = false;
  /** Who logged in on this connection (client-admission.ts). */
  readonly session: ClientSession;
  /**
   * A reply given here, not by the consensus node (AUTH, NOAUTH, NOPERM, value too large): written
   * once the request in flight is answered, so it keeps its place in the pipeline.
   */
  localReply: Buffer | null = null;
  /** Closes the connection if it is still logged out at LOGIN_TIMEOUT_MS; null once logged in. */
  loginTimer: NodeJS.Timeout | null = null;
  /**
   * An admitted command that goes in a request of its own (client-multi.ts), waiting for the
   * chunk before it to be answered.
   */
  aloneNext: { readonly args: Buffer[]; readonly rewrite: ReplyRewrite } | null = null;
  /** Rewrites the reply to the request in flight (a command sent alone); null: passed on as it comes. */
  rewrite: ReplyRewrite | null = null;
  /** The reply records of the request in flight, kept until its last while `rewrite` is set. */
  rewriteParts: Buffer[] = [];

  readonly id: number;
  readonly socket: Socket;

  constructor(
    id: number,
    socket: Socket,
    limits: RespParserOptions,
    program: ProgramRequests | null,
    session: ClientSession,
  ) {
    this.id = id;
    this.socket = socket;
    this.parser = new RespParser(limits);
    this.program = program;
    this.session = session;
  }
}

export interface ClientServerOptions {
  readonly config: ReplicaConfig;
  /** The index the consensus node knows this server's rings by (0 for the in-thread server). */
  readonly workerIndex: number;
  readonly rings: Pick<WorkerRings, "requests" | "replies">;
  /**
   * Rung after writing requests: the consensus worker's doorbell from a connection worker, a
   * LocalBell on the consensus thread itself (--workers 0).
   */
  readonly requestBell: BellRinger;
  /** Waited on for replies; the consensus node rings it after writing them (the same two kinds). */
  readonly replyWaiter: BellWaiter;
  readonly clientsMax: number;
  readonly reusePort: boolean;
  readonly logger: Logger;
  /** LOGIN_TIMEOUT_MS unless a test shortens it. */
  readonly loginTimeoutMs?: number;
}

/**
 * The client side of a replica: accepts clients on the (shared) client port, cuts their byte streams into
 * commands, sends each connection's pipelined commands as one request record into its ring to the
 * consensus node, and writes the replies that come back on the return ring. It runs in each
 * connection worker (connection/connection-worker.ts), or with --workers 0 on the consensus thread
 * itself (consensus/consensus-worker.ts): the same code and ring records, only the bells differ.
 *
 * Program mode (`--app`): the log command carries the connection prefix (log-command.ts) naming
 * the client connection alike on every replica; memcache and raw clients are cut by the codec
 * (program-requests.ts) instead of the RESP parser; a closed connection is sent as a close event
 * (seq REQUEST_SEQ_EVENT) so the program's copies close theirs; the program's unasked output
 * (reply seq PUSH_SEQ) is written at once. Without `--app` the log commands are the embedded
 * store's, byte for byte.
 */
export class ClientServer {
  readonly registry = new Registry();
  private readonly connections = new Gauge({
    name: "apus_client_connections",
    help: "Open client connections",
    registers: [this.registry],
  });
  private readonly accepted = new Counter({
    name: "apus_client_connections_total",
    help: "Client connections accepted",
    registers: [this.registry],
  });
  private readonly refused = new Counter({
    name: "apus_client_refused_total",
    help: "Client connections refused (--max-clients; TLS handshakes in progress count)",
    registers: [this.registry],
  });
  private readonly loginTimeouts = new Counter({
    name: "apus_client_login_timeouts_total",
    help: "Connections closed for not logging in within LOGIN_TIMEOUT_MS",
    registers: [this.registry],
  });
  private readonly commands = new Counter({
    name: "apus_client_commands_total",
    help: "Commands read from clients",
    registers: [this.registry],
  });
  private readonly protocolErrors = new Counter({
    name: "apus_client_protocol_errors_total",
    help: "Clients closed for a protocol error (malformed or oversized request)",
    registers: [this.registry],
  });
  private readonly ringFull = new Counter({
    name: "apus_request_ring_full_total",
    help: "Times a request found the ring to the consensus worker full (backpressure)",
    registers: [this.registry],
  });
  private readonly authFailures = new Counter({
    name: "apus_client_auth_failures_total",
    help: "AUTH and HELLO AUTH refused with -WRONGPASS (unknown user or wrong password)",
    registers: [this.registry],
  });
  private readonly noAuth = new Counter({
    name: "apus_client_noauth_total",
    help: "Commands refused with -NOAUTH: sent before the connection logged in",
    registers: [this.registry],
  });
  private readonly noPerm = new Counter({
    name: "apus_client_noperm_total",
    help: "Commands refused with -NOPERM: not allowed by the user's role (--users-file)",
    registers: [this.registry],
  });
  private readonly valueTooLarge = new Counter({
    name: "apus_client_value_too_large_total",
    help: "Commands refused at this replica, never proposed: an argument over --max-value-bytes",
    registers: [this.registry],
  });
  private readonly loggedOutCut = new Counter({
    name: "apus_client_logged_out_cut_total",
    help: "Connections closed for sending a request over the small limits before logging in",
    registers: [this.registry],
  });
  private readonly tlsFailures = new Counter({
    name: "apus_client_tls_handshake_failures_total",
    help: "Failed TLS handshakes on the client port (plain TCP, no or a wrong client certificate, timeout)",
    registers: [this.registry],
  });

  private readonly options: ClientServerOptions;
  private readonly server: Server;
  private readonly clients = new Map<number, Client>();
  private readonly writer: FrameRingWriter;
  private readonly bell: BellRinger;
  private readonly reader: FrameRingReader;
  private readonly waiter: BellWaiter;
  private readonly blocked = new Set<Client>();
  /** Program mode: the close events that found the ring full, in order. */
  private readonly events: RequestRecord[] = [];
  /** Program mode (`--app`): log commands carry the connection prefix. */
  private readonly programMode: boolean;
  /** Program mode, memcache or raw: the codec that cuts client streams; null otherwise. */
  private readonly codec: ProgramCodec | null;
  /** Who may log in (--requirepass-file, --users-file); null: no authentication. */
  private readonly users: ClientUsers | null;
  /** The gate every RESP command passes; built by listen() (program mode reads the copy's table). */
  private admission: ClientAdmission | null = null;
  /** Whether the gate has anything to check (authentication, or the embedded store's value limit). */
  private admissionActive = false;
  private readonly loggedIn: RespParserOptions;
  private readonly loggedOut: RespParserOptions;
  private retryTimer: NodeJS.Timeout | null = null;
  private nextConnId = 1;
  private stopping = false;
  private rang = false;
  /** Resolves once the listening socket and every client are closed. */
  private closed: Promise<void> = Promise.resolve();

  constructor(options: ClientServerOptions) {
    this.options = options;
    const { app, protocol, requestBytesMax } = options.config;
    this.programMode = app !== null;
    this.codec =
      app !== null && protocol !== "resp" ? programRequestCodec(protocol, requestBytesMax) : null;
    this.writer = new FrameRingWriter(options.rings.requests);
    this.bell = options.requestBell;
    this.reader = new FrameRingReader(options.rings.replies);
    this.waiter = options.replyWaiter;
    // Read at start: a wrong file stops the replica with its name, before any client comes.
    this.users = ClientUsers.load(options.config);
    // Once per replica: every connection worker reads the same files.
    if (options.workerIndex === 0)
      for (const warning of authFileWarnings(options.config)) options.logger.warn(warning);
    this.loggedIn = loggedInLimits(requestBytesMax);
    this.loggedOut = loggedOutLimits(requestBytesMax);
    const tls = loadClientTls(options.config);
    const onConnection = (socket: Socket) => this.onConnection(socket);
    if (tls === null) {
      this.server = createServer({ noDelay: true }, onConnection);
    } else {
      // Only TLS on this port: a plain client's bytes fail the handshake and it is closed.
      const server = createTlsServer({ ...tls, noDelay: true }, onConnection);
      // onConnection runs once the handshake is done: count connections still in their handshake
      // against --max-clients too, where the TCP connection is accepted. A refused one is closed
      // at once, without a word: nothing readable can be said before TLS.
      server.maxConnections = options.clientsMax;
      server.on("drop", () => this.refused.inc());
      server.on("tlsClientError", (error, socket) => {
        this.tlsFailures.inc();
        options.logger.debug(
          { err: error.message, remote: socket.remoteAddress },
          "TLS handshake failed on the client port",
        );
      });
      this.server = server;
    }
  }

  /** The right each command needs, when some user's role limits it; null: nothing to check. */
  private async loadRights(): Promise<CommandRights | null> {
    if (this.users === null || !this.users.hasRestrictedUsers) return null;
    return this.programMode ? loadProgramRights(this.options.config) : embeddedRights;
  }

  async listen(): Promise<void> {
    const { clientHost, clientPort, app, valueBytesMax } = this.options.config;
    const valueCheck = app === null ? valueBytesMax : null;
    this.admission = new ClientAdmission({
      users: this.users,
      rights: await this.loadRights(),
      valueBytesMax: valueCheck,
      // The embedded store and a program's redis-server both speak RESP3, run RESET and MULTI.
      resp3: true,
      resetLogsOut: true,
      transactions: this.codec === null,
      answerAuthWithoutUsers: !this.programMode,
      counters: {
        authFailures: this.authFailures,
        noAuth: this.noAuth,
        noPerm: this.noPerm,
        valueTooLarge: this.valueTooLarge,
      },
    });
    this.admissionActive = this.users !== null || valueCheck !== null;
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(
        { host: clientHost, port: clientPort, reusePort: this.options.reusePort, backlog: 4096 },
        () => {
          this.server.off("error", reject);
          resolve();
        },
      );
    });
    void this.replyLoop();
  }

  private onConnection(socket: Socket): void {
    if (this.stopping || this.clients.size >= this.options.clientsMax) {
      this.refused.inc();
      socket.on("error", () => {});
      // Say why, then close our side for good: a refused client must not hold a descriptor.
      socket.end("-ERR max number of clients reached\r\n", () => socket.destroy());
      return;
    }
    const program = this.codec === null ? null : new ProgramRequests(this.codec);
    const admission = this.admission;
    assert(admission !== null, "a client before listen()");
    const client = new Client(
      this.nextConnId++,
      socket,
      admission.authRequired ? this.loggedOut : this.loggedIn,
      program,
      admission.session(),
    );
    if (this.nextConnId > 0xffff_fff0) this.nextConnId = 1;
    this.clients.set(client.id, client);
    this.accepted.inc();
    this.connections.inc();
    if (admission.authRequired) this.startLoginTimer(client);
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => {
      if (client.closed) return; // after QUIT or a protocol error: read nothing more
      if (client.program === null) client.parser.feed(chunk);
      else client.program.push(chunk);
      this.pump(client);
    });
    socket.on("drain", () => this.pump(client));
    socket.on("error", () => {}); // a reset client is normal; 'close' follows
    socket.on("close", () => {
      client.closed = true;
      this.stopLoginTimer(client);
      this.clients.delete(client.id);
      this.connections.dec();
      if (!client.sentData) {
        this.blocked.delete(client);
        return;
      }
      // Every replica holds a session (the store) or a connection (a program's copies) for this
      // client: close it there too, after its last request (still sent if it waits for ring
      // space: the client may not wait for replies).
      if (client.blocked === null) this.sendCloseEvent(client);
    });
  }

  private startLoginTimer(client: Client): void {
    assert(client.loginTimer === null, "one login deadline per connection");
    const timeoutMs = this.options.loginTimeoutMs ?? LOGIN_TIMEOUT_MS;
    client.loginTimer = setTimeout(() => {
      client.loginTimer = null;
      if (client.closed || client.session.user !== null) return;
      this.loginTimeouts.inc();
      this.options.logger.debug(
        { remote: client.socket.remoteAddress, timeoutMs },
        "closed a client that did not log in in time",
      );
      this.finish(
        client,
        Buffer.from(`-ERR not logged in within ${timeoutMs} ms (AUTH): connection closed\r\n`),
      );
    }, timeoutMs);
    client.loginTimer.unref();
  }

  private stopLoginTimer(client: Client): void {
    if (client.loginTimer === null) return;
    clearTimeout(client.loginTimer);
    client.loginTimer = null;
  }

  /** Send the next chunk of this client's commands if none is in flight. */
  private pump(client: Client): void {
    for (;;) {
      if (client.closed || client.inFlightSeq !== 0 || client.blocked !== null) return;
      if (client.socket.writableNeedDrain) {
        client.socket.pause(); // the client does not read its replies: stop reading its requests
        return;
      }
      const local = client.localReply;
      if (local !== null) {
        // Every reply before it is written (nothing in flight): its place in the pipeline.
        client.localReply = null;
        client.socket.write(local);
        continue;
      }
      const program = client.program;
      const chunk =
        program === null
          ? this.takeChunk(client)
          : program.takeChunk(CHUNK_COMMANDS_MAX, CHUNK_BYTES_MAX);
      if (chunk.length > 0) {
        this.send(client, chunk);
        return;
      }
      if (program === null) {
        if (client.localReply !== null) continue;
        if (client.protocolError !== null) {
          this.protocolErrors.inc();
          if (this.admission!.authRequired && client.session.user === null) {
            this.loggedOutCut.inc();
            this.options.logger.debug(
              { remote: client.socket.remoteAddress, error: client.protocolError },
              "closed a client that sent too much before logging in",
            );
          }
          this.finish(client, Buffer.from(`-ERR ${client.protocolError}\r\n`));
          return;
        }
        if (client.quitting) {
          this.finish(client, OK);
          return;
        }
        client.socket.resume();
        return;
      }
      // Every request before it is answered: answer a refused one here, then read on.
      const refusal = program.takeRefusal();
      if (refusal !== null) {
        client.socket.write(refusal);
        continue;
      }
      const end = program.end;
      if (end !== null) {
        if (end.protocolError) this.protocolErrors.inc();
        this.finish(client, end.lastReply);
        return;
      }
      client.socket.resume();
      return;
    }
  }

  /** Send one chunk of a client's commands as its request in flight. */
  private send(client: Client, chunk: Uint8Array[][]): void {
    this.commands.inc(chunk.length);
    // Every log command names its connection: the store keeps per-connection state too (its
    // database, transaction, subscriptions, blocked command), as a program's copy does.
    const body = this.connectionCommand(chunk, {
      worker: this.options.workerIndex,
      connId: client.id,
      event: "data",
    });
    if (!client.sentData && (this.programMode || chunk.some(leavesSessionState)))
      client.sentData = true;
    const seq = client.nextSeq++;
    if (client.nextSeq > 0xffff_fff0) client.nextSeq = 1;
    const header = requestHeader(client.id, seq);
    client.inFlightSeq = seq;
    // While a request is in flight, bytes pile up only in the parser, bounded by its limits.
    client.socket.pause();
    if (!this.writer.tryWrite(header, body)) {
      this.ringFull.inc();
      client.blocked = { header, body };
      this.blocked.add(client);
      this.scheduleRetry();
      return;
    }
    this.ringBell();
  }

  /** Program mode: a log command of the connection prefix, then `chunk` (command-codec body). */
  private connectionCommand(chunk: Uint8Array[][], connection: LogConnection): Uint8Array {
    const command = encodeCommands(chunk, LOG_HEADER_BYTES + CONNECTION_PREFIX_BYTES);
    writeConnectionPrefix(command, connection);
    return command;
  }

  /** Program mode: tell the copies this client's connection closed; it waits its turn if the ring is full. */
  private sendCloseEvent(client: Client): void {
    const event: RequestRecord = {
      header: requestHeader(client.id, REQUEST_SEQ_EVENT),
      body: this.connectionCommand([], {
        worker: this.options.workerIndex,
        connId: client.id,
        event: "close",
      }),
    };
    if (this.events.length === 0 && this.writer.tryWrite(event.header, event.body)) {
      this.ringBell();
      return;
    }
    this.ringFull.inc();
    this.events.push(event);
    this.scheduleRetry();
  }

  /** Write the last reply (if any) and close: the descriptor goes once it is flushed, whatever the client does. */
  private finish(client: Client, last: Uint8Array | null): void {
    client.closed = true;
    const destroy = () => client.socket.destroy();
    if (last === null) client.socket.end(destroy);
    else client.socket.end(last, destroy);
  }

  /**
   * Commands ready to go: everything parsed, up to the chunk limits, stopping at QUIT, an error,
   * or a command answered here (left in `client.localReply`).
   */
  private takeChunk(client: Client): Uint8Array[][] {
    const chunk: Uint8Array[][] = [];
    let bytes = 0;
    while (chunk.length < CHUNK_COMMANDS_MAX && bytes < CHUNK_BYTES_MAX && !client.quitting) {
      const alone = client.aloneNext;
      if (alone !== null) {
        // Its reply is rewritten whole: it goes in a request of its own, after the one before it.
        if (chunk.length === 0) {
          chunk.push(alone.args);
          client.rewrite = alone.rewrite;
          client.aloneNext = null;
        }
        break;
      }
      let args = client.backlog.shift();
      if (args === undefined) {
        if (client.protocolError !== null) break;
        const next = client.parser.next();
        if (next === null) break;
        if (isProtocolError(next)) {
          client.protocolError = next.error;
          break;
        }
        if (isQuit(next)) {
          client.quitting = true;
          break;
        }
        const admitted = this.admissionActive ? this.admit(client, next) : next;
        if (admitted === null) {
          if (client.aloneNext !== null) continue;
          break;
        }
        args = admitted;
      }
      let size = 0;
      for (const arg of args) size += arg.byteLength + 4;
      if (chunk.length > 0 && bytes + size > CHUNK_BYTES_MAX) {
        client.backlog.unshift(args);
        break;
      }
      chunk.push(args);
      bytes += size;
    }
    return chunk;
  }

  /**
   * One parsed command through the gate: the command to send, or null when it is answered here
   * (the reply left in `client.localReply`) or goes alone (left in `client.aloneNext`). Logging in
   * raises the parser's limits; RESET lowers them.
   */
  private admit(client: Client, args: Buffer[]): Buffer[] | null {
    const admission = this.admission!;
    const wasLoggedIn = client.session.user !== null;
    const decision = admission.admit(client.session, args);
    const loggedIn = client.session.user !== null;
    if (admission.authRequired && loggedIn !== wasLoggedIn) {
      client.parser.setLimits(loggedIn ? this.loggedIn : this.loggedOut);
      // Logged out again (RESET): a new deadline, as for a new connection.
      if (loggedIn) this.stopLoginTimer(client);
      else this.startLoginTimer(client);
    }
    switch (decision.kind) {
      case "forward":
        return decision.args;
      case "alone":
        client.aloneNext = { args: decision.args, rewrite: decision.rewrite };
        return null;
      case "reply":
        client.localReply = decision.reply;
        return null;
    }
  }

  /** Write the close events that waited for ring space, in order. */
  private retryEvents(): void {
    let sent = 0;
    while (sent < this.events.length) {
      const event = this.events[sent]!;
      if (!this.writer.tryWrite(event.header, event.body)) break;
      sent++;
    }
    if (sent === 0) return;
    this.events.splice(0, sent);
    this.ringBell();
  }

  private ringBell(): void {
    if (this.rang) return;
    this.rang = true;
    queueMicrotask(() => {
      this.rang = false;
      this.bell.ring();
    });
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.retryEvents();
      for (const client of this.blocked) {
        // A closed client's request goes all the same in program mode, its close event after it.
        const sendAnyway = client.sentData;
        if ((client.closed && !sendAnyway) || client.blocked === null) {
          this.blocked.delete(client);
          continue;
        }
        if (!this.writer.tryWrite(client.blocked.header, client.blocked.body)) break;
        client.blocked = null;
        this.blocked.delete(client);
        this.ringBell();
        if (client.closed) this.sendCloseEvent(client);
      }
      if (this.blocked.size > 0 || this.events.length > 0) this.scheduleRetry();
    }, RING_RETRY_MS);
  }

  /** Take replies off the return ring and write them to their clients. */
  private async replyLoop(): Promise<void> {
    const hasWork = () => this.reader.hasRecords;
    for (;;) {
      if (!(await this.waiter.waitForWork(hasWork))) return;
      this.reader.drain((record) => this.onReply(record));
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  private onReply(record: Uint8Array): void {
    const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
    const client = this.clients.get(view.getUint32(REPLY_CONN_ID, true));
    const seq = view.getUint32(REPLY_SEQ, true);
    if (seq === PUSH_SEQ) {
      // The program's unasked output (a Pub/Sub message): at once, whatever is in flight.
      if (client !== undefined && !client.closed)
        client.socket.write(record.slice(REPLY_HEADER_BYTES));
      return;
    }
    // A connection event's reply (nobody waits for it), or the client left.
    if (seq === REQUEST_SEQ_EVENT) return;
    if (client === undefined || client.closed || client.inFlightSeq !== seq) return;
    const final = (view.getUint8(REPLY_FLAGS) & REPLY_FINAL) !== 0;
    const rewrite = client.rewrite;
    if (rewrite === null) client.socket.write(record.slice(REPLY_HEADER_BYTES));
    else {
      client.rewriteParts.push(Buffer.from(record.subarray(REPLY_HEADER_BYTES))); // a copy
      if (!final) return;
      const whole = Buffer.concat(client.rewriteParts);
      client.rewrite = null;
      client.rewriteParts = [];
      // May log the connection in (AUTH inside MULTI): before the next command is admitted.
      client.socket.write(rewrite(whole));
    }
    if (!final) return;
    client.inFlightSeq = 0;
    this.pump(client);
  }

  async metricsJson(): Promise<unknown[]> {
    return (await this.registry.getMetricsAsJSON()) as unknown[];
  }

  /** Stop accepting new clients (the listening socket closes; open clients stay). */
  async stopAccepting(): Promise<void> {
    this.stopping = true;
    // close() stops listening now; its callback waits for every client to leave, which a pooled
    // client never does, so it is awaited only in shutdown(), after the clients are closed.
    if (this.server.listening)
      this.closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Close every client; replies still in the ring are lost with their clients. */
  async shutdown(): Promise<void> {
    await this.stopAccepting();
    for (const client of this.clients.values()) client.socket.destroy();
    await this.closed;
    // Requests and close events still waiting for ring space go with the clients.
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.blocked.clear();
    this.events.length = 0;
    this.waiter.close();
    this.options.logger.debug({ worker: this.options.workerIndex }, "client server stopped");
  }
}
