import { describe, expect, it } from "vitest";
import { parseCliArgs } from "../../src/cli/cli-args.ts";
import {
  formatChange,
  formatConfiguration,
  memberRequestBody,
  parseMemberCommand,
} from "../../src/cli/member-report.ts";
import { parseMemberRequest } from "../../src/runtime/admin-server.ts";
import type { MembersView } from "../../src/runtime/thread-contracts.ts";

describe("apus member", () => {
  it("parses each subcommand into the POST /members body the admin server reads back", () => {
    const cases: [string[], Record<string, unknown>][] = [
      [["add", "4", "10.0.0.4:7400"], { op: "add", id: 4, address: "10.0.0.4:7400" }],
      [["promote", "4"], { op: "promote", id: 4 }],
      [["remove", "2"], { op: "remove", id: 2 }],
      [
        ["replace", "2", "5", "10.0.0.5:7400"],
        { op: "replace", id: 2, new_id: 5, address: "10.0.0.5:7400" },
      ],
    ];
    for (const [argv, body] of cases) {
      const command = parseMemberCommand(argv, null);
      expect(memberRequestBody(command)).toEqual(body);
      const request = parseMemberRequest(JSON.stringify(body), new URLSearchParams());
      expect(request).toMatchObject({ op: body.op, id: body.id });
    }
    expect(parseCliArgs(["member", "list", "--wait-ms", "5000"])).toMatchObject({
      command: "member",
      member: { op: "list", waitMs: 5000 },
    });
  });

  it("refuses bad arguments with what it expects", () => {
    expect(() => parseMemberCommand(["add", "4"], null)).toThrow(
      /member add ID HOST:PORT: expected 2 arguments/,
    );
    expect(() => parseMemberCommand(["add", "40", "h:1"], null)).toThrow(
      /ID must be a replica id, 1..31/,
    );
    expect(() => parseMemberCommand(["add", "4", "nowhere"], null)).toThrow(/peer address/);
    expect(() => parseMemberCommand(["replace", "2", "2", "h:1"], null)).toThrow(
      /NEW_ID must differ/,
    );
    expect(() => parseMemberCommand(["grow"], null)).toThrow(/unknown command "member grow"/);
    expect(() => parseCliArgs(["status", "--wait-ms", "1"])).toThrow(/--wait-ms belongs to member/);
    expect(parseMemberRequest("", new URLSearchParams("op=replace&id=2"))).toMatch(/new_id/);
    expect(parseMemberRequest("[1]", new URLSearchParams())).toMatch(/JSON object/);
    expect(parseMemberRequest("", new URLSearchParams("op=remove&id=0"))).toMatch(/id must be/);
  });

  it("prints the configuration and a change's steps", () => {
    const view: MembersView = {
      id: 1,
      role: "leader",
      leader: 1,
      leaderAddress: "h:1",
      commitIndex: 200,
      current: null,
      latest: {
        slot: 131,
        effectiveFrom: 195,
        members: [
          { id: 1, role: "voter", address: "h:1", chosenSlot: 200, lagSlots: 0 },
          { id: 4, role: "learner", address: "h:4", chosenSlot: 150, lagSlots: 50 },
        ],
      },
      changing: true,
      removed: false,
      promoteLagSlots: 128,
    };
    expect(formatConfiguration(view)).toBe(
      [
        "id  role     address  chosen  lag",
        "1*  voter    h:1      200     0",
        "4   learner  h:4      150     50",
        "1 voter, 1 learner; configuration of slot 131 (a change), chosen, governing from slot 195 (commit index 200); * leads",
      ].join("\n"),
    );
    expect(
      formatChange({
        outcome: "lagging",
        detail: "replica 4 trails",
        leader: 1,
        leaderAddress: "h:1",
        steps: [
          { step: "add", id: 4, ok: true, slot: 131, effectiveFrom: 195, elapsedMs: 12 },
          { step: "promote", id: 4, ok: false, elapsedMs: 0 },
        ],
        members: view,
        elapsedMs: 13,
      }),
    ).toBe(
      [
        "ok   add replica 4: chosen in slot 131, governing from slot 195 (12 ms)",
        "FAIL promote replica 4 (0 ms)",
        "lagging: replica 4 trails",
      ].join("\n"),
    );
  });
});
