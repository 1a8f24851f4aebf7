/**
 * What the two launchers (cluster-plan.ts for `npm start`, thread-cluster-args.ts for the thread
 * cluster) share in reading their argv: their own flags come before the first `--`, everything
 * after it goes to every replica unchanged, and some replica flags the launcher sets itself.
 */

export interface LauncherArgv {
  /** The launcher's own flags, before the first `--`. */
  readonly own: readonly string[];
  /** Passed to every replica unchanged, after the first `--`. */
  readonly forReplicas: readonly string[];
}

export function splitLauncherArgv(argv: readonly string[]): LauncherArgv {
  const split = argv.indexOf("--");
  return split === -1
    ? { own: argv, forReplicas: [] }
    : { own: argv.slice(0, split), forReplicas: argv.slice(split + 1) };
}

/** Whether `args` sets `--flag` (as `--flag value` or `--flag=value`). */
export function hasFlag(args: readonly string[], flag: string): boolean {
  return args.some((arg) => arg === `--${flag}` || arg.startsWith(`--${flag}=`));
}

/** The first of `flags` that `args` sets, or null: the launcher sets those for each replica. */
export function launcherOwnedFlag(
  args: readonly string[],
  flags: readonly string[],
): string | null {
  return flags.find((flag) => hasFlag(args, flag)) ?? null;
}
