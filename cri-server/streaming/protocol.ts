// Kubernetes streaming protocol constants shared by the SPDY and WebSocket
// paths (k8s.io/apimachinery remotecommand and portforward).

export const STREAM_PROTOCOL_HEADER = "X-Stream-Protocol-Version";
export const ACCEPTED_PROTOCOLS_HEADER = "X-Accepted-Stream-Protocol-Versions";

export const RemoteCommandProtocol = {
  V4: "v4.channel.k8s.io",
  V3: "v3.channel.k8s.io",
  V2: "v2.channel.k8s.io",
  V1: "channel.k8s.io",
} as const;
export type RemoteCommandProtocol = (typeof RemoteCommandProtocol)[keyof typeof RemoteCommandProtocol];

/** Exec/attach versions, newest first (server preference). */
export const REMOTE_COMMAND_PROTOCOLS: readonly string[] = [
  RemoteCommandProtocol.V4, RemoteCommandProtocol.V3, RemoteCommandProtocol.V2, RemoteCommandProtocol.V1,
];

export const PORT_FORWARD_PROTOCOL = "portforward.k8s.io";
export const PORT_FORWARD_PROTOCOLS: readonly string[] = [PORT_FORWARD_PROTOCOL];

/** SPDY stream types (`streamType` header). */
export const StreamType = {
  error: "error",
  stdin: "stdin",
  stdout: "stdout",
  stderr: "stderr",
  resize: "resize",
  data: "data",
} as const;

export const STREAM_TYPE_HEADER = "streamtype";
export const PORT_HEADER = "port";
export const REQUEST_ID_HEADER = "requestid";

/** WebSocket channel numbers for exec/attach. */
export const WsChannel = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4, close: 255 } as const;

export const WsProtocol = {
  V5: "v5.channel.k8s.io",
  V4: "v4.channel.k8s.io",
  V4Base64: "v4.base64.channel.k8s.io",
  V1: "channel.k8s.io",
  V1Base64: "base64.channel.k8s.io",
  PortForward: "portforward.k8s.io",
} as const;

/** Exec/attach WebSocket subprotocols, server preference first. */
export const WS_REMOTE_COMMAND_PROTOCOLS: readonly string[] = [
  WsProtocol.V5, WsProtocol.V4, WsProtocol.V4Base64, WsProtocol.V1, WsProtocol.V1Base64,
];
/** Port-forward WebSocket subprotocols. */
export const WS_PORT_FORWARD_PROTOCOLS: readonly string[] = [
  WsProtocol.PortForward, WsProtocol.V4, WsProtocol.V4Base64, WsProtocol.V1, WsProtocol.V1Base64,
];

export const isBase64Protocol = (p: string) => p.includes("base64.");

/** Picks the first client protocol the server supports; "" when the client offered none. */
export function negotiate(client: readonly string[], server: readonly string[]): string | undefined {
  if (client.length === 0) return "";
  for (const c of client) if (server.includes(c)) return c;
  return undefined;
}

/** Splits repeated and comma-joined header values. */
export function headerList(values: string | string[] | undefined): string[] {
  if (values === undefined) return [];
  const all = Array.isArray(values) ? values : [values];
  return all.flatMap((v) => v.split(",")).map((v) => v.trim()).filter((v) => v.length > 0);
}
