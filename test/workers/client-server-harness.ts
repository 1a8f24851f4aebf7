/**
 * A ClientServer (src/workers/client-server.ts) on a real port, with the test acting as the
 * consensus node on its rings: it reads the request records the server writes and writes the
 * replies. Shared by the client-server tests (program mode, the client port's gate).
 */
import { connect, createServer, type Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { pino } from "pino";
import { expect } from "vitest";
import { decodeCommands } from "../../src/app/command-codec.ts";
import { createDoorbell, DoorbellRinger, DoorbellWaiter } from "../../src/ring/doorbell.ts";
import { createFrameRing, FrameRingReader, FrameRingWriter } from "../../src/ring/frame-ring.ts";
import { parseReplicaArgs } from "../../src/runtime/config.ts";
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
} from "../../src/runtime/thread-contracts.ts";
import { ClientServer } from "../../src/workers/client-server.ts";
import { logBodyOffset } from "../../src/workers/log-command.ts";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

export async function until<T>(what: string, poll: () => T | undefined, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = poll();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

export interface Request {
  readonly connId: number;
  readonly seq: number;
  /** The log command (header reserved, the connection prefix in program mode, body). */
  readonly command: Uint8Array;
  /** Its commands, decoded, as latin1 strings. */
  readonly commands: string[][];
}

export interface HarnessOptions {
  readonly requestRingBytes?: number;
  readonly clientsMax?: number;
  readonly loginTimeoutMs?: number;
  /** The worker index the server writes into its requests. */
  readonly workerIndex?: number;
}

export class Harness {
  readonly server: ClientServer;
  readonly port: number;
  private readonly reader: FrameRingReader;
  private readonly writer: FrameRingWriter;
  private readonly ringer: DoorbellRinger;
  private readonly queue: Request[] = [];

  /** `flags` are replica flags (config.ts); the port and a one-replica --peers are set here. */
  static async start(flags: string[], options: HarnessOptions = {}): Promise<Harness> {
    const port = await freePort();
    const parsed = parseReplicaArgs([
      "--id",
      "1",
      "--peers",
      "127.0.0.1:1",
      "--client-port",
      String(port),
      "--client-host",
      "127.0.0.1",
      ...flags,
    ]);
    if (parsed.action !== "run") throw new Error("expected a run config");
    const consensusBell = createDoorbell();
    const workerBell = createDoorbell();
    const rings: WorkerRings = {
      requests: createFrameRing(options.requestRingBytes ?? 1 << 20, consensusBell),
      replies: createFrameRing(1 << 20, workerBell),
      workerBell,
    };
    const server = new ClientServer({
      config: parsed.config,
      workerIndex: options.workerIndex ?? 0,
      rings,
      requestBell: new DoorbellRinger(consensusBell),
      replyWaiter: new DoorbellWaiter(workerBell, { spinUs: 0 }),
      clientsMax: options.clientsMax ?? 100,
      reusePort: false,
      logger: pino({ level: "silent" }),
      ...(options.loginTimeoutMs === undefined ? {} : { loginTimeoutMs: options.loginTimeoutMs }),
    });
    await server.listen();
    return new Harness(server, port, rings);
  }

  private constructor(server: ClientServer, port: number, rings: WorkerRings) {
    this.server = server;
    this.port = port;
    this.reader = new FrameRingReader(rings.requests);
    this.writer = new FrameRingWriter(rings.replies);
    this.ringer = new DoorbellRinger(rings.workerBell);
  }

  private drain(): void {
    this.reader.drain((record) => {
      const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
      const command = record.slice(REQUEST_PREFIX_BYTES); // the reader reuses its record
      this.queue.push({
        connId: view.getUint32(REQUEST_CONN_ID, true),
        seq: view.getUint32(REQUEST_SEQ, true),
        command,
        commands: (decodeCommands(command, logBodyOffset(command)) ?? []).map((args) =>
          args.map((arg) => Buffer.from(arg).toString("latin1")),
        ),
      });
    });
  }

  /** The next request record the server wrote. */
  next(): Promise<Request> {
    return until("a request record", () => {
      this.drain();
      return this.queue.shift();
    });
  }

  /** Nothing more arrives within `ms`. */
  async expectNothing(ms = 100): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    this.drain();
    expect(this.queue).toEqual([]);
  }

  /** A reply record for connection `connId`, request `seq` (or PUSH_SEQ, an event's seq). */
  reply(connId: number, seq: number, bytes: string, final = true): void {
    const header = new Uint8Array(REPLY_HEADER_BYTES);
    const view = new DataView(header.buffer);
    view.setUint32(REPLY_CONN_ID, connId, true);
    view.setUint32(REPLY_SEQ, seq, true);
    view.setUint8(REPLY_FLAGS, final ? REPLY_FINAL : 0);
    expect(this.writer.tryWrite(header, Buffer.from(bytes, "latin1"))).toBe(true);
    this.ringer.ring();
  }

  /** The reply to `request`. */
  answer(request: Request, bytes: string, final = true): void {
    this.reply(request.connId, request.seq, bytes, final);
  }

  /** A counter's value from the server's registry. */
  async counter(name: string): Promise<number> {
    const metric = this.server.registry.getSingleMetric(name);
    const values = (await metric?.get())?.values ?? [];
    return values.reduce((sum, v) => sum + v.value, 0);
  }
}

/** A client socket (plain or TLS) that keeps everything it received. */
export class TestClient {
  readonly socket: Socket | TLSSocket;
  received = "";
  closed = false;

  constructor(socket: Socket | TLSSocket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.received += chunk.toString("latin1");
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
    });
  }

  static connect(port: number): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: "127.0.0.1", port }, () => resolve(new TestClient(socket)));
      socket.once("error", reject);
    });
  }

  send(text: string): void {
    this.socket.write(Buffer.from(text, "latin1"));
  }

  receives(text: string): Promise<void> {
    return until(JSON.stringify(text), () => (this.received === text ? true : undefined)).then(
      () => {},
      (error: unknown) => {
        throw new Error(`${(error as Error).message}; got ${JSON.stringify(this.received)}`);
      },
    );
  }

  closes(ms?: number): Promise<void> {
    return until("the client to be closed", () => (this.closed ? true : undefined), ms).then(
      () => {},
    );
  }
}

/** A RESP request of `args`. */
export function resp(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`;
}
