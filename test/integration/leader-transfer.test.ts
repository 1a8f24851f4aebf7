import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { sleep, TestCluster } from "./cluster-harness.ts";
import { client, missingKeys } from "./keys.ts";

const CLI_JS = fileURLToPath(new URL("../../dist/cli.js", import.meta.url));
const CLIENTS = 4;
/** Load runs this long before the leader change, and this long after it. */
const BEFORE_MS = 1000;
const AFTER_MS = 2000;

interface Load {
  /** Keys whose SET was acknowledged. */
  readonly acked: string[];
  readonly errors: string[];
  /**
   * The longest time any client waited between two acknowledgements (a client-visible gap),
   * among gaps that ended after the event began, and among those that ended before it (the
   * machine's own noise: other processes share its cores).
   */
  readonly gapMs: number;
  readonly baselineGapMs: number;
}

/**
 * CLIENTS clients SET fresh keys through `port` one at a time until `event` (run after BEFORE_MS)
 * has finished and AFTER_MS more passed.
 */
async function loadAround(port: number, event: () => Promise<void>): Promise<Load> {
  const acked: string[] = [];
  const errors: string[] = [];
  let gapMs = 0;
  let baselineGapMs = 0;
  let eventAt = Number.POSITIVE_INFINITY;
  let running = true;
  const clients = Array.from({ length: CLIENTS }, () => client(port));
  const workers = clients.map(async (c, i) => {
    let last = performance.now();
    for (let n = 0; running; n++) {
      const key = `c${i}-${n}`;
      try {
        if ((await c.set(key, key)) === "OK") acked.push(key);
        const now = performance.now();
        if (now >= eventAt) gapMs = Math.max(gapMs, now - last);
        else baselineGapMs = Math.max(baselineGapMs, now - last);
        last = now;
      } catch (error) {
        errors.push((error as Error).message);
      }
    }
  });
  await sleep(BEFORE_MS);
  eventAt = performance.now();
  await event();
  await sleep(AFTER_MS);
  running = false;
  await Promise.all(workers);
  for (const c of clients) c.disconnect();
  return { acked, errors, gapMs, baselineGapMs };
}

