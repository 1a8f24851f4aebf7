import { describe, it } from "vitest";
import { CHUNK, expectSeedsPass } from "./seed-range.ts";

// Every tested size gets its own seeds, whatever the draw in the mixed ranges did.
describe("every cluster size", () => {
  it.each([1, 3, 5, 7, 9])("N=%i: 200 seeds with the mixed fault profile", (n) => {
    expectSeedsPass(100_000 + n * 1000, 2 * CHUNK, n);
  });
});
