/**
 * The runtime side of membership changes (src/core/membership.ts has the protocol):
 *  - follow: after every Ready, the transport, the snapshot stream and the settings agreement
 *    learn the members the core holds (a new member's address is dialed, a removed one dropped);
 *    a replica that finds itself removed says so, once, with what to do;
 *  - change: POST /members at the leader, one at a time, in single-server steps (add a learner,
 *    promote one caught-up learner, remove one member; replace = those in order), each answered
 *    once it is chosen and governs, within a bounded wait.
 * Used by the admin endpoint and `apus member`.
 */
import type { Logger } from "pino";
import { type Member, sortedMembers } from "../../core/membership.ts";
import type { Replica } from "../../core/replica.ts";
import type { ReplicaConfig } from "../../runtime/config.ts";
import { formatPeerAddress, listedPeers, parsePeerAddress } from "../../runtime/peer-list.ts";
import type {
  ConfigurationView,
  MemberChangeOutcome,
  MemberChangeRequest,
  MemberChangeStep,
  MembersView,
  MemberView,
} from "../../runtime/thread-contracts.ts";
import type { Transport } from "../../transport/transport.ts";
import type { PeerAgreement } from "./peer-agreement.ts";
import type { SnapshotStreamLink } from "./snapshot-stream-link.ts";

/** Each step of a change waits this long by default (wait_ms) to be chosen and govern. */
export const MEMBER_CHANGE_WAIT_MS_DEFAULT = 30_000;
/** wait_ms is clamped to this range. */
export const MEMBER_CHANGE_WAIT_MS_MIN = 1000;
export const MEMBER_CHANGE_WAIT_MS_MAX = 10 * 60_000;
/** How often a waiting change looks at the core again. */
const POLL_MS = 5;

type CoreMembership = ReturnType<Replica["membership"]>;
type Entry = NonNullable<CoreMembership["latest"]>;

export interface MembershipDeps {
  readonly core: Replica;
  readonly config: ReplicaConfig;
  readonly log: Logger;
  readonly transport: Transport;
  readonly snapshotStream: SnapshotStreamLink | null;
  readonly agreement: PeerAgreement;
  /** Ticks since start and their length: how long ago the leader heard a member. */
  readonly ticks: () => number;
  readonly tickMs: number;
  /** The core has work (a change queued): run the Ready loop. */
  readonly schedulePump: () => void;
  readonly stopping: () => boolean;
}

/** What the runtime has told the transport: member id → its address. */
type Dialed = Map<number, string>;

export class MembershipAdmin {
  private readonly deps: MembershipDeps;
  /** The entries last followed (the core's own objects: identity says whether anything moved). */
  private followedLatest: Entry | null | undefined = undefined;
  private followedCurrent: Entry | null | undefined = undefined;
  /** The history array and its length as last followed (compaction trims it: a new array). */
  private followedHistory: readonly Entry[] | undefined = undefined;
  private followedLength = 0;
  private readonly dialed: Dialed = new Map();
  /** Said once per removal, so a removed replica's log does not fill up. */
  private removedSaid = false;
  /**
   * A configuration this replica held named it: only such a replica can be removed (one that
   * joined replays configurations from before it was added, none naming it).
   */
  private wasMember = false;
  /** A change running now (one at a time); null when none. */
  private running: Promise<MemberChangeOutcome> | null = null;

  constructor(deps: MembershipDeps) {
    this.deps = deps;
    const self = deps.config.id;
    for (const peer of listedPeers(deps.config.peers))
      if (peer.id !== self) this.dialed.set(peer.id, formatPeerAddress(peer));
  }