function runCli(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const { APUS_ADMIN_PASSWORD: _, ...inherited } = process.env;
    const options = { env: { ...inherited, ...env } };
    execFile(process.execPath, [CLI_JS, ...args], options, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

function report(what: string, load: Load): void {
  const errors = [...new Set(load.errors)].slice(0, 3).join("; ");
  // Documented in the README (medians of a few runs); printed, never asserted: timing varies.
  console.log(
    `${what}: longest client-visible gap ${load.gapMs.toFixed(0)} ms ` +
      `(before it, with no leader change: ${load.baselineGapMs.toFixed(0)} ms); ` +
      `${load.acked.length} writes acknowledged, ${load.errors.length} errors${errors ? ` (${errors})` : ""}`,
  );
}

describe("leadership transfer with real processes", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  const start = async () => {
    cluster = await TestCluster.start({ replicas: 3 });
    await cluster.waitForAllUp();
    const leader = await cluster.waitForLeader();
    const follower = cluster.replicas.find((r) => r.id !== leader)!;
    return { cluster, leader, follower };
  };

  it("`apus leader transfer` moves leadership while 4 clients write through a follower; nothing acknowledged is lost", async () => {
    const { cluster: c, leader, follower } = await start();
    const admin = c.replicas.map((r) => `127.0.0.1:${r.adminPort}`).join(",");
    let cli = { code: -1, stdout: "", stderr: "" };
    const load = await loadAround(follower.clientPort, async () => {
      cli = await runCli(["leader", "transfer", "--admin", admin]);
    });
    expect(cli.code, `${cli.stdout}${cli.stderr}\n${c.outputs()}`).toBe(0);
    const next = Number(/replica (\d+) leads/.exec(cli.stdout)?.[1]);
    expect(next).not.toBe(leader);
    expect(await c.waitForLeader()).toBe(next);
    const tookMs = /in (\d+) ms/.exec(cli.stdout)?.[1];
    report(
      `leader transfer ${leader} -> ${next} (apus leader transfer; ${tookMs} ms at the leader)`,
      load,
    );
    expect(load.acked.length).toBeGreaterThan(0);
    expect(await missingKeys(follower.clientPort, load.acked)).toEqual([]);
    expect(await missingKeys(c.replica(next).clientPort, load.acked)).toEqual([]);
    expect(await c.metrics(leader)).toMatch(/apus_leader_transfers_total\{outcome="completed"\} 1/);
    // A named target: back to the first leader, through the CLI again.
    const back = await runCli(["leader", "transfer", String(leader), "--admin", admin]);
    expect(back.code, back.stdout + back.stderr).toBe(0);
    expect(back.stdout).toContain(`replica ${leader} leads`);
    // Asking a follower, or for a replica that is not one, is refused and says why.
    const notLeader = await fetch(`http://127.0.0.1:${c.replica(next).adminPort}/leader/transfer`, {
      method: "POST",
      headers: { "x-apus-admin": "1" },
    });
    expect(notLeader.status).toBe(409);
    const bad = await fetch(
      `http://127.0.0.1:${c.replica(leader).adminPort}/leader/transfer?to=9`,
      {
        method: "POST",
        headers: { "x-apus-admin": "1" },
      },
    );
    expect(bad.status).toBe(400);
    // --json answers in JSON whatever happened, a failure included; the exit status says it.
    const none = await runCli(["leader", "transfer", "--json", "--admin", "127.0.0.1:1"]);
    expect(none.code).toBe(1);
    expect(JSON.parse(none.stdout)).toMatchObject({ ok: false, leaderAfter: 0 });
  });

  it("with --users-file, `apus leader transfer` needs an admin user: refused without, done with --user ops", async () => {
    const dir = mkdtempSync(join(tmpdir(), "apus-admin-auth-"));
    try {
      const usersFile = join(dir, "users.acl");
      writeFileSync(usersFile, "ops admin ops-secret-0123\napp read-write app-secret-0123\n", {
        mode: 0o600,
      });
      cluster = await TestCluster.start({ replicas: 3, extraArgs: ["--users-file", usersFile] });
      const c = cluster;
      await c.waitForAllUp();
      const leader = await c.waitForLeader();
      const admin = c.replicas.map((r) => `127.0.0.1:${r.adminPort}`).join(",");
      const bare = await runCli(["leader", "transfer", "--admin", admin]);
      expect(bare.code, bare.stdout + bare.stderr).toBe(1);
      expect(bare.stderr).toMatch(/HTTP 401.*--user NAME.*APUS_ADMIN_PASSWORD/);
      expect(bare.stderr.trim().split("\n")).toHaveLength(1);
      const app = await runCli(["leader", "transfer", "--admin", admin, "--user", "app"], {
        APUS_ADMIN_PASSWORD: "app-secret-0123",
      });
      expect(app.code).toBe(1);
      expect(app.stderr).toMatch(/user app has role read-write.*HTTP 403/);
      const noPassword = await runCli(["leader", "transfer", "--admin", admin, "--user", "ops"]);
      expect(noPassword.code).toBe(2);
      expect(noPassword.stderr).toMatch(/--password-file FILE, or .*APUS_ADMIN_PASSWORD/);
      expect(await c.waitForLeader()).toBe(leader);
      const ops = await runCli(["leader", "transfer", "--admin", admin, "--user", "ops"], {
        APUS_ADMIN_PASSWORD: "ops-secret-0123",
      });
      expect(ops.code, `${ops.stdout}${ops.stderr}\n${c.outputs()}`).toBe(0);
      const next = Number(/replica (\d+) leads/.exec(ops.stdout)?.[1]);
      expect(next).not.toBe(leader);
      expect(await c.waitForLeader()).toBe(next);
      expect(await c.metrics(leader)).toMatch(
        /apus_admin_requests_refused_total\{reason="unauthenticated"\} 1/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("SIGTERM of the leader hands leadership over before it stops; nothing acknowledged is lost", async () => {
    const { cluster: c, leader, follower } = await start();
    let code: number | null = -1;
    const load = await loadAround(follower.clientPort, async () => {
      code = await c.terminate(leader);
    });
    expect(code, c.outputs()).toBe(0);
    expect(c.replica(leader).output).toMatch(/leadership handed over in \d+ ms/);
    const next = await c.waitForLeader(20_000, [leader]);
    const tookMs = /leadership handed over in (\d+) ms/.exec(c.replica(leader).output)?.[1];
    report(`SIGTERM of leader ${leader} (handed to ${next} in ${tookMs} ms at the leader)`, load);
    expect(load.acked.length).toBeGreaterThan(0);
    expect(await missingKeys(follower.clientPort, load.acked)).toEqual([]);
  });

  it("for comparison, kill -9 of the leader: clients wait for an election timeout; nothing acknowledged is lost", async () => {
    const { cluster: c, leader, follower } = await start();
    const load = await loadAround(follower.clientPort, () => c.kill(leader));
    const next = await c.waitForLeader(20_000, [leader]);
    report(`kill -9 of leader ${leader} (elected ${next})`, load);
    expect(load.acked.length).toBeGreaterThan(0);
    expect(await missingKeys(follower.clientPort, load.acked)).toEqual([]);
  });
});
