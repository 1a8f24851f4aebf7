import {
  ApusError,
  type Batch,
  decodeMessage,
  encodeMessage,
  formatBallot,
  type Message,
  MessageType,
  type PersistBatch,
  type Ready,
  type Replica,
  SeededPrng,
} from "../core/index.ts";
import { ReadyLoop, type ReadyLoopIo } from "../runtime/ready-loop.ts";
import { Checker, commandKey, Violation } from "./checker.ts";
import { replicaFactory } from "./planted-bugs.ts";
import { describeScenario, livenessTicksMax, type Scenario } from "./scenario.ts";
import { SimNetwork } from "./sim-network.ts";
import { SimStateMachine } from "./sim-state-machine.ts";
import { SimStorage } from "./sim-storage.ts";

/** Answers that decide a race: the adversary holds some of them back (scenario.raceDelayRate). */
const RACE_MESSAGES = new Set<number>([
  MessageType.Promise,
  MessageType.Accepted,
  MessageType.ProbeReply,
  MessageType.RecoverReply,
]);

function isHintOnly(persist: PersistBatch): boolean {
  return persist.promised === null && persist.accepted.length === 0 && persist.snapshot === null;
}

/** Chance per replica per tick that the runtime asks a leader to announce its commit point. */
const ANNOUNCE_COMMIT_RATE = 0.25;

interface SimNode {
  readonly id: number;
  core: Replica | null;
  /** The runtime's own Ready loop (src/runtime/ready-loop.ts) around this incarnation's core. */
  loop: ReadyLoop | null;
  /** The last persist this incarnation appended was a deferred chosen-slot hint. */
  hintDeferred: boolean;
  readonly storage: SimStorage;
  machine: SimStateMachine;
  /** Bumped at each restart: acknowledgements come only from the incarnation that proposed. */
  incarnation: number;
  downUntil: number;
  /** Last ballot this replica led with (to count elections). */
  ledBallot: number;
}

interface PendingCommand {
  readonly bytes: Uint8Array;
  readonly key: string;
  /** Replica and incarnation holding the latest proposal, or 0 when not yet proposed. */
  at: number;
  incarnation: number;
  proposedTick: number;
}

interface SimClient {
  readonly id: number;
  seq: number;
  target: number;
  pending: PendingCommand | null;
}

export interface SimResult {
  readonly scenario: Scenario;
  readonly ok: boolean;
  readonly violation: Violation | null;
  readonly ticks: number;
  readonly chosenSlots: number;
  readonly acked: number;
  readonly packetsSent: number;
  readonly crashes: number;
  readonly partitions: number;
  readonly elections: number;
}

export type TraceSink = (line: string) => void;

const MESSAGE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(MessageType).map(([name, code]) => [code, name]),
);

function describeMessage(m: Message): string {
  const base = `${MESSAGE_NAMES[m.type]} ${m.from}->${m.to} b=${formatBallot(m.ballot)}`;
  switch (m.type) {
    case MessageType.Accept:
      return `${base} slot=${m.slot} cmds=${m.batch.commands.length} commit=${m.commitSlot}`;
    case MessageType.Accepted:
      return `${base} slot=${m.slot} chosen=${m.chosenSlot}`;
    case MessageType.Promise:
      return `${base} from=${m.fromSlot} chosen=${m.chosenSlot} entries=${m.entries.length}${m.more ? " more" : ""}`;
    case MessageType.Chosen:
      return `${base} entries=${m.entries[0]?.slot ?? "-"}..${m.entries.at(-1)?.slot ?? "-"}`;
    case MessageType.Heartbeat:
      return `${base} commit=${m.commitSlot}`;
    default:
      return base;
  }
}

/**
 * Deterministic cluster simulation: N cores, a lossy network, crashing disks-and-all replicas,
 * clients, and the checker looking at everything after every step.
 */
