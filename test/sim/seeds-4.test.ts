import { describe, it } from "vitest";
import { CHUNK, chunks, expectSeedsPass } from "./seed-range.ts";

// Seeds 3001..4000: cluster size and fault mix are drawn from each seed (see scenario.ts).
describe("simulator seeds 3001..4000", () => {
  it.each(chunks(3001, 1000))("seeds %i.. pass every invariant", (start) => {
    expectSeedsPass(start, CHUNK);
  });
});