  /** At start: a --peers that disagrees with the configuration the data directory holds. */
  checkPeersFlag(): void {
    const latest = this.deps.core.membership().latest;
    if (latest === null) return;
    const listed = new Map<number, string>();
    for (const peer of listedPeers(this.deps.config.peers))
      listed.set(peer.id, formatPeerAddress(peer));
    const held = new Map(latest.members.map((m) => [m.id, m.address] as const));
    const differs =
      listed.size !== held.size ||
      [...held].some(([id, address]) => address !== "" && listed.get(id) !== address) ||
      [...listed.keys()].some((id) => !held.has(id));
    if (!differs) return;
    this.deps.log.warn(
      {
        peersFlag: [...listed].map(([id, a]) => `${id}=${a}`).join(","),
        configuration: latest.members.map(
          (m) => `${m.id}=${m.address}${m.voter ? "" : " (learner)"}`,
        ),
        slot: latest.slot,
      },
      "--peers differs from the configuration in this replica's log; the log's is used (it changes only through apus member). Update --peers to match it, so a restart reads the same",
    );
  }

  /** Follow the core's configurations (call after each Ready; cheap when nothing moved). */
  follow(): void {
    const { current, latest, history } = this.deps.core.membership();
    if (
      latest === this.followedLatest &&
      current === this.followedCurrent &&
      history === this.followedHistory &&
      history.length === this.followedLength
    )
      return;
    this.followedLatest = latest;
    this.followedCurrent = current;
    this.followedHistory = history;
    this.followedLength = history.length;
    if (latest === null) return; // joining: --peers is all we know until the log says more
    this.dial(history);
    const self = this.deps.config.id;
    if (history.some((entry) => entry.members.some((m) => m.id === self))) this.wasMember = true;
    this.noticeRemoval(latest);
  }

  /** Tell the transport, the stream and the agreement who the members are, and where. */
  private dial(history: readonly Entry[]): void {
    const self = this.deps.config.id;
    const wanted = new Map<number, string>();
    // Every configuration held: a member of an older one may still vote on slots it governs.
    for (const entry of history)
      for (const m of entry.members)
        if (m.id !== self && m.address !== "") wanted.set(m.id, m.address);
    for (const [id, address] of wanted) {
      if (this.dialed.get(id) === address) continue;
      const parsed = parsePeerAddress(address);
      if (parsed === null) {
        this.deps.log.error(
          { peer: id, address },
          `replica ${id}'s address in the configuration is not host:port; it cannot be reached`,
        );
        continue;
      }
      if (!this.deps.transport.addPeer(id, parsed)) {
        this.deps.log.error(
          { peer: id },
          `this transport cannot reach replica ${id}, which the configuration adds (--transport shm joins only the replicas it started with)`,
        );
        continue;
      }
      this.deps.snapshotStream?.addPeer(id, parsed);
      this.deps.agreement.addPeer(id);
      this.dialed.set(id, address);
      this.deps.log.info({ peer: id, address }, `replica ${id} is a member now, at ${address}`);
    }
    for (const id of [...this.dialed.keys()]) {
      if (wanted.has(id) || !this.knowsAddresses(history)) continue;
      this.deps.transport.removePeer(id);
      this.deps.snapshotStream?.removePeer(id);
      this.deps.agreement.removePeer(id);
      this.dialed.delete(id);
      this.deps.log.info(
        { peer: id },
        `replica ${id} is no member any more; its messages are dropped`,
      );
    }
  }

  /** The configuration names real addresses (a cluster started before stable ids names none: keep --peers). */
  private knowsAddresses(history: readonly Entry[]): boolean {
    return history.every((entry) => entry.members.every((m) => m.address !== ""));
  }

  /** Say once that the last chosen change removed this replica (it may not govern yet). */
  private noticeRemoval(latest: Entry): void {
    if (!this.isRemoved(latest)) {
      this.removedSaid = false;
      return;
    }
    if (this.removedSaid) return;
    this.removedSaid = true;
    this.deps.log.error(
      { slot: latest.slot, effectiveFrom: latest.effectiveFrom },
      `this replica (id ${this.deps.config.id}) was removed from the cluster's configuration (the change in slot ${latest.slot}, governing from slot ${latest.effectiveFrom}): it no longer votes, campaigns or learns new writes, and keeps running only so that its /status says so. Stop it, and delete its data directory before reusing the machine; to bring it back instead, run apus member add ${this.deps.config.id} <its peer address> (it rejoins as a learner)`,
    );
  }

