/**
 * What `grow` and `shrink`, typed into `npm start`, ask of the running cluster: the leader's
 * admin port, and membership changes posted to it (POST /members, as `apus member` does).
 */
import type { MemberChangeOutcome, MembersView } from "../runtime/thread-contracts.ts";
import { type AdminAddress, getAdminJson } from "./admin-client.ts";
import { formatChange } from "./member-report.ts";

/** A change's steps each wait this long at the leader; the request a little longer. */
const STEP_WAIT_MS = 30_000;
const REQUEST_SLACK_MS = 5000;
/** A new learner is asked to be promoted this often until it caught up, at most this many times. */
const PROMOTE_RETRY_MS = 500;
const PROMOTE_TRIES_MAX = 120;

/** The leader among `admins`: its address and its /members; null when none answers as leader. */
export async function findLeader(
  admins: readonly AdminAddress[],
): Promise<{ admin: AdminAddress; view: MembersView } | null> {
  const answers = await Promise.all(
    admins.map(async (admin) => ({ admin, result: await getAdminJson(admin, "/members", 1000) })),
  );
  for (const { admin, result } of answers) {
    if (!result.ok) continue;
    const view = result.value as MembersView;
    if (view.role === "leader") return { admin, view };
  }
  return null;
}

/** POST /members to the leader; the outcome, or a line saying why there is none. */
export async function postChange(
  admin: AdminAddress,
  body: Record<string, unknown>,
): Promise<MemberChangeOutcome | string> {
  const steps = body.op === "replace" ? 4 : 1;
  const result = await getAdminJson(admin, "/members", steps * STEP_WAIT_MS + REQUEST_SLACK_MS, {
    method: "POST",
    anyStatus: true,
    body: JSON.stringify({ ...body, wait_ms: STEP_WAIT_MS }),
  });
  return result.ok ? (result.value as MemberChangeOutcome) : result.reason;
}

/**
 * Add replica `id` (already started with --join) as a learner, then promote it once it caught
 * up. Each line of progress goes to `say`. True when it is a voter.
 */
export async function addAndPromote(
  admins: () => readonly AdminAddress[],
  id: number,
  address: string,
  say: (line: string) => void,
): Promise<boolean> {
  const leader = await findLeader(admins());
  if (leader === null) {
    say(
      `grow: no replica answers as leader; replica ${id} runs but is no member (try grow again later)`,
    );
    return false;
  }
  const added = await postChange(leader.admin, { op: "add", id, address });
  if (typeof added === "string" || added.outcome !== "done") {
    say(`grow: add replica ${id}: ${typeof added === "string" ? added : formatChange(added)}`);
    return false;
  }
  say(`grow: ${formatChange(added).split("\n")[0]!.trim()}; waiting for it to catch up`);
  for (let tries = 0; tries < PROMOTE_TRIES_MAX; tries++) {
    const now = (await findLeader(admins())) ?? leader;
    const promoted = await postChange(now.admin, { op: "promote", id });
    if (typeof promoted !== "string" && promoted.outcome === "done") {
      say(`grow: ${formatChange(promoted).split("\n")[0]!.trim()}: replica ${id} votes`);
      return true;
    }
    if (
      typeof promoted !== "string" &&
      promoted.outcome !== "lagging" &&
      promoted.outcome !== "busy"
    ) {
      say(`grow: promote replica ${id}: ${formatChange(promoted)}`);
      return false;
    }
    await new Promise((resolve) => setTimeout(resolve, PROMOTE_RETRY_MS));
  }
  say(
    `grow: replica ${id} did not catch up; it stays a learner (node dist/cli.js member promote ${id})`,
  );
  return false;
}

/** Remove replica `id` from the configuration; true once the removal governs. */
export async function removeMember(
  admins: readonly AdminAddress[],
  id: number,
  say: (line: string) => void,
): Promise<boolean> {
  const leader = await findLeader(admins);
  if (leader === null) {
    say("shrink: no replica answers as leader; try again later");
    return false;
  }
  const removed = await postChange(leader.admin, { op: "remove", id });
  if (typeof removed === "string" || removed.outcome !== "done") {
    say(
      `shrink: remove replica ${id}: ${typeof removed === "string" ? removed : formatChange(removed)}`,
    );
    return false;
  }
  say(`shrink: ${formatChange(removed).split("\n")[0]!.trim()}`);
  return true;
}
