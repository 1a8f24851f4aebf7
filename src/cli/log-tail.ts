import { closeSync, fstatSync, openSync, readSync, statSync } from "node:fs";

/**
 * The last lines a replica wrote to its log, for the launcher to show when the replica dies.
 * Replica logs are pino JSON lines; summarizeLogLine makes one readable ("ERROR cannot …").
 */

/** Read at most this much from the end of a log: enough for a dozen lines with stack traces. */
export const LOG_TAIL_BYTES_MAX = 64 * 1024;

const PINO_LEVELS: Readonly<Record<number, string>> = {
  10: "TRACE",
  20: "DEBUG",
  30: "INFO",
  40: "WARN",
  50: "ERROR",
  60: "FATAL",
};

/** One log line, readable: a pino JSON line becomes "LEVEL msg: err.message"; others unchanged. */
export function summarizeLogLine(line: string, widthMax = 300): string {
  let text = line.trimEnd();
  if (text.startsWith("{")) {
    try {
      const record = JSON.parse(text) as {
        level?: unknown;
        msg?: unknown;
        err?: { message?: unknown };
      };
      const level =
        typeof record.level === "number" ? (PINO_LEVELS[record.level] ?? String(record.level)) : "";
      const msg = typeof record.msg === "string" ? record.msg : "";
      const cause = typeof record.err?.message === "string" ? record.err.message : "";
      const parts = [level, msg].filter((p) => p.length > 0).join(" ");
      if (parts.length > 0) text = cause.length > 0 && cause !== msg ? `${parts}: ${cause}` : parts;
    } catch {
      // not JSON after all: show it as it is
    }
  }
  return text.length > widthMax ? `${text.slice(0, widthMax - 1)}…` : text;
}

/** The last `lineCount` non-empty lines written at or after byte `fromOffset`; [] if unreadable. */
export function readLogTail(file: string, fromOffset: number, lineCount: number): string[] {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch {
    return [];
  }
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(fromOffset, size - LOG_TAIL_BYTES_MAX, 0);
    const buffer = Buffer.alloc(Math.max(0, size - start));
    const read = readSync(fd, buffer, 0, buffer.byteLength, start);
    const lines = buffer.subarray(0, read).toString("utf8").split("\n");
    if (start > fromOffset) lines.shift(); // the first line was cut
    return lines.filter((line) => line.trim().length > 0).slice(-lineCount);
  } finally {
    closeSync(fd);
  }
}

/** The log's size now: where the next run's lines start. */
export function logSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}
