/**
 * The client request parser (src/app/resp-parser.ts), fed whole and in socket-sized chunks.
 */
import fc from "fast-check";
import {
  isProtocolError,
  RESP_PARSER_DEFAULTS,
  RespParser,
  type RespParserOptions,
} from "../../../src/app/resp-parser.ts";
import { measureAllocations } from "../alloc-probe.ts";
import {
  BIG_ARG_BYTES,
  encodeRespCommands,
  type RespCommand,
  respCommandsArb,
  SMALL_LIMITS,
  withinLimits,
} from "../gen/resp-requests.ts";
import { chunk, chunkingArb, fuzzBytes, largestChunk } from "../mutate.ts";
import { check, syncTarget, tally } from "../target.ts";

/** Smallest buffer the parser allocates to join unread bytes with a chunk (JOIN_BYTES_MIN). */
const JOIN_BYTES_MIN = 16 * 1024;
/** A length header line at most: `$` or `*`, '-', 15 digits, CR and the byte after. */
const HEADER_LINE_BYTES_MAX = 19;

export interface ParseResult {
  /** Requests yielded, each argument as latin1 text (comparable across runs). */
  readonly requests: string[][];
  /** The protocol error that ended the stream, or null. */
  readonly error: string | null;
}

/**
 * Feeds `chunks` in order, draining `next()` after each as the runtime does, and checks on the
 * way what must hold whatever the bytes: no exception, bounded yields (termination), requests
 * within the limits, bytes held bounded, a protocol error final.
 */
export function parseChunks(chunks: readonly Buffer[], options: RespParserOptions): ParseResult {
  const parser = new RespParser(options);
  const totalBytes = chunks.reduce((sum, c) => sum + c.length, 0);
  const requests: string[][] = [];
  const heldMax = Math.max(options.inlineBytesMax, options.bulkBytesMax + 2, HEADER_LINE_BYTES_MAX);
  for (const piece of chunks) {
    parser.feed(piece);
    for (;;) {
      const request = parser.next();
      if (request === null) break;
      if (isProtocolError(request)) {
        check(request.error.startsWith("Protocol error: "), `error wording: ${request.error}`);
        check(parser.next() === request, "a protocol error is final");
        parser.feed(Buffer.from("*1\r\n$4\r\nPING\r\n"));
        check(parser.next() === request, "input after a protocol error is ignored");
        check(parser.bufferedBytes === 0, "a failed parser holds no bytes");
        return { requests, error: request.error };
      }
      check(request.length >= 1, "a request has at least one argument");
      check(request.length <= options.argsMax, `${request.length} arguments above argsMax`);
      for (const arg of request) {
        check(Buffer.isBuffer(arg), "arguments are Buffers");
        check(
          arg.length <= Math.max(options.bulkBytesMax, options.inlineBytesMax),
          "argument size",
        );
      }
      requests.push(request.map((arg) => arg.toString("latin1")));
      check(requests.length <= totalBytes, "more requests than bytes: next() does not terminate");
    }
    check(parser.bufferedBytes <= heldMax, `holds ${parser.bufferedBytes} bytes, above ${heldMax}`);
  }
  return { requests, error: null };
}

/** The largest Buffer the parser may allocate when fed chunks of at most `chunkBytesMax`. */
export function allocationBound(options: RespParserOptions, chunkBytesMax: number): number {
  const unreadMax = Math.max(
    options.inlineBytesMax,
    Math.min(options.bulkBytesMax, BIG_ARG_BYTES) + 2,
    HEADER_LINE_BYTES_MAX,
  );
  return Math.max(
    options.bulkBytesMax + 2, // a big argument's own buffer, once its header is read
    unreadMax + chunkBytesMax,
    2 * unreadMax,
    JOIN_BYTES_MIN,
  );
}

const optionsArb: fc.Arbitrary<RespParserOptions> = fc.oneof(
  { weight: 4, arbitrary: fc.constant(SMALL_LIMITS) },
  { weight: 1, arbitrary: fc.constant(RESP_PARSER_DEFAULTS) },
);

export const respParserTarget = syncTarget({
  name: "resp-parser",
  summary: [
    "RespParser.feed/next over mutated multibulk and inline streams, whole and chunked",
    "never throws; yields requests within argsMax/bulkBytesMax or one final protocol error",
    "bytes held <= max(inlineBytesMax, bulkBytesMax + 2); largest Buffer <= the limits' bound",
    "same result however the stream is chunked; valid streams yield exactly their commands",
  ],
  arbitrary: fc.record({
    input: fuzzBytes<readonly RespCommand[]>(respCommandsArb, encodeRespCommands),
    chunking: chunkingArb,
    options: optionsArb,
  }),
  check: ({ input, chunking, options }) => {
    const chunks = chunk(input.bytes, chunking);
    const chunkBytesMax = largestChunk(chunks);
    const { result: chunked, largestBytes } = measureAllocations(() =>
      parseChunks(chunks, options),
    );
    const bound = allocationBound(options, chunkBytesMax);
    check(largestBytes <= bound, `allocated ${largestBytes} bytes, above the bound ${bound}`);
    const whole = parseChunks([input.bytes], options);
    const error = whole.error?.replace(/got '.*'$/s, "got …");
    tally(`${input.origin}: ${error ?? (whole.requests.length > 0 ? "requests" : "incomplete")}`);
    check(
      JSON.stringify(chunked) === JSON.stringify(whole),
      "chunking changed the result: the parse state does not survive between chunks",
    );
    if (input.value === undefined) return;
    checkRoundTrip(input.value, whole, options);
  },
});

/** A valid stream yields its commands, up to the first one above a limit (which must fail). */
function checkRoundTrip(
  commands: readonly RespCommand[],
  result: ParseResult,
  options: RespParserOptions,
): void {
  const firstOver = commands.findIndex((command) => !withinLimits(command, options));
  const accepted = firstOver === -1 ? commands : commands.slice(0, firstOver);
  const expected = accepted.map((c) => c.args.map((a) => Buffer.from(a).toString("latin1")));
  check(JSON.stringify(result.requests) === JSON.stringify(expected), "valid commands round-trip");
  check((result.error !== null) === (firstOver !== -1), "a limit error exactly when one is over");
}
