/**
 * Redis glob patterns (KEYS, SCAN MATCH), over latin1 strings (one char per byte), case-sensitive:
 * `*` any run, `?` one byte, `[abc]` `[^a]` `[a-z]` (ends swapped if reversed, `\` escapes inside),
 * `\x` a literal x. An unclosed `[` runs to the pattern's end, as in Redis's stringmatchlen.
 *
 * Compiling costs O(pattern length) time and memory: literals and `?` share read-only tables, so
 * only a `[class]` allocates a table of its own (and a class takes at least two pattern bytes).
 * The store caps a pattern's length (`patternBytesMax`) before compiling it.
 */

/** One pattern token: STAR, or a 256-entry table of the bytes it matches. */
type Token = "*" | Uint8Array;

export class GlobPattern {
  private readonly tokens: Token[];
  /** The pattern is just `*`: everything matches (the common case, skipped quickly). */
  readonly matchesAll: boolean;

  constructor(pattern: string) {
    this.tokens = compile(pattern);
    this.matchesAll = this.tokens.length === 1 && this.tokens[0] === "*";
  }

  /** Classic wildcard matching, backtracking only to the last `*`: O(pattern × text). */
  matches(text: string): boolean {
    const tokens = this.tokens;
    let t = 0;
    let s = 0;
    let starToken = -1;
    let starText = 0;
    while (s < text.length) {
      const token = tokens[t];
      if (token === "*") {
        starToken = t++;
        starText = s;
        continue;
      }
      if (token !== undefined && token[text.charCodeAt(s) & 0xff] === 1) {
        t++;
        s++;
        continue;
      }
      if (starToken === -1) return false;
      t = starToken + 1;
      s = ++starText;
    }
    while (tokens[t] === "*") t++;
    return t === tokens.length;
  }
}

/** `?`: every byte; shared by all patterns, never written. */
const ANY_BYTE: Uint8Array = new Uint8Array(256).fill(1);

/** The shared table of each literal byte, made the first time it is needed; never written. */
const SINGLE_BYTE: (Uint8Array | undefined)[] = new Array(256);

function single(code: number): Uint8Array {
  const byte = code & 0xff;
  let table = SINGLE_BYTE[byte];
  if (table === undefined) {
    table = new Uint8Array(256);
    table[byte] = 1;
    SINGLE_BYTE[byte] = table;
  }
  return table;
}

function compile(pattern: string): Token[] {
  const tokens: Token[] = [];
  const n = pattern.length;
  let i = 0;
  while (i < n) {
    const c = pattern.charCodeAt(i);
    if (c === 42 /* '*' */) {
      if (tokens[tokens.length - 1] !== "*") tokens.push("*");
      i++;
    } else if (c === 63 /* '?' */) {
      tokens.push(ANY_BYTE);
      i++;
    } else if (c === 91 /* '[' */) {
      i = compileClass(pattern, i + 1, tokens);
    } else if (c === 92 /* '\\' */ && i + 1 < n) {
      tokens.push(single(pattern.charCodeAt(i + 1)));
      i += 2;
    } else {
      tokens.push(single(c));
      i++;
    }
  }
  return tokens;
}

/** Compiles a class whose body starts at `i`; returns the index after it. */
function compileClass(pattern: string, start: number, tokens: Token[]): number {
  const n = pattern.length;
  const table = new Uint8Array(256);
  let i = start;
  const negate = i < n && pattern.charCodeAt(i) === 94; /* '^' */
  if (negate) i++;
  while (i < n) {
    const c = pattern.charCodeAt(i);
    if (c === 92 /* '\\' */ && i + 1 < n) {
      table[pattern.charCodeAt(i + 1) & 0xff] = 1;
      i += 2;
    } else if (c === 93 /* ']' */) {
      i++;
      break;
    } else if (i + 2 < n && pattern.charCodeAt(i + 1) === 45 /* '-' */) {
      let low = c & 0xff;
      let high = pattern.charCodeAt(i + 2) & 0xff;
      if (low > high) [low, high] = [high, low];
      table.fill(1, low, high + 1);
      i += 3;
    } else {
      table[c & 0xff] = 1;
      i++;
    }
  }
  if (negate) for (let b = 0; b < 256; b++) table[b] = table[b] === 1 ? 0 : 1;
  tokens.push(table);
  return i;
}