  /** The last chosen change leaves out this replica, a member before. */
  private isRemoved(latest: Entry): boolean {
    return this.wasMember && !latest.members.some((m) => m.id === this.deps.config.id);
  }

  // ---- what /members and /status show --------------------------------------------------------

  view(): MembersView {
    const core = this.deps.core;
    const s = core.status();
    const { current, latest } = core.membership();
    const self = this.deps.config.id;
    const leader = s.leaderId === 0 ? null : s.leaderId;
    const removed = latest !== null && this.isRemoved(latest);
    return {
      id: self,
      role: s.role,
      leader,
      leaderAddress: leader === null ? null : this.addressOf(leader),
      commitIndex: s.chosenSlot,
      current: current === null ? null : this.configurationView(current),
      latest: latest === null ? null : this.configurationView(latest),
      changing: this.running !== null || (latest !== null && current !== latest),
      removed,
      promoteLagSlots: this.deps.config.promoteLagSlots,
    };
  }

  private configurationView(entry: Entry): ConfigurationView {
    return {
      slot: entry.slot,
      effectiveFrom: entry.effectiveFrom,
      members: entry.members.map((m) => this.memberView(m)),
    };
  }

  private memberView(m: Member): MemberView {
    const base: MemberView = {
      id: m.id,
      role: m.voter ? "voter" : "learner",
      address: m.address === "" ? (this.addressOf(m.id) ?? "") : m.address,
    };
    const progress = this.progressOf(m.id);
    return progress === null ? base : { ...base, ...progress };
  }

  /** On the leader: a member's chosen slot, lag and last answer; null elsewhere. */
  private progressOf(id: number): {
    chosenSlot: number;
    lagSlots: number;
    lastHeardMsAgo: number | null;
    voted: boolean;
  } | null {
    const s = this.deps.core.status();
    if (s.role !== "leader") return null;
    if (id === this.deps.config.id)
      return { chosenSlot: s.chosenSlot, lagSlots: 0, lastHeardMsAgo: null, voted: true };
    const peer = s.peers.find((p) => p.id === id);
    if (peer === undefined) return null;
    return {
      chosenSlot: peer.chosenSlot,
      lagSlots: Math.max(0, s.chosenSlot - peer.chosenSlot),
      lastHeardMsAgo: (this.deps.ticks() - peer.heardTick) * this.deps.tickMs,
      voted: peer.voted,
    };
  }

  /** A replica's peer address: from the configuration, else --peers; null when unknown. */
  private addressOf(id: number): string | null {
    const latest = this.deps.core.membership().latest;
    const m = latest?.members.find((member) => member.id === id);
    if (m !== undefined && m.address !== "") return m.address;
    const listed = this.deps.config.peers[id - 1];
    return listed == null ? (this.dialed.get(id) ?? null) : formatPeerAddress(listed);
  }

  // ---- changes ---------------------------------------------------------------------------------

  /** POST /members: one change at a time; a second while one runs is refused "busy". */
  change(request: MemberChangeRequest): Promise<MemberChangeOutcome> {
    const started = performance.now();
    if (this.running !== null)
      return Promise.resolve(
        this.outcome(
          "busy",
          "another membership change is under way here; wait for it to finish (GET /members shows changing)",
          [],
          started,
        ),
      );
    const run = this.runChange(request, started).finally(() => {
      this.running = null;
    });
    this.running = run;
    return run;
  }

  private async runChange(
    request: MemberChangeRequest,
    started: number,
  ): Promise<MemberChangeOutcome> {
    const refusal = this.refusal(request);
    if (refusal !== null) return this.outcome(refusal.outcome, refusal.detail, [], started);
    const waitMs = clampWait(request.waitMs ?? null);
    const steps: MemberChangeStep[] = [];
    const latest = this.deps.core.membership().latest!;
    switch (request.op) {
      case "add":
        return this.steps(
          [{ step: "add", id: request.id, address: request.address! }],
          waitMs,
          steps,
          started,
        );
      case "promote":
        return this.steps([{ step: "promote", id: request.id }], waitMs, steps, started);
      case "remove":
        return this.steps([{ step: "remove", id: request.id }], waitMs, steps, started);
      case "replace": {
        const newId = request.newId!;
        const plan: PlannedStep[] = [];
        if (!latest.members.some((m) => m.id === newId))
          plan.push({ step: "add", id: newId, address: request.address! });
        plan.push(
          { step: "catch-up", id: newId },
          { step: "promote", id: newId },
          { step: "remove", id: request.id },
        );
        return this.steps(plan, waitMs, steps, started);
      }
    }
  }

