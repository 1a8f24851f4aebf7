/**
 * `npm run bench`: every microbenchmark in turn (the pure core, rings between threads, the peer
 * transport's frames and HMAC, the MAC candidates, the WAL, the RESP parser, the store), each
 * printing its own table of medians. `--quick` is the smoke run CI does: short runs, numbers not worth quoting.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const quick = process.argv.includes("--quick");
const benches: [file: string, quickArgs: string[]][] = [
  ["core.bench.ts", ["--quick"]],
  ["ring.bench.ts", ["--runs", "1", "--round-trips", "2000"]],
  ["transport.bench.ts", ["--quick"]],
  ["mac.bench.ts", ["--quick"]],
  ["wal.bench.ts", ["--quick"]],
  ["resp.bench.ts", ["--quick"]],
  ["kv.bench.ts", ["--quick"]],
];

let failed = 0;
for (const [file, quickArgs] of benches) {
  process.stdout.write(`\n== ${file}\n`);
  const result = spawnSync(
    process.execPath,
    [fileURLToPath(new URL(file, import.meta.url)), ...(quick ? quickArgs : [])],
    { stdio: "inherit" },
  );
  if (result.status !== 0) {
    process.stderr.write(`${file} failed with status ${result.status}\n`);
    failed++;
  }
}
process.exitCode = failed === 0 ? 0 : 1;
