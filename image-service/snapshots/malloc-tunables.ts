// glibc malloc settings for the pull process and the unpack processes, appended to the
// GLIBC_TUNABLES they inherit from berthd (glibc takes a tunable's last setting, so these win).
//
// berthd pins malloc's mmap threshold at 128 KiB (bin/berthd) to keep its own idle RSS low: every
// block of 128 KiB and more is mmapped and unmapped again when freed. A pull's processes allocate
// such blocks all the time (zlib's 256 KiB output chunks, batch buffers, ArrayBuffers), so every
// one came back as fresh pages, each a page fault, and the heap's trimming returned the rest. On a
// machine where a first touch of a page is dear that is most of a pull's system time: on the PVM
// guest of 2 Dec 2026 a first touch cost 15-20 us a page (python, 256 MiB mmapped and written,
// against 0.05-0.10 us for a second touch), and eight alternating cold pulls of the bench image
// took 1.50-1.99 s (median 1.85 s, 0.67-0.96 s of system CPU) with these settings against
// 1.77-2.47 s (median 2.15 s, 0.90-1.26 s) with the pin, lower in each pair, at the same peak RSS
// (236-265 against 235-262 MB). The processes end within IDLE_MS of their last pull, so what the
// heap keeps goes back to the system then.
//   mmap_threshold 32 MiB: blocks below it come from the heap, whose freed space is reused;
//   trim_threshold 256 MiB and top_pad 16 MiB: the heap's top is not given back during a pull.
export const PULL_MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456:glibc.malloc.top_pad=16777216";

/** `env` with PULL_MALLOC_TUNABLES appended to its GLIBC_TUNABLES, once (an inherited one already ends with them). */
export function withPullMallocTunables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const had = env["GLIBC_TUNABLES"] ?? "";
  if (had === PULL_MALLOC_TUNABLES || had.endsWith(`:${PULL_MALLOC_TUNABLES}`)) return env;
  return { ...env, GLIBC_TUNABLES: had ? `${had}:${PULL_MALLOC_TUNABLES}` : PULL_MALLOC_TUNABLES };
}