  private async steps(
    plan: readonly PlannedStep[],
    waitMs: number,
    steps: MemberChangeStep[],
    started: number,
  ): Promise<MemberChangeOutcome> {
    for (const planned of plan) {
      const stepStarted = performance.now();
      if (planned.step === "catch-up") {
        const lag = await this.waitCaughtUp(planned.id, waitMs);
        const ok = lag !== null && lag <= this.deps.config.promoteLagSlots;
        steps.push({
          step: "catch-up",
          id: planned.id,
          ok,
          ...(lag === null ? {} : { lagSlots: lag }),
          elapsedMs: ms(stepStarted),
        });
        this.logStep(steps.at(-1)!);
        if (!ok)
          return this.outcome(
            this.deps.stopping() ? "stopping" : "timed-out",
            `replica ${planned.id} did not catch up within ${waitMs} ms (lag ${lag ?? "unknown: it has not answered"} slots, --promote-lag-slots ${this.deps.config.promoteLagSlots}); is it running with --join and the cluster's --secret-file? It stays a learner; run apus member replace again, or apus member remove ${planned.id}`,
            steps,
            started,
          );
        continue;
      }
      if (planned.step === "promote") {
        const lagging = this.promoteRefusal(planned.id);
        if (lagging !== null) {
          steps.push({ step: "promote", id: planned.id, ok: false, elapsedMs: ms(stepStarted) });
          return this.outcome("lagging", lagging, steps, started);
        }
      }
      const members = this.membersAfter(planned);
      const queued = this.deps.core.changeMembership(members);
      if (!queued.queued) {
        const { outcome, detail } = changeRefusal(
          queued.reason,
          queued.detail,
          this.deps.core.knownLeader,
        );
        steps.push({ step: planned.step, id: planned.id, ok: false, elapsedMs: ms(stepStarted) });
        return this.outcome(outcome, detail, steps, started);
      }
      this.deps.schedulePump();
      const entry = await this.waitGoverning(queued.base, members, waitMs);
      const ok = entry !== null;
      steps.push({
        step: planned.step,
        id: planned.id,
        ok,
        ...(entry === null ? {} : { slot: entry.slot, effectiveFrom: entry.effectiveFrom }),
        elapsedMs: ms(stepStarted),
      });
      this.logStep(steps.at(-1)!);
      if (!ok) {
        const role = this.deps.core.role;
        return this.outcome(
          this.deps.stopping() ? "stopping" : role === "leader" ? "timed-out" : "not-leader",
          role === "leader"
            ? `the ${planned.step} of replica ${planned.id} was not chosen and governing within ${waitMs} ms; GET /members shows whether it went through later`
            : `this replica stopped leading before the ${planned.step} of replica ${planned.id} was chosen; GET /members on the leader shows whether it went through`,
          steps,
          started,
        );
      }
    }
    return this.outcome("done", plan.map((p) => `${p.step} ${p.id}`).join(", "), steps, started);
  }

  private logStep(step: MemberChangeStep): void {
    this.deps.log.info(
      step,
      `membership change: ${step.step} replica ${step.id} ${step.ok ? "done" : "did not finish"}`,
    );
  }

