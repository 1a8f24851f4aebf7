import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "pino";
import { Counter, Gauge, Registry } from "prom-client";
import { encodeCommands } from "../../app/command-codec.ts";
import { isProtocolError, RespParser } from "../../app/resp-parser.ts";
import { DoorbellRinger, DoorbellWaiter } from "../../ring/doorbell.ts";
import { FrameRingReader, FrameRingWriter } from "../../ring/frame-ring.ts";
import type { ReplicaConfig } from "../../runtime/config.ts";
import {
  REPLY_CONN_ID,
  REPLY_FINAL,
  REPLY_FLAGS,
  REPLY_HEADER_BYTES,
  REPLY_SEQ,
  REQUEST_CONN_ID,
  REQUEST_PREFIX_BYTES,
  REQUEST_SEQ,
  type WorkerRings,
} from "../../runtime/thread-contracts.ts";
import { LOG_HEADER_BYTES } from "../log-command.ts";

/** Pipelined commands of one connection that travel in one log command, at most. */
const CHUNK_COMMANDS_MAX = 1024;
/** Bytes of pipelined commands gathered into one log command (a single larger command goes alone). */
const CHUNK_BYTES_MAX = 256 * 1024;
/** Retry of a request that found the ring full. */
const RING_RETRY_MS = 1;

const OK = Buffer.from("+OK\r\n");

function isQuit(args: readonly Uint8Array[]): boolean {
  const name = args[0];
  return (
    args.length === 1 &&
    name !== undefined &&
    name.byteLength === 4 &&
    Buffer.from(name).toString("latin1").toLowerCase() === "quit"
  );
}

/** One client connection. At most one request (a chunk of pipelined commands) is in flight. */
class Client {
  readonly parser: RespParser;
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
  blocked: { header: Uint8Array; body: Uint8Array } | null = null;
  closed = false;

  readonly id: number;
  readonly socket: Socket;

  constructor(id: number, socket: Socket, requestBytesMax: number) {
    this.id = id;
    this.socket = socket;
    this.parser = new RespParser({ requestBytesMax, bulkBytesMax: requestBytesMax });
  }
}

export interface ClientServerOptions {
  readonly config: ReplicaConfig;
  readonly workerIndex: number;
  readonly rings: WorkerRings;
  readonly consensusBell: SharedArrayBuffer;
  readonly clientsMax: number;
  readonly reusePort: boolean;
  readonly logger: Logger;
}

/**
 * A connection worker: accepts clients on the shared client port, cuts their byte streams into
 * commands, sends each connection's pipelined commands as one request record into its ring to the
 * consensus worker, and writes the replies that come back on the return ring.
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
    help: "Client connections refused (--max-clients)",
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

  private readonly options: ClientServerOptions;
  private readonly server: Server;
  private readonly clients = new Map<number, Client>();
  private readonly writer: FrameRingWriter;
  private readonly bell: DoorbellRinger;
  private readonly reader: FrameRingReader;
  private readonly waiter: DoorbellWaiter;
  private readonly blocked = new Set<Client>();
  private retryTimer: NodeJS.Timeout | null = null;
  private nextConnId = 1;
  private stopping = false;
  private rang = false;
  /** Resolves once the listening socket and every client are closed. */
  private closed: Promise<void> = Promise.resolve();

  constructor(options: ClientServerOptions) {
    this.options = options;
    this.writer = new FrameRingWriter(options.rings.requests);
    this.bell = new DoorbellRinger(options.consensusBell);
    this.reader = new FrameRingReader(options.rings.replies);
    // Replies come a whole consensus round after the request: spinning for them would mostly
    // burn CPU the other threads need (bench/ring.bench.ts), so this side parks at once.
    this.waiter = new DoorbellWaiter(options.rings.workerBell, { spinUs: 0 });
    this.server = createServer({ noDelay: true }, (socket) => this.onConnection(socket));
  }

  async listen(): Promise<void> {
    const { clientHost, clientPort } = this.options.config;
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
    const client = new Client(this.nextConnId++, socket, this.options.config.requestBytesMax);
    if (this.nextConnId > 0xffff_fff0) this.nextConnId = 1;
    this.clients.set(client.id, client);
    this.accepted.inc();
    this.connections.inc();
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => {
      if (client.closed) return; // after QUIT or a protocol error: read nothing more
      client.parser.feed(chunk);
      this.pump(client);
    });
    socket.on("drain", () => this.pump(client));
    socket.on("error", () => {}); // a reset client is normal; 'close' follows
    socket.on("close", () => {
      client.closed = true;
      this.clients.delete(client.id);
      this.blocked.delete(client);
      this.connections.dec();
    });
  }

  /** Send the next chunk of this client's commands if none is in flight. */
  private pump(client: Client): void {
    if (client.closed || client.inFlightSeq !== 0 || client.blocked !== null) return;
    if (client.socket.writableNeedDrain) {
      client.socket.pause(); // the client does not read its replies: stop reading its requests
      return;
    }
    const chunk = this.takeChunk(client);
    if (chunk.length === 0) {
      if (client.protocolError !== null) {
        this.protocolErrors.inc();
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
    this.commands.inc(chunk.length);
    const body = encodeCommands(chunk, LOG_HEADER_BYTES);
    const header = new Uint8Array(REQUEST_PREFIX_BYTES);
    const view = new DataView(header.buffer);
    const seq = client.nextSeq++;
    if (client.nextSeq > 0xffff_fff0) client.nextSeq = 1;
    view.setUint32(REQUEST_CONN_ID, client.id, true);
    view.setUint32(REQUEST_SEQ, seq, true);
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

  /** Write the last reply and close: the descriptor goes once it is flushed, whatever the client does. */
  private finish(client: Client, last: Buffer): void {
    client.closed = true;
    client.socket.end(last, () => client.socket.destroy());
  }

  /** Commands ready to go: everything parsed, up to the chunk limits, stopping at QUIT or an error. */
  private takeChunk(client: Client): Uint8Array[][] {
    const chunk: Uint8Array[][] = [];
    let bytes = 0;
    while (chunk.length < CHUNK_COMMANDS_MAX && bytes < CHUNK_BYTES_MAX && !client.quitting) {
      let args = client.backlog.shift();
      if (args === undefined) {
        if (client.protocolError !== null) break;
        const next = client.parser.next();
        if (next === null) break;
        if (isProtocolError(next)) {
          client.protocolError = next.error;
          break;
        }
        args = next;
      }
      if (isQuit(args)) {
        client.quitting = true;
        break;
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
      for (const client of this.blocked) {
        if (client.closed || client.blocked === null) {
          this.blocked.delete(client);
          continue;
        }
        if (!this.writer.tryWrite(client.blocked.header, client.blocked.body)) break;
        client.blocked = null;
        this.blocked.delete(client);
        this.ringBell();
      }
      if (this.blocked.size > 0) this.scheduleRetry();
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
    if (client === undefined || client.closed || client.inFlightSeq !== seq) return; // client left
    client.socket.write(record.slice(REPLY_HEADER_BYTES));
    if ((view.getUint8(REPLY_FLAGS) & REPLY_FINAL) === 0) return;
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
    this.waiter.close();
    this.options.logger.debug({ worker: this.options.workerIndex }, "connection worker stopped");
  }
}
