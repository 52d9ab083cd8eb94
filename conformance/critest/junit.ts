// Reads the JUnit XML ginkgo writes (--ginkgo.junit-report) into spec results,
// and formats the pass/fail listing the runner prints.

export const SpecStatus = { passed: "passed", failed: "failed", skipped: "skipped", pending: "pending" } as const;
export type SpecStatus = (typeof SpecStatus)[keyof typeof SpecStatus];

export interface SpecResult {
  name: string;
  status: SpecStatus;
  /** Seconds. */
  time: number;
  /** First line of the failure (or skip) message. */
  message?: string;
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

export function decodeXml(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (whole, e: string) => {
    if (e.startsWith("#x")) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith("#")) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return ENTITIES[e] ?? whole;
  });
}

function attrs(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(/([A-Za-z_:][\w:.-]*)="([^"]*)"/g)) out[m[1]!] = decodeXml(m[2]!);
  return out;
}

/** The most telling part of a failure message: an rpc error line if there is one, else its first lines joined. */
export function messageLine(s: string | undefined): string | undefined {
  const lines = (s ?? "").split("\n").map((l) => l.trim()).filter((l) => l !== "");
  if (lines.length === 0) return undefined;
  const line = lines.find((l) => l.includes("rpc error:")) ?? lines.slice(0, 5).join(" ");
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

const STATUSES = new Set<string>(Object.values(SpecStatus));

/** Parses every <testcase>; the status attribute decides, else a <failure>/<error>/<skipped> child. */
export function parseJunit(xml: string): SpecResult[] {
  const results: SpecResult[] = [];
  for (const m of xml.matchAll(/<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const a = attrs(m[1]!);
    const body = m[3] ?? "";
    const failure = /<(failure|error)\b([^>]*?)(?:\/>|>([\s\S]*?)<\/\1>)/.exec(body);
    const skipped = /<skipped\b([^>]*?)\/?>/.exec(body);
    let status: SpecStatus;
    if (a["status"] && STATUSES.has(a["status"])) status = a["status"] as SpecStatus;
    else if (failure) status = SpecStatus.failed;
    else if (skipped) status = SpecStatus.skipped;
    else status = SpecStatus.passed;
    const message = failure
      ? messageLine(`${attrs(failure[2]!)["message"] ?? ""}\n${decodeXml(failure[3] ?? "")}`)
      : skipped ? messageLine(attrs(skipped[1]!)["message"]) : undefined;
    results.push({ name: a["name"] ?? "(unnamed)", status, time: Number(a["time"] ?? 0) || 0, ...(message ? { message } : {}) });
  }
  return results;
}

/** Spec names without ginkgo's node-type prefix ("[It] ", "[BeforeSuite]" stays as is). */
export const specName = (name: string) => name.replace(/^\[It\] /, "");

export interface Summary {
  passed: number;
  failed: number;
  skipped: number;
  total: number;
}

/** Counts specs ("[It] ..." cases; suite nodes like [BeforeSuite] are listed but not counted). */
export function summarize(results: readonly SpecResult[]): Summary {
  const specs = results.some((r) => r.name.startsWith("[It] ")) ? results.filter((r) => r.name.startsWith("[It] ")) : results;
  const count = (s: SpecStatus) => specs.filter((r) => r.status === s).length;
  return { passed: count(SpecStatus.passed), failed: count(SpecStatus.failed), skipped: count(SpecStatus.skipped) + count(SpecStatus.pending), total: specs.length };
}

/** A failure message with run-specific parts (temp paths, uuids, ids, addresses) replaced, for grouping. */
export function normalizeMessage(m: string): string {
  return m
    .replace(/\/tmp\/[^\s"':]+/g, "<tmp>")
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/g, "<uuid>")
    .replace(/\b[0-9a-f]{32,64}\b/g, "<id>")
    .replace(/\b127\.0\.0\.1:\d+\b/g, "127.0.0.1:<port>")
    .replace(/\b10\.\d+\.\d+\.\d+(:\d+)?\b/g, "<pod-ip>");
}

/** Failed specs grouped by normalized message, most common first. */
export function failureCauses(results: readonly SpecResult[]): { message: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const r of results) {
    if (r.status !== SpecStatus.failed) continue;
    const key = normalizeMessage(r.message ?? "(no message)");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([message, count]) => ({ message, count })).sort((a, b) => b.count - a.count || (a.message < b.message ? -1 : 1));
}

/** The listing printed after a run: passed specs, failed specs with their first message line, and counts. */
export function formatReport(results: readonly SpecResult[]): string {
  const out: string[] = [];
  const ran = results.filter((r) => r.status === SpecStatus.passed || r.status === SpecStatus.failed);
  const passed = ran.filter((r) => r.status === SpecStatus.passed);
  const failed = ran.filter((r) => r.status === SpecStatus.failed);
  out.push(`PASSED (${passed.length}):`);
  for (const r of passed) out.push(`  ok    ${specName(r.name)} (${r.time.toFixed(1)}s)`);
  out.push(`FAILED (${failed.length}):`);
  for (const r of failed) out.push(`  FAIL  ${specName(r.name)} (${r.time.toFixed(1)}s)${r.message ? `\n          ${r.message}` : ""}`);
  const causes = failureCauses(results);
  if (failed.length > 1 && causes.length > 0) {
    out.push("FAILURE CAUSES (specs per distinct message):");
    for (const c of causes.slice(0, 15)) out.push(`  ${String(c.count).padStart(4)}  ${c.message}`);
    if (causes.length > 15) out.push(`        ... and ${causes.length - 15} more`);
  }
  const s = summarize(results);
  out.push(`critest summary: ${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped, ${s.total} specs`);
  return out.join("\n") + "\n";
}
