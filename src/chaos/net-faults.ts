/**
 * Network faults between replicas with nftables, by address: every rule lives in one table of
 * this run's own (`inet apus_chaos_<pid>`), so healing is flushing its chain and cleaning up is
 * deleting the table. The table is deleted at the end of the run even when it fails (the run
 * calls `destroy` in a finally block, and on process exit).
 *
 * Rules match only packets whose source AND destination are replica addresses: peer traffic.
 * The chaos clients connect from 127.0.0.1, so they always reach the replica they talk to.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

const TABLE_PREFIX = "apus_chaos_";

/**
 * `nft` lives in /usr/sbin, which a non-login root shell (and so CI) may not have on PATH: the
 * network faults would then be silently off.
 */
export const NFT = existsSync("/usr/sbin/nft") ? "/usr/sbin/nft" : "nft";

/** Run `nft` with these arguments (tests that drop packets themselves use it too). */
export function nft(args: readonly string[]): void {
  execFileSync(NFT, args, { stdio: ["ignore", "ignore", "pipe"] });
}

/** Root and a working `nft`: network faults are possible. */
export function nftUsable(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync(NFT, ["list", "tables"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * One table of this process's, with an input chain (`create`), emptied by `heal` and removed by
 * `destroy`: the chaos run's faults by address, and tests and benchmarks that drop or slow
 * packets by port (`rule`, `firstRule`).
 */
export class NetFaults {
  readonly table = `${TABLE_PREFIX}${process.pid}`;
  private created = false;
  private readonly replicaHosts: readonly string[];

  constructor(replicaHosts: readonly string[]) {
    this.replicaHosts = replicaHosts;
  }

  create(): void {
    removeOrphanTables();
    nft(["add", "table", "inet", this.table]);
    this.created = true;
    nft([
      "add",
      "chain",
      "inet",
      this.table,
      "input",
      "{ type filter hook input priority -10 ; policy accept ; }",
    ]);
  }

  /** A rule of our own at the end of the chain (`match` is nft's words, ending in a verdict). */
  rule(...match: string[]): void {
    nft(["add", "rule", "inet", this.table, "input", ...match]);
  }

  /** A rule at the head of the chain, before every other. */
  firstRule(...match: string[]): void {
    nft(["insert", "rule", "inet", this.table, "input", ...match]);
  }

  /** Packets from any of `from` to any of `to` are dropped. */
  drop(from: readonly string[], to: readonly string[]): void {
    if (from.length === 0 || to.length === 0) return;
    this.rule(
      "ip",
      "saddr",
      `{ ${from.join(", ")} }`,
      "ip",
      "daddr",
      `{ ${to.join(", ")} }`,
      "drop",
    );
  }

  /** No packet crosses between the two sides, either way. */
  partition(a: readonly string[], b: readonly string[]): void {
    this.drop(a, b);
    this.drop(b, a);
  }

  /** Each peer packet is dropped with probability percent / 100. */
  loss(percent: number): void {
    const all = `{ ${this.replicaHosts.join(", ")} }`;
    this.rule(
      ...["ip", "saddr", all, "ip", "daddr", all],
      ...["numgen", "random", "mod", "100", "<", String(percent), "drop"],
    );
  }

  /** Remove every rule: the network is whole again. */
  heal(): void {
    if (this.created) nft(["flush", "chain", "inet", this.table, "input"]);
  }

  /** Delete the table; safe to call more than once, and when it was never created. */
  destroy(): void {
    if (!this.created) return;
    this.created = false;
    try {
      nft(["delete", "table", "inet", this.table]);
    } catch {
      // already gone
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Tables left by chaos runs that were killed before they could clean up (kill -9 of the run). */
function removeOrphanTables(): void {
  const listing = execFileSync(NFT, ["list", "tables"], { encoding: "utf8" });
  for (const match of listing.matchAll(new RegExp(`^table inet (${TABLE_PREFIX}(\\d+))$`, "gm"))) {
    const pid = Number(match[2]);
    if (pid === process.pid || alive(pid)) continue;
    try {
      nft(["delete", "table", "inet", match[1]!]);
    } catch {
      // another run removed it first
    }
  }
}