  /** Why `request` cannot start here, or null. Single-server steps only. */
  private refusal(
    request: MemberChangeRequest,
  ): { outcome: MemberChangeOutcome["outcome"]; detail: string } | null {
    const core = this.deps.core;
    if (core.role !== "leader") {
      const leader = core.knownLeader;
      return {
        outcome: "not-leader",
        detail:
          leader === 0
            ? "this replica does not lead and knows no leader yet; try again in a moment"
            : `this replica does not lead; send the change to replica ${leader}'s admin port (apus member finds it)`,
      };
    }
    const latest = core.membership().latest;
    if (latest === null)
      return { outcome: "not-leader", detail: "this replica knows no configuration" };
    if (core.membership().current !== latest)
      return {
        outcome: "busy",
        detail: `the change in slot ${latest.slot} does not govern yet (from slot ${latest.effectiveFrom}); try again in a moment`,
      };
    const find = (id: number) => latest.members.find((m) => m.id === id);
    const voters = latest.members.filter((m) => m.voter).length;
    switch (request.op) {
      case "add":
        if (find(request.id) !== undefined)
          return {
            outcome: "invalid",
            detail: `replica ${request.id} is a member already (${find(request.id)!.voter ? "voter" : "learner"})`,
          };
        return this.addressRefusal(request.address, latest, request.id);
      case "promote": {
        const m = find(request.id);
        if (m === undefined)
          return {
            outcome: "invalid",
            detail: `replica ${request.id} is no member; add it first (apus member add)`,
          };
        if (m.voter)
          return { outcome: "invalid", detail: `replica ${request.id} is a voter already` };
        return null;
      }
      case "remove": {
        const m = find(request.id);
        if (m === undefined)
          return { outcome: "invalid", detail: `replica ${request.id} is no member` };
        if (m.voter && voters === 1)
          return {
            outcome: "invalid",
            detail: `replica ${request.id} is the last voter; add and promote another first`,
          };
        return null;
      }
      case "replace": {
        const m = find(request.id);
        const newId = request.newId;
        if (m === undefined)
          return { outcome: "invalid", detail: `replica ${request.id} is no member` };
        if (newId === undefined || newId === request.id)
          return {
            outcome: "invalid",
            detail: "replace needs a new id, other than the one it replaces",
          };
        const other = find(newId);
        if (other?.voter === true)
          return { outcome: "invalid", detail: `replica ${newId} is a voter already` };
        if (other !== undefined) return null; // a learner added before: catch up, promote, remove
        return this.addressRefusal(request.address, latest, newId);
      }
    }
  }

  private addressRefusal(
    address: string | undefined,
    latest: Entry,
    id: number,
  ): { outcome: "invalid"; detail: string } | null {
    if (address === undefined || parsePeerAddress(address) === null)
      return {
        outcome: "invalid",
        detail: `replica ${id} needs its peer address, host:port (its --peers entry)`,
      };
    const text = formatPeerAddress(parsePeerAddress(address)!);
    const clash = latest.members.find((m) => m.address === text);
    if (clash !== undefined)
      return { outcome: "invalid", detail: `${text} is replica ${clash.id}'s address` };
    return null;
  }

  /** Why learner `id` may not be promoted now (too far behind, or silent), or null. */
  private promoteRefusal(id: number): string | null {
    const progress = this.answering(id);
    const limit = this.deps.config.promoteLagSlots;
    if (progress === null)
      return `replica ${id} has not answered the leader since it was added; start it (with --join, the cluster's --secret-file, and --peers naming the members and itself) and let it catch up before promoting it`;
    if (progress.lagSlots > limit)
      return `replica ${id} trails the leader by ${progress.lagSlots} slots, more than --promote-lag-slots ${limit}; promoting it now could stall writes until it catches up. Wait (GET /members shows its lag) and try again`;
    return null;
  }

  /**
   * On the leader: member `id`'s progress if it answers, null if not: it reported a chosen
   * prefix that holds the latest change (so it learned it is a member, and is alive), and the
   * leader heard it within two election timeouts.
   */
  private answering(id: number): { lagSlots: number } | null {
    const progress = this.progressOf(id);
    const latest = this.deps.core.membership().latest;
    if (progress === null || latest === null || progress.chosenSlot < latest.slot) return null;
    // A replica that joins votes for nothing until it caught up (and one that must recover, not
    // before it did): promoted before that, it would be a voter that cannot vote. It voted in
    // this leadership, or it holds everything we chose (an idle cluster sends no Accepts).
    if (!progress.voted && progress.lagSlots > 0) return null;
    const silentMs = progress.lastHeardMsAgo ?? 0;
    return silentMs > 2 * this.deps.config.electionTimeoutMs ? null : progress;
  }

