// Streaming limits that RPC handlers check before a URL is issued; kept apart from server.ts so
// that checking them does not load the streaming server and its WebSocket library.

/** At most this many ports per PortForward request or WebSocket port-forward URL. */
export const MAX_WS_PORTS = 64;
