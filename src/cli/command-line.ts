import { VERSION } from "../version.ts";
import { nodeVersionProblem } from "./node-version.ts";

type Parsed =
  | { readonly action: "help" }
  | { readonly action: "version" }
  | { readonly action: "run" };

/**
 * The start of every program's main(): parse argv, answer --help and --version (on any Node),
 * refuse a Node too old to run, and turn a bad flag into one line and exit code 2. Returns the
 * parsed "run" value, or null when the program has nothing more to do.
 */
export function commandLine<P extends Parsed>(
  argv: readonly string[],
  parse: (argv: readonly string[]) => P,
  help: (version: string) => string,
): Extract<P, { action: "run" }> | null {
  let parsed: P;
  try {
    parsed = parse(argv);
  } catch (error) {
    process.stderr.write(
      `apus-smr: ${(error as Error).message}\nRun with --help to see the options.\n`,
    );
    process.exitCode = 2;
    return null;
  }
  if (parsed.action === "version") {
    process.stdout.write(`${VERSION}\n`);
    return null;
  }
  if (parsed.action === "help") {
    process.stdout.write(help(VERSION));
    return null;
  }
  const tooOld = nodeVersionProblem(); // running needs reusePort and zlib.crc32
  if (tooOld !== null) {
    process.stderr.write(`${tooOld}\n`);
    process.exitCode = 2;
    return null;
  }
  return parsed as Extract<P, { action: "run" }>;
}