  private membersAfter(step: PlannedStep): Member[] {
    const latest = this.deps.core.membership().latest!;
    const others = latest.members.filter((m) => m.id !== step.id);
    switch (step.step) {
      case "add":
        return sortedMembers([
          ...others,
          {
            id: step.id,
            voter: false,
            address: formatPeerAddress(parsePeerAddress(step.address!)!),
          },
        ]);
      case "promote": {
        const m = latest.members.find((member) => member.id === step.id)!;
        return sortedMembers([...others, { ...m, voter: true }]);
      }
      case "remove":
        return others;
      case "catch-up":
        return [...latest.members];
    }
  }

  /** Wait until a change on `base` to `members` is chosen and governs; null: it did not in time. */
  private async waitGoverning(
    base: number,
    members: readonly Member[],
    waitMs: number,
  ): Promise<Entry | null> {
    const deadline = performance.now() + waitMs;
    while (performance.now() < deadline && !this.deps.stopping()) {
      const { current, latest } = this.deps.core.membership();
      if (latest !== null && latest.slot > base) {
        if (!sameMembers(latest.members, members)) return null; // another change won the slot
        if (current === latest) return latest;
      }
      if (this.deps.core.role !== "leader" && (latest === null || latest.slot <= base)) return null;
      await sleep(POLL_MS);
    }
    return null;
  }

  /** Wait until learner `id` trails by at most --promote-lag-slots; its lag then, null if never heard. */
  private async waitCaughtUp(id: number, waitMs: number): Promise<number | null> {
    const deadline = performance.now() + waitMs;
    let lag: number | null = null;
    while (!this.deps.stopping()) {
      lag = this.answering(id)?.lagSlots ?? lag;
      if (lag !== null && lag <= this.deps.config.promoteLagSlots && this.answering(id) !== null)
        return lag;
      if (performance.now() >= deadline || this.deps.core.role !== "leader") return lag;
      await sleep(POLL_MS * 10);
    }
    return lag;
  }

  private outcome(
    outcome: MemberChangeOutcome["outcome"],
    detail: string,
    steps: readonly MemberChangeStep[],
    started: number,
  ): MemberChangeOutcome {
    const members = this.view();
    return {
      outcome,
      detail,
      leader: members.leader,
      leaderAddress: members.leaderAddress,
      steps,
      members,
      elapsedMs: ms(started),
    };
  }
}

interface PlannedStep {
  readonly step: MemberChangeStep["step"];
  readonly id: number;
  readonly address?: string;
}

/** The core's refusal of a change, as the outcome the admin endpoint answers. */
function changeRefusal(
  reason: "not-leader" | "pending" | "stale-base" | "invalid" | "unchanged",
  detail: string | undefined,
  leader: number,
): { outcome: MemberChangeOutcome["outcome"]; detail: string } {
  switch (reason) {
    case "not-leader":
      return {
        outcome: "not-leader",
        detail: `this replica does not lead${leader === 0 ? "" : `; replica ${leader} does`}`,
      };
    case "pending":
    case "stale-base":
      return {
        outcome: "busy",
        detail: "another membership change is in flight; try again once it governs",
      };
    case "invalid":
      return { outcome: "invalid", detail: detail ?? "not a configuration" };
    case "unchanged":
      return { outcome: "invalid", detail: "the configuration is that already" };
  }
}

function sameMembers(a: readonly Member[], b: readonly Member[]): boolean {
  return (
    a.length === b.length &&
    a.every((m, i) => m.id === b[i]!.id && m.voter === b[i]!.voter && m.address === b[i]!.address)
  );
}

export function clampWait(waitMs: number | null): number {
  if (waitMs === null) return MEMBER_CHANGE_WAIT_MS_DEFAULT;
  return Math.min(MEMBER_CHANGE_WAIT_MS_MAX, Math.max(MEMBER_CHANGE_WAIT_MS_MIN, waitMs));
}

function ms(since: number): number {
  return Math.round(performance.now() - since);
}

function sleep(delayMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, delayMs));
}
