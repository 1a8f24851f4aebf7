/**
 * The command template of transparent mode (`--app`): one string such as
 * `redis-server --port {port} --dir {dir} --save ''`, split into argv the way a POSIX shell splits
 * words and quotes, but without running a shell, then with `{port}`, `{dir}`, `{host}` and `{id}`
 * replaced in each argument. What a shell would do beyond words and quotes (pipes, redirections,
 * lists, substitutions, variables, comments) is rejected, so that nothing is silently taken
 * literally where a shell would have acted; a wrapper script does those things instead.
 *
 * Globs (`*`, `?`, `[`) and `~` are kept literally (a shell does the same with a glob that
 * matches nothing).
 */

/**
 * Errors of the program supervisor. Callers match on `code`.
 * - ERR_APP_COMMAND: the command template cannot be split or expanded.
 * - ERR_APP_START: the program could not be started, or exited or timed out before it accepted
 *   connections.
 * - ERR_APP_NOT_RUNNING: whenRunning() while the program has exited for good (restart "never")
 *   or was stopped.
 */
export const PROGRAM_ERROR_CODES = [
  "ERR_APP_COMMAND",
  "ERR_APP_START",
  "ERR_APP_NOT_RUNNING",
] as const;

export type ProgramErrorCode = (typeof PROGRAM_ERROR_CODES)[number];

/** The program's end: exit code or signal (one of them is null), and its last lines of output. */
export interface ProgramExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Last lines of stdout and stderr together, oldest first. */
  readonly outputTail: readonly string[];
  /** When it ended (ISO 8601). */
  readonly at: string;
}

export class ProgramError extends Error {
  readonly code: ProgramErrorCode;
  /** How the program ended, when this error is about a program that ran and ended. */
  readonly exit: ProgramExit | null;
  constructor(
    code: ProgramErrorCode,
    message: string,
    exit: ProgramExit | null = null,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.code = code;
    this.exit = exit;
    this.name = new.target.name;
  }
}

/** The placeholders a command template may use, in the order error messages list them. */
export const PROGRAM_PLACEHOLDERS = ["port", "dir", "host", "id"] as const;
export type ProgramPlaceholder = (typeof PROGRAM_PLACEHOLDERS)[number];
export type ProgramPlaceholderValues = Readonly<Record<ProgramPlaceholder, string>>;

/** A template longer than this is a mistake (a file pasted in), not a command line. */
export const COMMAND_TEMPLATE_CHARS_MAX = 64 * 1024;

const WRAPPER_HINT =
  "the program runs without a shell; put what needs a shell in a wrapper script " +
  '(e.g. #!/bin/sh ... exec redis-server "$@") and pass its path with the arguments';

