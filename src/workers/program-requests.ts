import {
  type CodecName,
  isCodecError,
  type ProgramCodec,
  type RequestCutter,
} from "../app/program/codec.ts";
import { MEMCACHE_VALUE_BYTES_MAX, memcacheCodec } from "../app/program/memcache-codec.ts";
import { RAW_CHUNK_BYTES_MAX, rawCodec } from "../app/program/raw-codec.ts";

/**
 * The codec that cuts client streams under `--app` with `--protocol memcache` or `raw` (RESP
 * clients keep the RespParser path). A request must fit one ring record, so nothing larger than
 * `requestBytesMax` is cut: the request ring holds requestBytesMax plus 1 MiB, room for a
 * memcached command line and fence beside a value of that size.
 */
export function programRequestCodec(
  protocol: Exclude<CodecName, "resp">,
  requestBytesMax: number,
): ProgramCodec {
  return protocol === "memcache"
    ? memcacheCodec({ valueBytesMax: Math.min(MEMCACHE_VALUE_BYTES_MAX, requestBytesMax) })
    : rawCodec({ chunkBytesMax: Math.min(RAW_CHUNK_BYTES_MAX, requestBytesMax) });
}

/** How a client stream ended: the last bytes to write (null: none), then close. */
export interface ProgramStreamEnd {
  readonly lastReply: Uint8Array | null;
  /** A protocol error (a final CodecError), not the client's own quit. */
  readonly protocolError: boolean;
}

/**
 * One client connection's requests under `--app` (memcache, raw): cuts the stream with the
 * codec's request cutter into chunks of whole requests, each a one-argument command
 * `[request.bytes]` of the log command's body (the consensus side cuts those bytes again).
 *
 * A chunk stops before anything that must be answered here, so that its answer reaches the
 * client in order with the replies of the requests before it: a refused request (its
 * `clientReply`: `takeRefusal()` once the chunk in flight is answered), a final error or
 * memcached `quit` (`end`: write its last reply, close; nothing after it is cut).
 */
export class ProgramRequests {
  private readonly cutter: RequestCutter;
  /** A request cut that did not fit the last chunk: it opens the next one. */
  private held: Uint8Array | null = null;
  /** A refused request's answer, due once every request before it is answered. */
  private refusal: Uint8Array | null = null;
  private ended: ProgramStreamEnd | null = null;

  constructor(codec: ProgramCodec) {
    this.cutter = codec.requests();
  }

  /** Set once the stream ended (final error, quit): write `lastReply` after the chunk in flight, close. */
  get end(): ProgramStreamEnd | null {
    return this.ended;
  }

  /** Adds client bytes; takes ownership of `chunk` (a socket `data` chunk). */
  push(chunk: Uint8Array): void {
    this.cutter.push(chunk);
  }

  /**
   * The requests ready to go, as one-argument commands: at most `commandsMax`, and at most
   * `bytesMax` (counted as the RESP path does) unless one request alone is larger. Empty when the
   * next thing is a refusal (take it), the end, or bytes not yet whole.
   */
  takeChunk(commandsMax: number, bytesMax: number): Uint8Array[][] {
    const chunk: Uint8Array[][] = [];
    let bytes = 0;
    while (chunk.length < commandsMax && bytes < bytesMax) {
      let request = this.held;
      this.held = null;
      if (request === null) {
        if (this.refusal !== null || this.ended !== null) break;
        const next = this.cutter.next();
        if (next === null) break;
        if (isCodecError(next)) {
          if (next.final) this.ended = { lastReply: next.clientReply, protocolError: true };
          else this.refusal = next.clientReply ?? EMPTY;
          break;
        }
        if (next.name === "quit") {
          // memcached answers nothing and closes; the close event tells the copies.
          this.ended = { lastReply: null, protocolError: false };
          break;
        }
        request = next.bytes;
      }
      const size = request.byteLength + 4;
      if (chunk.length > 0 && bytes + size > bytesMax) {
        this.held = request;
        break;
      }
      chunk.push([request]);
      bytes += size;
    }
    return chunk;
  }

  /** The answer of the refused request that stopped the last chunk, or null; call when nothing is in flight. */
  takeRefusal(): Uint8Array | null {
    const refusal = this.refusal;
    this.refusal = null;
    return refusal;
  }
}

const EMPTY = new Uint8Array(0);
