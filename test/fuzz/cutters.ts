/**
 * Drives a transparent-mode cutter (src/app/program/codec.ts RequestCutter or ReplyCutter) the
 * way the runtime does: push a chunk, call next() until null, stop at a final error. Checks on
 * the way what every cutter promises whatever the bytes: no exception, errors only as CodecError
 * values with a declared code, a final error sticky, and termination (no more results than bytes).
 */
import { CODEC_ERROR_CODES, type CodecError, isCodecError } from "../../src/app/program/codec.ts";
import { check } from "./target.ts";

interface Cutter<T> {
  push(chunk: Uint8Array): void;
  next(): T | CodecError | null;
  readonly bufferedBytes: number;
}

export interface CutResult<T> {
  /** Results in order: cuts and non-final refusals. */
  readonly results: (T | CodecError)[];
  /** The final error that ended the stream, or null. */
  readonly final: CodecError | null;
  /** Most bytes the cutter held after a drain. */
  readonly heldMax: number;
}

export function drive<T>(cutter: Cutter<T>, chunks: readonly Uint8Array[]): CutResult<T> {
  const totalBytes = chunks.reduce((sum, c) => sum + c.byteLength, 0);
  const results: (T | CodecError)[] = [];
  let heldMax = 0;
  for (const piece of chunks) {
    cutter.push(piece);
    for (;;) {
      const result = cutter.next();
      if (result === null) break;
      if (isCodecError(result)) {
        check(CODEC_ERROR_CODES.includes(result.code), `undeclared code ${result.code}`);
        if (result.final) {
          check(cutter.next() === result, "a final error is sticky");
          cutter.push(Buffer.from("x\r\n"));
          check(cutter.next() === result, "input after a final error is ignored");
          return { results, final: result, heldMax };
        }
      }
      results.push(result);
      check(results.length <= totalBytes + 1, "more results than bytes: next() does not terminate");
    }
    heldMax = Math.max(heldMax, cutter.bufferedBytes);
  }
  return { results, final: null, heldMax };
}

/** A comparable summary of a result list (chunk-invariance checks). */
export function summary<T>(result: CutResult<T>, show: (cut: T) => string): string {
  const parts = result.results.map((r) =>
    isCodecError(r) ? `refused ${r.code} ${r.message}` : show(r),
  );
  if (result.final !== null) parts.push(`final ${result.final.code} ${result.final.message}`);
  return parts.join("\n");
}
