/**
 * Valid RESP request streams: pipelined commands, each a multibulk or an inline line, with what
 * the parser must yield for them. Inline arguments that are not plain alphanumerics are written
 * in double quotes with `\xHH` escapes (Redis's sdssplitargs reads them back byte for byte), so
 * any argument bytes can travel inline too.
 */
import fc from "fast-check";
import type { RespParserOptions } from "../../../src/app/resp-parser.ts";

export interface RespCommand {
  readonly inline: boolean;
  readonly args: readonly Uint8Array[];
}

/** Bulks at least this big go the parser's big-argument path (resp-parser.ts BIG_ARG_BYTES). */
export const BIG_ARG_BYTES = 32 * 1024;

/** Small limits, so generated and mutated requests reach every limit error. */
export const SMALL_LIMITS: RespParserOptions = Object.freeze({
  argsMax: 16,
  bulkBytesMax: 40 * 1024,
  inlineBytesMax: 512,
  requestBytesMax: 64 * 1024,
});

const smallArg = fc.uint8Array({ maxLength: 24 });
/** Rare: one bulk on the big-argument path (big inputs cost time on every mutation). */
const bigArg = fc
  .integer({ min: BIG_ARG_BYTES - 4, max: BIG_ARG_BYTES + 8 * 1024 })
  .map((size) => new Uint8Array(size).fill(0x61));

const multibulk: fc.Arbitrary<RespCommand> = fc.record({
  inline: fc.constant(false),
  args: fc.array(fc.oneof({ weight: 60, arbitrary: smallArg }, { weight: 1, arbitrary: bigArg }), {
    minLength: 1,
    maxLength: 6,
  }),
});

const inline: fc.Arbitrary<RespCommand> = fc.record({
  inline: fc.constant(true),
  args: fc.array(fc.uint8Array({ maxLength: 12 }), { minLength: 1, maxLength: 6 }),
});

export const respCommandsArb: fc.Arbitrary<readonly RespCommand[]> = fc.array(
  fc.oneof({ weight: 3, arbitrary: multibulk }, { weight: 1, arbitrary: inline }),
  { minLength: 1, maxLength: 5 },
);

function isPlain(byte: number): boolean {
  return (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122);
}

function inlineArg(arg: Uint8Array): string {
  if (arg.length > 0 && arg.every(isPlain)) return Buffer.from(arg).toString("latin1");
  let out = '"';
  for (const byte of arg) {
    out += isPlain(byte) ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return `${out}"`;
}

export function encodeRespCommand(command: RespCommand): Buffer {
  if (command.inline) {
    return Buffer.from(`${command.args.map(inlineArg).join(" ")}\r\n`, "latin1");
  }
  const parts: Buffer[] = [Buffer.from(`*${command.args.length}\r\n`, "latin1")];
  for (const arg of command.args) {
    parts.push(Buffer.from(`$${arg.length}\r\n`, "latin1"), Buffer.from(arg), CRLF);
  }
  return Buffer.concat(parts);
}

const CRLF = Buffer.from("\r\n", "latin1");

export function encodeRespCommands(commands: readonly RespCommand[]): Buffer {
  return Buffer.concat(commands.map(encodeRespCommand));
}

/** Whether the parser must accept `command` under `options` (else it reports a limit error). */
export function withinLimits(command: RespCommand, options: RespParserOptions): boolean {
  if (command.args.length > options.argsMax) return false;
  const bytes = encodeRespCommand(command);
  if (command.inline) return bytes.length - 1 <= options.inlineBytesMax;
  return (
    bytes.length <= options.requestBytesMax &&
    command.args.every((arg) => arg.length <= options.bulkBytesMax)
  );
}
