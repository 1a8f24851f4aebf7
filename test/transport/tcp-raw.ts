/**
 * A raw TCP socket that speaks the peer handshake (src/transport/tcp-handshake.ts) as replica
 * `from`, for tests that write frames, or anything else, on an authenticated connection, or that
 * stop part way through the handshake.
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

/**
 * The incarnation a raw peer proves unless told: older than any real transport's (helpers.ts
 * numbers them from Date.now()), so a node that has seen none of that replica's takes it, and
 * frames of any real incarnation after it.
 */
export const RAW_INCARNATION = 1;

export interface RawOptions {
  readonly keys?: readonly Uint8Array[];
  /** The incarnation the PROOF carries; RAW_INCARNATION by default. */
  readonly incarnation?: number;
  /** The local address to connect from (any of 127/8 on Linux loopback); default any. */
  readonly localAddress?: string;
}

/** A handshake that got its REPLY and has not sent its PROOF yet. */
export interface RepliedHandshake {
  readonly socket: net.Socket;
  /** Send the PROOF: the connection is then authenticated as the replica of the HELLO. */
  prove(): void;
}

/** Connect to `node`, say HELLO as replica `from` and wait for the REPLY; rejects if it fails. */
export async function repliedHandshake(
  node: Node,
  from: number,
  options: RawOptions = {},
): Promise<RepliedHandshake> {
  const initiator = new HandshakeInitiator({
    keys: options.keys ?? handshakeKeys(node),
    clusterId: node.options.clusterId,
    id: from,
    peerCount: node.options.peers.length,
    nonce: randomBytes(HANDSHAKE_NONCE_BYTES),
    binding: NO_CHANNEL_BINDING,
    incarnation: options.incarnation ?? RAW_INCARNATION,
    to: node.options.id,
  });
  const socket = net.createConnection({
    ...node.address,
    ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
  });
  socket.on("error", () => {});
  await once(socket, "connect");
  socket.write(initiator.hello());
  const proof = await new Promise<Buffer>((resolve, reject) => {
    const onClose = () => reject(new Error("closed during the handshake"));
    const onData = (chunk: Buffer) => {
      const result = initiator.receive(chunk);
      if (result.state === "pending") return;
      socket.off("data", onData);
      socket.off("close", onClose);
      if (result.state === "failed") {
        reject(new Error(`handshake failed: ${result.failure}`));
        return;
      }
      resolve(result.send!);
    };
    socket.once("close", onClose);
    socket.on("data", onData);
  });
  socket.resume(); // the node never sends after its REPLY; keep reading to notice its close
  return { socket, prove: () => socket.write(proof) };
}

/** Connect to `node` and complete the handshake as replica `from`; rejects if it fails. */
export async function authenticatedSocket(
  node: Node,
  from: number,
  keys: readonly Uint8Array[] = handshakeKeys(node),
): Promise<net.Socket> {
  const replied = await repliedHandshake(node, from, { keys });
  replied.prove();
  return replied.socket;
}
