/**
 * What `apus leader transfer` prints and its exit status, once the leader answered that it handed
 * over and the CLI asked every replica who leads now. Pure: the CLI does the I/O.
 */

/** The admin server's answer (LeaderTransferOutcome), as far as the CLI reads it. */
export interface TransferAnswer {
  readonly outcome?: string;
  readonly target?: number;
  readonly elapsedMs?: number;
}

export interface TransferVerdict {
  /** 0 only when the target (the ID asked for, or the one the leader picked) leads after. */
  readonly code: 0 | 1;
  /** One line for a person. */
  readonly text: string;
  /** The same for --json. */
  readonly json: Record<string, unknown>;
}

/**
 * `from` handed over (answer.outcome "transferred") and `leaderAfter` leads now (0: none known
 * within the CLI's wait). Leadership moving elsewhere than to the target is no success: the
 * operator asked for that replica, or for the one the leader found most caught up.
 */
export function transferVerdict(
  from: number,
  answer: TransferAnswer,
  leaderAfter: number,
): TransferVerdict {
  const target = answer.target ?? 0;
  const ok = target !== 0 && leaderAfter === target;
  const now =
    leaderAfter === 0
      ? "no replica is known to lead yet"
      : ok
        ? `replica ${leaderAfter} leads`
        : `but replica ${leaderAfter} leads, not ${target}`;
  return {
    code: ok ? 0 : 1,
    text: `replica ${from} handed leadership to replica ${target} in ${answer.elapsedMs ?? "?"} ms; ${now}`,
    json: { ...answer, from, leaderAfter, ok },
  };
}
