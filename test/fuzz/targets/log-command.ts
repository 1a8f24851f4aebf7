/**
 * A log command as the consensus worker reads it when applying the log (src/workers/log-command.ts
 * readLogHeader, readConnectionPrefix, logBodyOffset, then src/app/command-codec.ts
 * decodeCommands on the body). Chosen entries were proposed by a replica, but a buggy one must not
 * crash every replica that applies its entry.
 */
import fc from "fast-check";
import { decodeCommands, encodeCommands } from "../../../src/app/command-codec.ts";
import {
  CONNECTION_PREFIX_BYTES,
  LOG_HEADER_BYTES,
  type LogConnection,
  type LogHeader,
  logBodyOffset,
  logCommandCount,
  readConnectionPrefix,
  readLogHeader,
  writeConnectionPrefix,
  writeLogHeader,
} from "../../../src/workers/log-command.ts";
import { fuzzBytes } from "../mutate.ts";
import { check, onlyDocumentedErrors, syncTarget, tally } from "../target.ts";

interface LogCommand {
  readonly header: LogHeader;
  readonly connection: LogConnection | null;
  readonly commands: readonly (readonly Uint8Array[])[];
}

const logCommandArb: fc.Arbitrary<LogCommand> = fc.record({
  header: fc.record({
    origin: fc.integer({ min: 1, max: 255 }),
    incarnation: fc.nat(),
    requestId: fc.oneof(fc.nat(100), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
    floor: fc.nat(100),
    takenMs: fc.integer({ min: 0, max: 2 ** 42 }),
  }),
  connection: fc.option(
    fc.record({
      worker: fc.nat(0xffff),
      connId: fc.nat(),
      event: fc.constantFrom("data" as const, "close" as const, "unblock" as const),
    }),
    { nil: null },
  ),
  commands: fc.array(fc.array(fc.uint8Array({ maxLength: 16 }), { maxLength: 4 }), {
    maxLength: 3,
  }),
});

function encodeLogCommand(command: LogCommand): Uint8Array {
  const prefix = LOG_HEADER_BYTES + (command.connection === null ? 0 : CONNECTION_PREFIX_BYTES);
  const bytes = encodeCommands(command.commands, prefix);
  if (command.connection !== null) writeConnectionPrefix(bytes, command.connection);
  writeLogHeader(bytes, command.header);
  return bytes;
}

export const logCommandTarget = syncTarget({
  name: "log-command",
  summary: [
    "readLogHeader, readConnectionPrefix, logBodyOffset, logCommandCount, decodeCommands over mutated log commands",
    "never throws; a header or prefix is read or refused (null)",
    "valid log commands give back their header, connection and commands",
  ],
  arbitrary: fuzzBytes<LogCommand>(logCommandArb, encodeLogCommand),
  check: (input) => {
    const bytes = input.bytes;
    const read = onlyDocumentedErrors(
      () => {
        const header = readLogHeader(bytes);
        const connection = readConnectionPrefix(bytes);
        const offset = logBodyOffset(bytes);
        const count = logCommandCount(bytes);
        const commands = offset <= bytes.length ? decodeCommands(bytes, offset) : null;
        return { header, connection, count, commands };
      },
      () => false,
      "reading a log command",
    );
    check(read.ok, "never throws");
    const { header, connection, commands } = read.value;
    if (header !== null) {
      const unsafe = !Number.isSafeInteger(header.requestId) || !Number.isSafeInteger(header.floor);
      tally(
        `${input.origin}: header${unsafe ? " (requestId or floor above 2^53)" : ""}${commands === null ? ", bad body" : ""}`,
      );
    } else {
      tally(`${input.origin}: no header`);
    }
    const sent = input.value;
    if (sent === undefined) return;
    check(JSON.stringify(header) === JSON.stringify(sent.header), "header round-trip");
    const asText = (c: LogConnection | null) =>
      c === null ? "none" : `${c.worker}/${c.connId}/${c.event}`;
    check(asText(connection) === asText(sent.connection), "connection round-trip");
    check(
      JSON.stringify(commands?.map((c) => c.map((a) => [...a]))) ===
        JSON.stringify(sent.commands.map((c) => c.map((a) => [...a]))),
      "commands round-trip",
    );
  },
});
