import { execFile } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { machine, release, type } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import { KvApp } from "../../app/kv-app.ts";
import type { ServerSettings } from "../../app/kv-server.ts";
import type { ProgramCodec } from "../../app/program/codec.ts";
import { memcacheCodec } from "../../app/program/memcache-codec.ts";
import { ProgramApp } from "../../app/program/program-app.ts";
import { programArgv, splitCommand } from "../../app/program/program-command.ts";
import { PROGRAM_HOST, ProgramProcess } from "../../app/program/program-process.ts";
import { rawCodec } from "../../app/program/raw-codec.ts";
import {
  loadRedisCommandTable,
  type RedisCommandTable,
} from "../../app/program/redis-command-table.ts";
import { respCodec } from "../../app/program/resp-codec.ts";
import type { ReplicatedApp } from "../../app/replicated-app.ts";
import type { ReplicaConfig } from "../../runtime/config.ts";
import { PROGRAM_PORT_FILE } from "../client-rights.ts";
import type { AppHooks } from "./consensus-node.ts";

/** The application of this replica, ready to be built once the consensus node exists. */
export interface AppSetup {
  create(hooks: AppHooks): ReplicatedApp;
  /** Stop what the setup started (the program's copy). */
  stop(): Promise<void>;
}

/** Where the copy's pid is kept, so a copy a killed replica left behind is stopped on restart. */
const PID_FILE = "app.pid";
/**
 * util-linux's setpriv, when present, starts the copy with a parent-death signal: a replica that
 * is killed (kill -9, OOM) takes its copy with it instead of leaving it running.
 */
const SETPRIV = "/usr/bin/setpriv";

function codecFor(protocol: ReplicaConfig["protocol"]): ProgramCodec {
  switch (protocol) {
    case "resp":
      return respCodec();
    case "memcache":
      return memcacheCodec();
    case "raw":
      return rawCodec();
  }
}

/** Longest a checkpoint hook may run before the checkpoint is given up. */
export const CHECKPOINT_HOOK_TIMEOUT_MS = 60_000;

/**
 * Run the checkpoint hook (no shell; placeholders filled in) while the apply loop waits at its
 * barrier, then read every regular file it left in the copy's directory.
 */
async function runCheckpoint(
  template: string,
  program: ProgramProcess,
  dir: string,
  id: number,
): Promise<ReadonlyMap<string, Uint8Array>> {
  const argv = programArgv(template, {
    port: String(program.port),
    dir,
    host: PROGRAM_HOST,
    id: String(id),
  });
  await new Promise<void>((resolve, reject) => {
    execFile(
      argv[0]!,
      argv.slice(1),
      { timeout: CHECKPOINT_HOOK_TIMEOUT_MS },
      (error, _stdout, stderr) => {
        if (error === null) resolve();
        else
          reject(new Error(`checkpoint hook ${argv.join(" ")} failed: ${error.message} ${stderr}`));
      },
    );
  });
  const files = new Map<string, Uint8Array>();
  for (const entry of await readdir(dir, { withFileTypes: true }))
    if (entry.isFile()) files.set(entry.name, await readFile(join(dir, entry.name)));
  return files;
}

/**
 * A copy left running by a replica that was killed (kill -9 gives it no chance to stop it): its
 * pid is in the data directory. Stop it if that pid still runs the same program.
 */
function stopLeftover(dataDir: string, program: string, log: Logger): void {
  let pid: number;
  try {
    pid = Number(readFileSync(join(dataDir, PID_FILE), "utf8").trim());
  } catch {
    return;
  }
  if (!Number.isSafeInteger(pid) || pid <= 1) return;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "latin1").split("\0")[0] ?? "";
    if (!cmdline.endsWith(program.split("/").pop() ?? program)) return;
    process.kill(-pid, "SIGKILL");
    log.warn({ pid }, "stopped the copy of the program a previous run of this replica left behind");
  } catch {
    // gone already, or not ours to stop
  }
}

