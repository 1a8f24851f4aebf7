/**
 * The runtime side of a leadership transfer (Replica.transferLeadership): one at a time, with a
 * bounded wait, and an outcome that says what happened (transfer-watch.ts decides it from what the
 * core shows). Used by POST /leader/transfer, `apus leader transfer` and SIGTERM of a leader.
 */
import type { Logger } from "pino";
import type { Replica } from "../../core/replica.ts";
import type { ReplicaConfig } from "../../runtime/config.ts";
import type { LeaderTransferOutcome } from "../../runtime/thread-contracts.ts";
import {
  clampTransferWaitMs,
  TRANSFER_WATCH_TIMEOUTS_MAX,
  type TransferEnd,
  transferEndOf,
} from "./transfer-watch.ts";

const TRANSFER_REFUSALS = {
  "not-leader": "this replica does not lead; ask the leader (apus status shows it)",
  "bad-target":
    "the target is not another replica of this cluster (ids run from 1 to --peers' length)",
  "no-target": "no follower answered within an election timeout; none could take over",
} as const;

export interface LeaderTransferDeps {
  readonly core: Replica;
  readonly config: ReplicaConfig;
  readonly log: Logger;
  /** The core's tick, ms: how often the watch polls it (at most every 5 ms). */
  readonly tickMs: number;
  /** The core has work (a transfer started): run the Ready loop. */
  readonly schedulePump: () => void;
  /** The replica is shutting down: stop watching. */
  readonly stopping: () => boolean;
}

export class LeaderTransfers {
  private readonly deps: LeaderTransferDeps;

  constructor(deps: LeaderTransferDeps) {
    this.deps = deps;
  }

  /**
   * The transfer this replica runs as leader, while the core has it under way: a second request
   * naming the same target (or none) waits on it, one naming another is refused ("busy") rather
   * than replacing it, so the first request's answer stays true. Null when none runs.
   */
  private transferWatch: { readonly target: number; readonly done: Promise<TransferEnd> } | null =
    null;

  /**
   * Hand leadership over (Replica.transferLeadership) and wait, at most `waitMs` (clamped to
   * [heartbeat, 2 x election timeout]; default the upper end), for the outcome, which says what
   * happened, not only that we stepped down: "transferred" when the target leads or met us with
   * its higher ballot (the core's completed counter moved); "deposed" when we stopped leading
   * otherwise (check-quorum, or a third replica's ballot); "timed-out" when the core gave up and
   * leads on, or the wait ended first (the core then may still hand over, until its own limit of
   * one election timeout). A transferred answer does not wait for the new leader to be heard:
   * `leader` is whom we follow then, 0 when none is known yet. Requests that reach us meanwhile
   * wait in the core's queue; once we follow, the router sends them on.
   */
  async run(target: number | null, waitMs: number | null): Promise<LeaderTransferOutcome> {
    const started = performance.now();
    const wait = clampTransferWaitMs(waitMs, this.deps.config);
    const id = this.deps.config.id;
    const outcome = (
      kind: LeaderTransferOutcome["outcome"],
      to: number,
    ): LeaderTransferOutcome => ({
      outcome: kind,
      from: id,
      target: to,
      leader: this.deps.core.knownLeader,
      elapsedMs: Math.round(performance.now() - started),
      waitMs: wait,
    });
    const running = this.transferWatch;
    if (running !== null) {
      if (target !== null && target !== running.target) {
        this.deps.log.warn(
          { target, running: running.target },
          `leadership transfer to replica ${target} refused: one to replica ${running.target} is under way`,
        );
        return outcome("busy", running.target);
      }
      return outcome(await this.transferEndWithin(running.done, wait), running.target);
    }
    const before = this.deps.core.status().counters.transfersCompleted;
    const result = this.deps.core.transferLeadership(target ?? undefined);
    if (!result.started) {
      this.deps.log.warn(
        { target, reason: result.reason, leader: this.deps.core.knownLeader },
        `leadership transfer not started: ${TRANSFER_REFUSALS[result.reason]}`,
      );
      return outcome(result.reason, target ?? 0);
    }
    const to = result.target;
    this.deps.log.info(
      { target: to, waitMs: wait },
      `handing leadership to replica ${to}: no new batches until it holds everything proposed, then it campaigns at once`,
    );
    this.deps.schedulePump();
    const watch = { target: to, done: this.watchTransfer(to, before) };
    this.transferWatch = watch;
    void watch.done.then(() => {
      if (this.transferWatch === watch) this.transferWatch = null;
    });
    const done = outcome(await this.transferEndWithin(watch.done, wait), to);
    this.logTransferOutcome(done);
    return done;
  }

  /** The transfer's end, or "timed-out" once `waitMs` passed first. */
  private async transferEndWithin(
    done: Promise<TransferEnd>,
    waitMs: number,
  ): Promise<TransferEnd> {
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<TransferEnd>((resolve) => {
      timer = setTimeout(() => resolve("timed-out"), waitMs);
    });
    try {
      return await Promise.race([done, waited]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Poll the core until the transfer to `to` ended, and say how. `completedBefore`: the core's
   * transfersCompleted when it began. The core ends every transfer within one election timeout
   * (it gives up and leads on); TRANSFER_WATCH_TIMEOUTS_MAX election timeouts bound the loop
   * all the same.
   */
  private async watchTransfer(to: number, completedBefore: number): Promise<TransferEnd> {
    const pollMs = Math.max(1, Math.min(5, this.deps.tickMs));
    const deadline =
      performance.now() + TRANSFER_WATCH_TIMEOUTS_MAX * this.deps.config.electionTimeoutMs;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, pollMs));
      const status = this.deps.core.status();
      const end = transferEndOf(
        {
          role: this.deps.core.role,
          knownLeader: this.deps.core.knownLeader,
          transferTarget: status.transferTarget,
          transfersCompleted: status.counters.transfersCompleted,
        },
        to,
        completedBefore,
      );
      if (end !== null) return end;
      if (this.deps.stopping() || performance.now() >= deadline) return "timed-out";
    }
  }

  private logTransferOutcome(done: LeaderTransferOutcome): void {
    const { target, elapsedMs, leader } = done;
    const fields = { target, leader, elapsedMs };
    const who = leader === 0 ? "no leader known yet" : `replica ${leader} leads`;
    switch (done.outcome) {
      case "transferred":
        this.deps.log.info(fields, `leadership handed over in ${elapsedMs} ms; ${who}`);
        return;
      case "deposed":
        this.deps.log.warn(
          fields,
          `stopped leading after ${elapsedMs} ms, but not to replica ${target} (check-quorum, or another replica's higher ballot); ${who}`,
        );
        return;
      default:
        this.deps.log.warn(
          fields,
          `leadership transfer to replica ${target} did not complete in ${elapsedMs} ms (it is down, far behind or cut off); still leading`,
        );
    }
  }
}
