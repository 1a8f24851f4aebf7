import { describe, expect, it } from "vitest";
import { withoutTimeout } from "../../../src/app/program/redis-blocking.ts";

const words = (...w: string[]) => w.map((x) => Buffer.from(x));
const text = (args: readonly Buffer[]) => args.map((a) => a.toString()).join(" ");

describe("blocking timeouts taken out of the copies' hands", () => {
  it.each([
    [["blpop", "a", "b", "5"], "blpop a b 0", 5000],
    [["brpoplpush", "s", "d", "0.5"], "brpoplpush s d 0", 500],
    [["blmpop", "2", "1", "k", "LEFT"], "blmpop 0 1 k LEFT", 2000],
    [["blpop", "a", "0"], "blpop a 0", 0],
    [["blpop", "a", "soon"], "blpop a soon", 0],
    [
      ["xread", "COUNT", "1", "BLOCK", "100", "STREAMS", "s", "$"],
      "xread COUNT 1 BLOCK 0 STREAMS s $",
      100,
    ],
    // A group and a consumer named "block" are not the BLOCK option.
    [
      ["xreadgroup", "GROUP", "block", "block", "BLOCK", "5000", "STREAMS", "s", ">"],
      "xreadgroup GROUP block block BLOCK 0 STREAMS s >",
      5000,
    ],
    [["xread", "STREAMS", "block", "7"], "xread STREAMS block 7", 0],
  ] as const)("%j → %s, %d ms at the origin", (input, sent, timeoutMs) => {
    const result = withoutTimeout(input[0], words(...input));
    expect(text(result.args)).toBe(sent);
    expect(result.timeoutMs).toBe(timeoutMs);
  });
});