/** `{name}` where name looks like an identifier; other braces (JSON, `{}`) are literal. */
const PLACEHOLDER_PATTERN = /\{([A-Za-z_][A-Za-z0-9_-]*)\}/g;
/** After `$`: what a shell would expand (a variable, a parameter, `${`, `$(`). */
const EXPANSION_START = /[A-Za-z0-9_{(@*#?!$-]/;
/** Unquoted characters that are shell operators. */
const OPERATOR_CHARS = "|&;<>()";
/** Characters a backslash escapes inside double quotes (POSIX 2.2.3); before others it is kept. */
const DOUBLE_QUOTE_ESCAPABLE = '$`"\\';

function commandError(template: string, index: number, what: string): ProgramError {
  return new ProgramError(
    "ERR_APP_COMMAND",
    `command ${JSON.stringify(template)}, at character ${index + 1}: ${what}`,
  );
}

function describeOperator(template: string, index: number): string {
  const pair = template.slice(index, index + 2);
  if (pair === "&&" || pair === "||" || pair === ">>" || pair === "<<") return pair;
  return template[index]!;
}

/**
 * Split a command line into argv like a POSIX shell splits words: blanks separate words; `'...'`
 * is literal; `"..."` is literal except that a backslash escapes `$`, backtick, `"`, `\` and
 * newline; outside quotes a backslash escapes the next character (backslash-newline joins lines);
 * quotes join with what touches them (`a'b'"c"` is `abc`); `''` is an empty argument. Throws
 * ProgramError("ERR_APP_COMMAND") on unbalanced quotes and on shell syntax it does not support.
 */
export function splitCommand(template: string): string[] {
  if (template.length > COMMAND_TEMPLATE_CHARS_MAX) {
    throw commandError(
      template.slice(0, 80),
      0,
      `longer than ${COMMAND_TEMPLATE_CHARS_MAX} characters`,
    );
  }
  const words: string[] = [];
  let word = "";
  /** True once the current word has begun (it may still be empty: `''`). */
  let inWord = false;
  let index = 0;
  while (index < template.length) {
    const char = template[index]!;
    if (char === " " || char === "\t" || char === "\n") {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
      index += 1;
    } else if (char === "\\") {
      const next = template[index + 1];
      if (next === undefined) {
        throw commandError(template, index, "ends with a backslash; escape it as \\\\ or quote it");
      }
      if (next !== "\n") {
        word += next;
        inWord = true;
      }
      index += 2;
    } else if (char === "'") {
      const close = template.indexOf("'", index + 1);
      if (close < 0) throw commandError(template, index, "this single quote is never closed");
      word += template.slice(index + 1, close);
      inWord = true;
      index = close + 1;
    } else if (char === '"') {
      const [text, end] = readDoubleQuoted(template, index);
      word += text;
      inWord = true;
      index = end;
    } else if (OPERATOR_CHARS.includes(char)) {
      const operator = describeOperator(template, index);
      throw commandError(
        template,
        index,
        `the shell operator ${operator} is not supported: ${WRAPPER_HINT}`,
      );
    } else if (char === "`" || (char === "$" && EXPANSION_START.test(template[index + 1] ?? ""))) {
      throw expansionError(template, index);
    } else if (char === "#" && !inWord) {
      throw commandError(
        template,
        index,
        `a shell would start a comment here; quote it ('#') if it is an argument`,
      );
    } else {
      word += char;
      inWord = true;
      index += 1;
    }
  }
  if (inWord) words.push(word);
  if (words.length === 0) throw commandError(template, 0, "names no program");
  return words;
}

function expansionError(template: string, index: number): ProgramError {
  const what =
    template[index] === "`" || template[index + 1] === "("
      ? "command substitution"
      : "expansion of $";
  return commandError(
    template,
    index,
    `${what} is not supported (write a literal $ as \\$ or inside '...'): ${WRAPPER_HINT}`,
  );
}

/** Read `"..."` starting at the opening quote; returns the text and the index after the close. */
function readDoubleQuoted(template: string, open: number): [string, number] {
  let text = "";
  let index = open + 1;
  while (index < template.length) {
    const char = template[index]!;
    if (char === '"') return [text, index + 1];
    if (char === "\\") {
      const next = template[index + 1];
      if (next !== undefined && DOUBLE_QUOTE_ESCAPABLE.includes(next)) {
        text += next;
        index += 2;
      } else if (next === "\n") {
        index += 2;
      } else {
        text += char;
        index += 1;
      }
    } else if (char === "`" || (char === "$" && EXPANSION_START.test(template[index + 1] ?? ""))) {
      throw expansionError(template, index);
    } else {
      text += char;
      index += 1;
    }
  }
  throw commandError(template, open, "this double quote is never closed");
}

function isPlaceholder(name: string): name is ProgramPlaceholder {
  return (PROGRAM_PLACEHOLDERS as readonly string[]).includes(name);
}

/**
 * Replace `{port}`, `{dir}`, `{host}`, `{id}` inside each argument (an argument stays one argument
 * whatever the value holds). Throws ProgramError("ERR_APP_COMMAND") on an unknown `{name}`.
 */
export function expandPlaceholders(
  argv: readonly string[],
  values: ProgramPlaceholderValues,
): string[] {
  return argv.map((argument) =>
    argument.replace(PLACEHOLDER_PATTERN, (_match, name: string) => {
      if (!isPlaceholder(name)) {
        const known = PROGRAM_PLACEHOLDERS.map((p) => `{${p}}`).join(", ");
        throw new ProgramError(
          "ERR_APP_COMMAND",
          `command argument ${JSON.stringify(argument)}: unknown placeholder {${name}}; the known ones are ${known}`,
        );
      }
      return values[name];
    }),
  );
}

/** Split a template and expand its placeholders: the argv to spawn. */
export function programArgv(template: string, values: ProgramPlaceholderValues): string[] {
  return expandPlaceholders(splitCommand(template), values);
}

/** Quote an argv back into one line a shell would split the same way (for messages). */
export function quoteArgv(argv: readonly string[]): string {
  return argv
    .map((argument) =>
      /^[A-Za-z0-9_@%+=:,./{}-]+$/.test(argument)
        ? argument
        : `'${argument.replaceAll("'", "'\\''")}'`,
    )
    .join(" ");
}