export class Simulator {
  readonly scenario: Scenario;
  private readonly prng: SeededPrng;
  private readonly network: SimNetwork;
  private readonly checker: Checker;
  private readonly nodes: SimNode[] = [];
  private readonly clients: SimClient[] = [];
  /** key -> client, for acknowledging commands when they are applied. */
  private readonly pendingByKey = new Map<string, SimClient>();
  private readonly makeReplica: ReturnType<typeof replicaFactory>;
  private readonly trace: TraceSink | undefined;
  private now = 0;
  private partitionEndTick = 0;
  /** Fault phase: faults strike and clients issue new commands. */
  private faultsOn = true;
  private crashes = 0;
  private partitions = 0;
  private elections = 0;

  constructor(scenario: Scenario, trace?: TraceSink) {
    this.scenario = scenario;
    this.trace = trace;
    this.prng = new SeededPrng(scenario.seed);
    this.network = new SimNetwork(scenario.replicaCount, { ...scenario.faults }, this.prng);
    this.checker = new Checker(scenario.replicaCount);
    this.makeReplica = replicaFactory(scenario.bug);
    for (let id = 1; id <= scenario.replicaCount; id++) {
      const storage = new SimStorage();
      storage.forgetVotes = scenario.bug === "forget-votes";
      storage.forgetPromises = scenario.bug === "forget-promise";
      const node: SimNode = {
        id,
        core: null,
        loop: null,
        hintDeferred: false,
        storage,
        machine: new SimStateMachine(),
        incarnation: 0,
        downUntil: 0,
        ledBallot: 0,
      };
      this.nodes.push(node);
      this.start(node);
    }
    for (let id = 1; id <= scenario.clients; id++) {
      this.clients.push({
        id,
        seq: 0,
        target: 1 + this.prng.nextInt(scenario.replicaCount),
        pending: null,
      });
    }
  }

  private log(line: string): void {
    this.trace?.(`t=${this.now} ${line}`);
  }

  run(): SimResult {
    let violation: Violation | null = null;
    try {
      this.runFaultPhase();
      this.runHealPhase();
      this.checker.checkDurability(this.disks(), true);
    } catch (error) {
      if (error instanceof Violation) violation = error;
      else if (error instanceof ApusError && error.code === "ERR_ASSERTION") {
        violation = new Violation("assertion", this.now, error.message);
      } else throw error;
    }
    if (violation !== null) this.log(`VIOLATION ${violation.message}`);
    return {
      scenario: this.scenario,
      ok: violation === null,
      violation,
      ticks: this.now,
      chosenSlots: this.checker.chosenSlots,
      acked: this.checker.acked.size,
      packetsSent: this.network.sent,
      crashes: this.crashes,
      partitions: this.partitions,
      elections: this.elections,
    };
  }

  private runFaultPhase(): void {
    while (this.now < this.scenario.faultTicks) {
      this.step();
      this.injectFaults();
    }
  }

  /** Faults stop, the network heals, every replica restarts: everything pending must commit. */
  private runHealPhase(): void {
    this.log("faults stop: heal partitions, restart crashed replicas, no loss or duplication");
    this.faultsOn = false;
    this.network.faults = {
      dropRate: 0,
      duplicateRate: 0,
      delayTicksMin: 1,
      delayTicksMax: this.scenario.faults.delayTicksMax,
      lateRate: 0,
      lateTicksMax: 0,
    };
    this.network.heal();
    for (const node of this.nodes) if (node.core === null) this.start(node);
    const deadline = this.now + livenessTicksMax(this.scenario);
    while (this.clients.some((c) => c.pending !== null)) {
      if (this.now >= deadline) {
        const stuck = this.clients.filter((c) => c.pending !== null).map((c) => c.pending!.key);
        this.checker.fail(
          "liveness",
          `commands ${stuck.join(", ")} not committed ${livenessTicksMax(this.scenario)} ticks after faults stopped`,
        );
      }
      this.step();
    }
    // Every replica must then converge on the same history.
    // A replica that lost its state learns the whole chosen prefix first, catchupEntriesMax
    // slots per round trip.
    const recoveryTicks = Math.ceil(
      (this.checker.chosenSlots / this.scenario.catchupEntriesMax) *
        (2 * this.scenario.faults.delayTicksMax + 1),
    );
    const convergeDeadline = this.now + livenessTicksMax(this.scenario) + recoveryTicks;
    while (!this.converged()) {
      if (this.now >= convergeDeadline) {
        const slots = this.nodes.map((n) => `${n.id}:${n.machine.appliedSlot}`).join(" ");
        this.checker.fail(
          "convergence",
          `replicas did not converge after faults stopped (applied ${slots})`,
        );
      }
      this.step();
    }
  }

