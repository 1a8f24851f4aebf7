/**
 * The timeout of a blocking Redis command (BLPOP k 5, XREAD BLOCK 100 …), taken out of the copy's
 * hands. Each copy would time out on its own clock, at a different point of the log on each
 * replica: one copy gives up and answers nil while another is woken by a PUSH and pops the
 * element. So every copy is sent the command with timeout 0 (wait for ever), and the origin
 * replica keeps the client's timeout: when it runs out, the origin puts an "unblock" event for the
 * connection in the log, and every copy unblocks the command at that same log position
 * (`CLIENT UNBLOCK id TIMEOUT`, which answers exactly as a timeout does).
 */

/** A blocking command with its timeout replaced by 0, and the client's timeout (0: none). */
export interface BlockingCommand {
  readonly args: readonly Buffer[];
  readonly timeoutMs: number;
}

const ZERO = Buffer.from("0", "latin1");

/** Commands whose timeout (seconds) is their last argument. */
const TIMEOUT_LAST = new Set(["blpop", "brpop", "bzpopmin", "bzpopmax", "brpoplpush", "blmove"]);
/** Commands whose timeout (seconds) is their first argument. */
const TIMEOUT_FIRST = new Set(["blmpop", "bzmpop"]);

/** Seconds as Redis reads a timeout: a non-negative decimal; null for anything else. */
function seconds(arg: Buffer): number | null {
  const text = arg.toString("latin1");
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(text)) return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}

function replaced(args: readonly Buffer[], at: number, timeoutMs: number): BlockingCommand {
  const copy = args.slice();
  copy[at] = ZERO;
  return { args: copy, timeoutMs };
}

/**
 * `args` (name lower-cased in `name`) with the timeout set to 0, or as it is when its timeout
 * cannot be read (the copy then answers the same error everywhere) or is 0 already.
 */
export function withoutTimeout(name: string, args: readonly Buffer[]): BlockingCommand {
  const none = { args, timeoutMs: 0 };
  if (TIMEOUT_LAST.has(name) || TIMEOUT_FIRST.has(name)) {
    const at = TIMEOUT_LAST.has(name) ? args.length - 1 : 1;
    if (at < 1 || at >= args.length) return none;
    const s = seconds(args[at]!);
    if (s === null || s === 0) return none;
    return replaced(args, at, Math.max(1, Math.round(s * 1000)));
  }
  if (name === "xread" || name === "xreadgroup") {
    // The options before STREAMS, read as Redis does: GROUP takes two arguments, COUNT and BLOCK
    // one, NOACK none (a group or consumer named "block" is not the option).
    for (let i = 1; i + 1 < args.length; i++) {
      const word = args[i]!.toString("latin1").toLowerCase();
      if (word === "streams") return none;
      if (word === "group") {
        i += 2;
        continue;
      }
      if (word === "count") {
        i += 1;
        continue;
      }
      if (word !== "block") continue;
      const text = args[i + 1]!.toString("latin1");
      if (!/^\d+$/.test(text) || Number(text) === 0) return none;
      return replaced(args, i + 1, Number(text));
    }
  }
  return none;
}
