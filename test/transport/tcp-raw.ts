/**
 * A raw TCP socket that speaks the peer handshake (src/transport/tcp-handshake.ts) as replica
 * `from`, for tests that write frames, or anything else, on an authenticated connection.
 */
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import net from "node:net";
import { derivePeerKeys } from "../../src/transport/peer-keys.ts";
import {
  HANDSHAKE_NONCE_BYTES,
  HandshakeInitiator,
  NO_CHANNEL_BINDING,
} from "../../src/transport/tcp-handshake.ts";
import type { Node } from "./helpers.ts";

/** The handshake keys of `node`'s own secrets. */
export function handshakeKeys(node: Node): readonly Uint8Array[] {
  return derivePeerKeys(node.options.secrets, node.options.clusterId).handshake;
}

/** Connect to `node` and complete the handshake as replica `from`; rejects if it fails. */
export async function authenticatedSocket(
  node: Node,
  from: number,
  keys: readonly Uint8Array[] = handshakeKeys(node),
): Promise<net.Socket> {
  const initiator = new HandshakeInitiator({
    keys,
    clusterId: node.options.clusterId,
    id: from,
    peerCount: node.options.peers.length,
    nonce: randomBytes(HANDSHAKE_NONCE_BYTES),
    binding: NO_CHANNEL_BINDING,
    to: node.options.id,
  });
  const socket = net.createConnection(node.address);
  socket.on("error", () => {});
  await once(socket, "connect");
  socket.write(initiator.hello());
  await new Promise<void>((resolve, reject) => {
    const onClose = () => reject(new Error("closed during the handshake"));
    const onData = (chunk: Buffer) => {
      const result = initiator.receive(chunk);
      if (result.state === "pending") return;
      socket.off("data", onData);
      socket.off("close", onClose);
      if (result.state === "failed")
        return reject(new Error(`handshake failed: ${result.failure}`));
      socket.write(result.send!);
      resolve();
    };
    socket.once("close", onClose);
    socket.on("data", onData);
  });
  socket.resume(); // the node never sends after its REPLY; keep reading to notice its close
  return socket;
}