/** What CONFIG GET and INFO report of this replica (machine-local: only its own clients see it). */
function serverSettings(config: ReplicaConfig): ServerSettings {
  return {
    port: config.clientPort,
    bind: config.clientHost,
    maxclients: config.clientsMax,
    appendfsync: config.durability === "fsync" ? "always" : "no",
    processId: process.pid,
    os: `${type()} ${release()} ${machine()}`,
    uptimeSeconds: () => process.uptime(),
    cpuUsage: () => process.cpuUsage(),
  };
}

/**
 * The embedded store, or (--app) this replica's own copy of the program: started on a private
 * loopback port with an emptied directory (the log rebuilds it), supervised (a copy that dies
 * takes the replica down: its supervisor restarts it and it rebuilds the copy from its log).
 */
export async function setUpApp(config: ReplicaConfig, log: Logger): Promise<AppSetup> {
  if (config.app === null) {
    return {
      create: (hooks) =>
        new KvApp({
          valueBytesMax: config.valueBytesMax,
          replyBytesMax: config.replyBytesMax,
          memoryBytesMax: config.memoryBytesMax,
          blockLeaseMs: config.blockLeaseMs,
          server: serverSettings(config),
          info: hooks.info,
          hooks: {
            push: hooks.push,
            proposeUnblock: hooks.proposeUnblock,
            isLocal: hooks.isLocal,
            renewLease: hooks.renewLease,
          },
        }),
      stop: async () => {},
    };
  }
  let fatal: (error: Error) => void = (error) => {
    throw error;
  };
  const withDeathSignal = existsSync(SETPRIV);
  const program = new ProgramProcess({
    command: withDeathSignal ? `${SETPRIV} --pdeathsig KILL -- ${config.app}` : config.app,
    dir: join(config.dataDir, "app"),
    replicaId: config.id,
    restart: "never",
    onOutput: (line, stream) => log.debug({ stream }, `app: ${line}`),
    onExit: (exit) =>
      fatal(
        new Error(
          `the program's copy exited (code ${exit.code}, signal ${exit.signal}); last output: ${exit.outputTail.slice(-5).join(" | ")}`,
        ),
      ),
  });
  stopLeftover(config.dataDir, splitCommand(config.app)[0] ?? "", log);
  await program.start();
  const pidFile = join(config.dataDir, PID_FILE);
  writeFileSync(pidFile, `${program.pid}\n`);
  // The client side reads the copy's command table from it (roles of --users-file).
  writeFileSync(join(config.dataDir, PROGRAM_PORT_FILE), `${program.port}\n`);
  log.info(
    { pid: program.pid, port: program.port, command: config.app },
    "the program's copy runs",
  );
  const codec = codecFor(config.protocol);
  let table: RedisCommandTable | null = null;
  if (config.protocol === "resp") {
    try {
      table = await loadRedisCommandTable(program.port!, { host: PROGRAM_HOST });
    } catch (error) {
      log.warn(
        { err: error },
        "the program speaks RESP but is not redis-server (COMMAND failed): commands go to every copy as they are, with no Redis policy (no refusals of random commands, no time rewrites, blocking commands unsupported)",
      );
    }
  }
  let app: ProgramApp | null = null;
  const dir = join(config.dataDir, "app");
  const checkpointHooks =
    config.checkpoint === null
      ? {}
      : {
          checkpointFiles: () => runCheckpoint(config.checkpoint!, program, dir, config.id),
          restoreFiles: async (files: ReadonlyMap<string, Uint8Array>) => {
            log.info(
              { files: [...files.keys()] },
              "restarting the program's copy from a checkpoint",
            );
            await program.stop();
            await program.start(async (into) => {
              for (const [name, bytes] of files) await writeFile(join(into, name), bytes);
            });
            writeFileSync(pidFile, `${program.pid}\n`);
          },
        };
  return {
    create: (hooks) => {
      fatal = hooks.fatal;
      app = new ProgramApp({
        codec,
        host: PROGRAM_HOST,
        port: program.port!,
        redisTable: table,
        blockLeaseMs: config.blockLeaseMs,
        hooks: { ...hooks, ...checkpointHooks },
        describeProgram: () => program.describe(),
      });
      return app;
    },
    stop: async () => {
      fatal = () => {};
      (app as ProgramApp | null)?.close();
      await program.stop();
      rmSync(pidFile, { force: true });
    },
  };
}
