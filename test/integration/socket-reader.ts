/**
 * A test's client socket to a server it does not speak through a library (memcached's text
 * protocol, a line protocol): bytes are buffered as they come, and a reader waits for what it
 * needs. A wait fails after REPLY_SILENCE_MS without a new byte (never a timing assertion).
 */
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";

const REPLY_SILENCE_MS = 30_000;

export class SocketReader {
  private buffered = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  private closed: Error | null = null;
  private readonly socket: Socket;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.wake?.();
    });
    const end = (error?: Error) => {
      this.closed ??= error ?? new Error("connection closed");
      this.wake?.();
    };
    socket.on("error", end);
    socket.on("close", () => end());
  }

  static open(port: number): Promise<SocketReader> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, "127.0.0.1", () => {
        socket.off("error", reject);
        socket.setNoDelay(true);
        resolve(new SocketReader(socket));
      });
      socket.once("error", reject);
    });
  }

  /** Bytes received and not read yet. */
  get pending(): number {
    return this.buffered.length;
  }

  write(bytes: string | Buffer): void {
    this.socket.write(typeof bytes === "string" ? Buffer.from(bytes, "latin1") : bytes);
  }

  close(): void {
    this.socket.destroy();
  }

  /** Everything up to and including the next `terminator`. */
  async line(terminator: string): Promise<Buffer> {
    await this.until(() => this.buffered.indexOf(terminator) !== -1);
    return this.take(this.buffered.indexOf(terminator) + terminator.length);
  }

  /** The next `n` bytes. */
  async bytes(n: number): Promise<Buffer> {
    await this.until(() => this.buffered.length >= n);
    return this.take(n);
  }

  private take(n: number): Buffer {
    const bytes = this.buffered.subarray(0, n);
    this.buffered = this.buffered.subarray(n);
    return bytes;
  }

  private async until(ready: () => boolean): Promise<void> {
    while (!ready()) {
      if (this.closed !== null) throw this.closed;
      const before = this.buffered.length;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, REPLY_SILENCE_MS);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
      if (!ready() && this.closed === null && this.buffered.length === before)
        throw new Error(
          `no reply in ${REPLY_SILENCE_MS / 1000} s; buffered ${JSON.stringify(this.buffered.toString("latin1"))}`,
        );
    }
  }
}

/** A process still running the program `name` (not a zombie, not a pid reused by another). */
export function runs(pid: number, name: string): boolean {
  try {
    if (/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "latin1"))) return false;
    return readFileSync(`/proc/${pid}/cmdline`, "latin1").includes(name);
  } catch {
    return false;
  }
}