  private converged(): boolean {
    const first = this.nodes[0]!.machine;
    if (first.appliedSlot < this.checker.chosenSlots) return false;
    return this.nodes.every(
      (n) => n.machine.appliedSlot === first.appliedSlot && n.machine.hash === first.hash,
    );
  }

  /** One tick: deliver what arrives, let clients act, tick every core, drain every Ready. */
  private step(): void {
    this.now++;
    this.checker.now = this.now;
    for (const packet of this.network.deliver(this.now)) {
      const node = this.nodes[packet.to - 1]!;
      if (node.core === null) continue;
      const decoded = decodeMessage(packet.bytes);
      if (!decoded.ok) this.checker.fail("wire", `${decoded.code}: ${decoded.reason}`);
      if (this.trace) this.log(`deliver ${describeMessage(decoded.message)}`);
      node.core.step(decoded.message);
    }
    for (const client of this.clients) this.stepClient(client);
    for (const node of this.nodes) {
      if (node.core === null) continue;
      node.core.tick();
      // The runtime announces a commit whenever a follower waits on it: any time, in effect.
      if (this.prng.nextFloat() < ANNOUNCE_COMMIT_RATE) node.core.announceCommit();
      this.drain(node);
    }
    this.checker.checkDurability(this.disks());
  }

  private disks(): SimStorage[] {
    return this.nodes.map((n) => n.storage);
  }

  private drain(node: SimNode): void {
    node.loop?.pump();
    this.noteAmnesia(node);
  }

  /** The Ready loop's view of this replica's world: the network, its disk, the checker. */
  private loopIo(node: SimNode): ReadyLoopIo {
    return {
      send: (messages) => {
        for (const message of messages) this.checker.onSent(message, node.storage);
        this.sendAll(messages);
      },
      apply: (ready) => this.apply(node, ready),
      append: (persist) => {
        if (this.faultsOn && this.crashAllowed(node) && this.crashBeforePersist(persist)) {
          this.crash(node, "crash before the persist completed");
          return;
        }
        node.storage.append(persist);
        node.hintDeferred = isHintOnly(persist);
      },
      flush: () => {
        node.storage.flush();
        node.hintDeferred = false;
        return undefined;
      },
      advanced: () => {
        if (node.core === null) return;
        this.noteLeadership(node);
        this.maybeCompact(node);
        if (
          this.faultsOn &&
          node.hintDeferred &&
          this.crashAllowed(node) &&
          this.prng.nextFloat() < this.scenario.crashPointRate
        ) {
          this.crash(node, "crash after a deferred chosen-slot hint was reported");
        }
      },
      fatal: (error) => {
        throw error;
      },
    };
  }

  /** Torn persists at random, and targeted: a crash just before a promise becomes durable. */
  private crashBeforePersist(persist: PersistBatch): boolean {
    if (this.prng.nextFloat() < this.scenario.tornPersistRate) return true;
    return persist.promised !== null && this.prng.nextFloat() < this.scenario.crashPointRate;
  }

  /** A replica that lost its state stops being excused once it votes again (or recovered). */
  private noteAmnesia(node: SimNode): void {
    if (node.storage.amnesiac && node.core !== null && node.core.role !== "recovering") {
      node.storage.amnesiac = false;
      this.log(
        `replica ${node.id} votes again (${node.core.recoveries > 0 ? "recovered" : "without recovering"})`,
      );
    }
  }

  private noteLeadership(node: SimNode): void {
    const status = node.core!.status();
    if (status.role !== "leader" || status.ballot === node.ledBallot) return;
    node.ledBallot = status.ballot;
    this.elections++;
    this.log(`replica ${node.id} leads with ballot ${formatBallot(status.ballot)}`);
  }

  private apply(node: SimNode, ready: Ready): void {
    if (ready.snapshot !== null) {
      node.machine.install(ready.snapshot);
      this.checker.onApplied(node.id, ready.snapshot.slot, node.machine.hash);
    }
    for (const entry of ready.chosen) {
      this.checker.onChosen(node.id, entry);
      node.machine.apply(entry.slot, entry.batch);
      this.checker.onApplied(node.id, entry.slot, node.machine.hash);
      this.acknowledge(node, entry.slot, entry.batch);
    }
  }

