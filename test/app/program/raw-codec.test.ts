/**
 * The raw codec of transparent mode: requests are the chunks that arrived (split at
 * chunkBytesMax), replies are the chunks that arrived; nothing is framed, nothing is lost or
 * reordered.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type CutReply, type CutRequest, isCodecError } from "../../../src/app/program/codec.ts";
import { RAW_CHUNK_BYTES_MAX, rawCodec } from "../../../src/app/program/raw-codec.ts";

const latin1 = (text: string): Buffer => Buffer.from(text, "latin1");

describe("raw codec", () => {
  it("says it cannot frame replies", () => {
    const codec = rawCodec();
    expect(codec.name).toBe("raw");
    expect(codec.framesReplies).toBe(false);
  });

  it("cuts each chunk into requests of at most chunkBytesMax, in order, losing nothing", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 100 }), { maxLength: 10 }),
        fc.integer({ min: 1, max: 40 }),
        fc.boolean(),
        (chunks, chunkBytesMax, drainEachPush) => {
          const cutter = rawCodec({ chunkBytesMax }).requests();
          const requests: CutRequest[] = [];
          const drain = (): void => {
            for (let r = cutter.next(); r !== null; r = cutter.next()) {
              expect(isCodecError(r)).toBe(false);
              requests.push(r as CutRequest);
            }
          };
          for (const chunk of chunks) {
            cutter.push(chunk);
            if (drainEachPush) drain();
          }
          drain();
          expect(cutter.bufferedBytes).toBe(0);
          expect(Buffer.concat(requests.map((r) => r.bytes))).toEqual(Buffer.concat(chunks));
          const expected = chunks
            .filter((c) => c.length > 0)
            .flatMap((c) =>
              Array.from({ length: Math.ceil(c.length / chunkBytesMax) }, (_, i) => i),
            ).length;
          expect(requests).toHaveLength(expected);
          for (const r of requests) {
            expect(r.bytes.length).toBeGreaterThan(0);
            expect(r.bytes.length).toBeLessThanOrEqual(chunkBytesMax);
            expect([r.name, r.replies, r.replyFrame]).toEqual(["raw", 0, "raw"]);
          }
        },
      ),
    );
  });

  it("splits a chunk above the default RAW_CHUNK_BYTES_MAX", () => {
    const cutter = rawCodec().requests();
    cutter.push(Buffer.alloc(RAW_CHUNK_BYTES_MAX * 2 + 1, 7));
    expect(cutter.bufferedBytes).toBe(RAW_CHUNK_BYTES_MAX * 2 + 1);
    const sizes: number[] = [];
    for (let r = cutter.next(); r !== null; r = cutter.next())
      sizes.push((r as CutRequest).bytes.length);
    expect(sizes).toEqual([RAW_CHUNK_BYTES_MAX, RAW_CHUNK_BYTES_MAX, 1]);
  });

  it("yields each reply chunk as it arrived: a reply split across reads counts as several", () => {
    const codec = rawCodec();
    const requests = codec.requests();
    requests.push(latin1("GET / HTTP/1.0\r\n\r\n"));
    const request = requests.next() as CutRequest;
    const replies = codec.replies();
    replies.expect(request);
    replies.push(latin1("HTTP/1.0 200 OK\r\n"));
    replies.push(latin1(""));
    replies.push(latin1("\r\nbody"));
    const cut: string[] = [];
    for (let r = replies.next(); r !== null; r = replies.next()) {
      expect((r as CutReply).push).toBe(false);
      cut.push(Buffer.from((r as CutReply).bytes).toString("latin1"));
    }
    expect(cut).toEqual(["HTTP/1.0 200 OK\r\n", "\r\nbody"]);
    expect(replies.bufferedBytes).toBe(0);
  });
});
