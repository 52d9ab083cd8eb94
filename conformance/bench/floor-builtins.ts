/**
 * The Node.js built-ins berthd's bundle (dist/cri-server/main.js and the chunks it imports
 * statically) takes at load. floor.itest.ts checks this list against a bundle it builds.
 */
export const FLOOR_BUILTINS = [
  "node:child_process", "node:events", "node:fs", "node:fs/promises", "node:net",
  "node:os", "node:path", "node:stream", "node:timers/promises", "node:url",
] as const;