  private acknowledge(node: SimNode, slot: number, batch: Batch): void {
    for (const command of batch.commands) {
      const key = commandKey(command);
      const client = this.pendingByKey.get(key);
      const pending = client?.pending;
      if (client === undefined || pending == null) continue;
      if (pending.at !== node.id || pending.incarnation !== node.incarnation) continue;
      this.checker.onAcked(key, slot);
      this.pendingByKey.delete(key);
      client.pending = null;
    }
  }

  private maybeCompact(node: SimNode): void {
    const every = this.scenario.compactEverySlots;
    const core = node.core!;
    if (every === 0 || node.machine.appliedSlot - core.status().compactedSlot < every) return;
    core.compact(node.machine.takeSnapshot());
  }

  private sendAll(messages: readonly Message[]): void {
    for (const message of messages) {
      // Targeted delay: hold back the answers that decide who wins a race.
      const extra =
        RACE_MESSAGES.has(message.type) && this.prng.nextFloat() < this.scenario.raceDelayRate
          ? 1 + this.prng.nextInt(this.scenario.electionTicks)
          : 0;
      this.network.send(
        this.now,
        { from: message.from, to: message.to, bytes: encodeMessage(message) },
        extra,
      );
    }
  }

  // ---- clients --------------------------------------------------------------------------------

  private stepClient(client: SimClient): void {
    if (client.pending === null) {
      if (!this.faultsOn) return;
      client.seq++;
      const padding = this.prng.nextInt(24);
      const bytes = new Uint8Array(8 + padding);
      const view = new DataView(bytes.buffer);
      view.setUint32(0, client.id, true);
      view.setUint32(4, client.seq, true);
      const pending: PendingCommand = {
        bytes,
        key: commandKey(bytes),
        at: 0,
        incarnation: 0,
        proposedTick: 0,
      };
      client.pending = pending;
      this.pendingByKey.set(pending.key, client);
    }
    const pending = client.pending;
    if (pending.at !== 0 && this.now - pending.proposedTick < this.scenario.clientRetryTicks)
      return;
    const node = this.nodes[client.target - 1]!;
    const result = node.core?.propose(pending.bytes, this.now) ?? "not-leader";
    if (result === "queued") {
      this.checker.onProposed(pending.key);
      pending.at = node.id;
      pending.incarnation = node.incarnation;
      pending.proposedTick = this.now;
      if (this.trace) this.log(`client ${client.id} proposes ${pending.key} at replica ${node.id}`);
      this.drain(node);
      return;
    }
    // Redirect like a real client library: to the leader this replica names, else anywhere.
    const hint = node.core?.knownLeader ?? 0;
    client.target =
      hint !== 0 && hint !== node.id ? hint : 1 + this.prng.nextInt(this.scenario.replicaCount);
  }

  // ---- faults ---------------------------------------------------------------------------------

  private injectFaults(): void {
    const s = this.scenario;
    for (const node of this.nodes) {
      if (node.core === null && this.now >= node.downUntil) this.start(node);
    }
    if (s.crashRate > 0 && this.prng.nextFloat() < s.crashRate) {
      const up = this.crashable(s.durability === "memory");
      if (up.length > 0) this.crash(up[this.prng.nextInt(up.length)]!, "crash");
    }
    if (s.wipeRate > 0 && this.prng.nextFloat() < s.wipeRate) {
      const up = this.crashable(true);
      if (up.length > 0)
        this.crash(up[this.prng.nextInt(up.length)]!, "crash, disk replaced", true);
    }
    if (s.duelRate > 0 && this.prng.nextFloat() < s.duelRate) this.duel();
    if (this.network.partitioned && this.now >= this.partitionEndTick) {
      this.network.heal();
      this.log("partition heals");
    } else if (
      !this.network.partitioned &&
      s.partitionRate > 0 &&
      this.prng.nextFloat() < s.partitionRate
    ) {
      for (let id = 1; id <= s.replicaCount; id++) this.network.side[id] = this.prng.nextInt(2);
      this.partitionEndTick = this.now + s.electionTicks * (1 + this.prng.nextInt(8));
      this.partitions++;
      this.log(`partition ${this.network.side.slice(1).join("")} until t=${this.partitionEndTick}`);
    }
  }

