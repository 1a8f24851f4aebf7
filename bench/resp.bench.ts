/**
 * RESP request parsing: one and 16 pipelined `SET key:000123 <64 B value>` per chunk.
 * `node bench/resp.bench.ts`. No timing is asserted anywhere; read medians.
 */
import { Bench } from "tinybench";
import { RespParser } from "../src/app/resp-parser.ts";

const VALUE = "v".repeat(64);
const COMMAND = Buffer.from(
  `*3\r\n$3\r\nSET\r\n$10\r\nkey:000123\r\n$${VALUE.length}\r\n${VALUE}\r\n`,
  "latin1",
);
const PIPELINE_16 = Buffer.concat(Array.from({ length: 16 }, () => COMMAND));

function parseChunk(parser: RespParser, chunk: Buffer): number {
  parser.feed(chunk);
  let count = 0;
  while (parser.next() !== null) count++;
  return count;
}

const parser = new RespParser();
const bench = new Bench({ time: process.argv.includes("--quick") ? 50 : 500 });
bench
  .add("parse 1 SET (64 B value)", () => {
    if (parseChunk(parser, COMMAND) !== 1) throw new Error("expected 1 command");
  })
  .add("parse 16 pipelined SETs", () => {
    if (parseChunk(parser, PIPELINE_16) !== 16) throw new Error("expected 16 commands");
  })
  .add("parse 1 SET split in 2 chunks", () => {
    parser.feed(COMMAND.subarray(0, 40));
    parser.next();
    if (parseChunk(parser, COMMAND.subarray(40)) !== 1) throw new Error("expected 1 command");
  });

await bench.run();
console.table(bench.table());
