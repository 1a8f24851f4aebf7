/** Node >= 22.12: reusePort for the connection workers, zlib.crc32 for the WAL. */
export const NODE_VERSION_MIN = "22.12";

/** null when this Node is new enough, else the one line to print. */
export function nodeVersionProblem(version = process.versions.node): string | null {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  const [needMajor = 0, needMinor = 0] = NODE_VERSION_MIN.split(".").map(Number);
  if (major > needMajor || (major === needMajor && minor >= needMinor)) return null;
  return `apus-smr needs Node >= ${NODE_VERSION_MIN}, this is Node ${version}. Run it through npm (npm start uses the Node 24 the project pins) or with npx node dist/replica.js.`;
}
