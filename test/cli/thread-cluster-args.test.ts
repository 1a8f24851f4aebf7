import { describe, expect, it } from "vitest";
import { parseThreadClusterArgs } from "../../src/cli/thread-cluster-args.ts";
import { parseReplicaArgs } from "../../src/runtime/config.ts";

describe("--transport shm", () => {
  it("is refused by a lone replica, naming the thread cluster", () => {
    expect(() => parseReplicaArgs(["--id", "1", "--peers", "a:1", "--transport", "shm"])).toThrow(
      /--transport: shm joins replicas that run as threads of one process.*thread-cluster/,
    );
  });

  it("gives thread-cluster replicas consecutive ports, shm peers and memory durability", () => {
    const parsed = parseThreadClusterArgs(["--replicas", "3", "--", "--window", "8"]);
    expect(parsed.action).toBe("run");
    if (parsed.action !== "run") return;
    const { configs } = parsed.plan;
    expect(configs.map((c) => [c.id, c.clientPort, c.adminPort, c.transport])).toEqual([
      [1, 7101, 8101, "shm"],
      [2, 7102, 8102, "shm"],
      [3, 7103, 8103, "shm"],
    ]);
    expect(configs.every((c) => c.durability === "memory" && c.window === 8)).toBe(true);
    expect(configs[0]!.peers.map((p) => `${p!.host}:${p!.port}`)).toEqual([
      "shm:1",
      "shm:2",
      "shm:3",
    ]);
  });

  it("refuses replica flags the cluster sets itself", () => {
    expect(() => parseThreadClusterArgs(["--replicas", "3", "--", "--client-port", "1"])).toThrow(
      /--client-port after --/,
    );
  });
});