  /**
   * Replicas that may crash now. A crash that loses state (memory durability, a wiped disk) is
   * allowed only while every other replica is up and holds its state: a lost majority of states
   * is beyond what any mode promises, and the checker would rightly complain.
   */
  private crashable(losesState: boolean): SimNode[] {
    const up = this.nodes.filter((n) => n.core !== null);
    if (!losesState) {
      // With memory durability any crash loses state; callers pass true then.
      return up;
    }
    if (this.scenario.replicaCount < 3) return []; // one replica's state is all there is
    const others = (n: SimNode) => this.nodes.filter((o) => o !== n);
    return up.filter((n) => others(n).every((o) => o.core !== null && !o.storage.amnesiac));
  }

  /** A crash of `node` now stays within what the durability mode promises (see crashable). */
  private crashAllowed(node: SimNode): boolean {
    return this.scenario.durability !== "memory" || this.crashable(true).includes(node);
  }

  /** Two replicas time out at once (their clocks jump) and campaign against each other. */
  private duel(): void {
    const up = this.nodes.filter((n) => n.core !== null);
    if (up.length < 2) return;
    const first = up[this.prng.nextInt(up.length)]!;
    const rest = up.filter((n) => n !== first);
    const second = rest[this.prng.nextInt(rest.length)]!;
    this.log(`duel: replicas ${first.id} and ${second.id} time out together`);
    for (const node of [first, second]) {
      for (let i = 0; i < 2 * this.scenario.electionTicks && node.core !== null; i++) {
        node.core.tick();
        this.drain(node);
      }
    }
  }

  private crash(node: SimNode, why: string, wipe = false): void {
    node.core = null;
    node.loop?.stop();
    node.loop = null;
    node.storage.loseUnwritten();
    if (wipe || this.scenario.durability === "memory") node.storage.wipe();
    node.downUntil = this.now + 1 + this.prng.nextInt(4 * this.scenario.electionTicks);
    this.crashes++;
    this.log(`replica ${node.id}: ${why}; restarts at t=${node.downUntil}`);
  }

  /** Start (or restart) a replica from its disk alone: all memory is new. */
  private start(node: SimNode): void {
    const s = this.scenario;
    node.incarnation++;
    node.machine = new SimStateMachine();
    node.hintDeferred = false;
    const lostState = node.storage.amnesiac;
    node.core = this.makeReplica(
      {
        id: node.id,
        replicaCount: s.replicaCount,
        electionTicks: s.electionTicks,
        heartbeatTicks: 1,
        retransmitTicks: 2 * s.faults.delayTicksMax + 1,
        windowSlots: s.windowSlots,
        catchupEntriesMax: s.catchupEntriesMax,
        prng: new SeededPrng(this.prng.next32()),
        // The runtime recovers a replica that lost its state (--initial-cluster-state existing);
        // the planted bug starts it as if the cluster were new.
        recovering: lostState && s.bug !== "amnesiac-votes",
      },
      node.incarnation > 1 ? node.storage.read() : undefined,
    );
    node.loop = new ReadyLoop(node.core, this.loopIo(node), { durable: true });
    if (node.incarnation > 1)
      this.log(`replica ${node.id} restarts ${lostState ? "with no state" : "from disk"}`);
    this.drain(node);
  }
}

export function runScenario(scenario: Scenario, trace?: TraceSink): SimResult {
  return new Simulator(scenario, trace).run();
}

export function replayCommand(scenario: Scenario): string {
  const bug = scenario.bug ? ` --bug ${scenario.bug}` : "";
  return `npm run sim -- --seed ${scenario.seed} --replicas ${scenario.replicaCount}${bug} --trace`;
}

export function formatFailure(result: SimResult): string {
  return `${result.violation?.message}\n  scenario: ${describeScenario(result.scenario)}\n  replay:   ${replayCommand(result.scenario)}`;
}
