// Parsers for the few file formats cgroup controllers use.

/** "key value" per line (memory.stat, cpu.stat, memory.events...). Non-numeric values are skipped. */
export function parseFlatKeyed(text: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of text.split("\n")) {
    const parts = line.trim().split(/\s+/);
    if (parts.length !== 2) continue;
    const v = toBigInt(parts[1]!);
    if (v !== undefined) out.set(parts[0]!, v);
  }
  return out;
}

/** A single number ("max" and empty mean unlimited/unknown and give undefined). */
export function parseSingle(text: string): bigint | undefined {
  return toBigInt(text.trim());
}

function toBigInt(s: string): bigint | undefined {
  if (!/^-?\d+$/.test(s)) return undefined;
  const v = BigInt(s);
  return v < 0n ? 0n : v;
}

/**
 * cgroup v1 reports "no limit" as a huge page-aligned number
 * (9223372036854771712 on 4 KiB pages); anything at or above 2^62 is unlimited.
 */
export const UNLIMITED_THRESHOLD = 1n << 62n;
export const limitOrUndefined = (v: bigint | undefined): bigint | undefined =>
  v === undefined || v >= UNLIMITED_THRESHOLD ? undefined : v;

export const floorZero = (v: bigint): bigint => (v < 0n ? 0n : v);

/** Page-size names used in hugetlb file names, e.g. "hugetlb.2MB.current" -> "2MB". */
export function hugetlbPageSize(fileName: string, suffix: string): string | undefined {
  const m = /^hugetlb\.([0-9]+[KMG]B)\.(.+)$/.exec(fileName);
  return m && m[2] === suffix ? m[1] : undefined;
}
