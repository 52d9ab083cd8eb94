// Benchmark results: cells per runtime, the berth/containerd ratio, a text table and JSON.
import type { BenchmarkId, RuntimeName } from "./args.ts";

/** A measured value, a benchmark the runtime cannot run (n/a), or a failure. */
export type Cell = { value: number; samples?: number[] } | { na: string } | { error: string };

/** A runtime, or "reference": the same work done by a plain pipeline (pull: fetch, sha256, gunzip, tar -x). */
export type Column = RuntimeName | "reference";

export interface Row {
  bench: BenchmarkId;
  metric: string;
  unit: string;
  cells: Partial<Record<Column, Cell>>;
}

export interface RowJson extends Row { ratio: number | null; better: "lower" | "higher" | "n/a" }

/** Which direction is better for a unit: throughput up, everything timed or sized down. */
export const betterOf = (unit: string): RowJson["better"] => (unit.endsWith("/s") ? "higher" : unit === "count" ? "n/a" : "lower");

export const isValue = (c: Cell | undefined): c is { value: number; samples?: number[] } => !!c && "value" in c;

/** berth / containerd when both measured and containerd's value is not zero. */
export function ratioOf(row: Row): number | null {
  const b = row.cells.berth;
  const c = row.cells.containerd;
  if (!isValue(b) || !isValue(c) || c.value === 0 || !Number.isFinite(b.value) || !Number.isFinite(c.value)) return null;
  return b.value / c.value;
}

export class Results {
  readonly rows: Row[] = [];

  set(bench: BenchmarkId, metric: string, unit: string, runtime: Column, cell: Cell): void {
    let row = this.rows.find((r) => r.bench === bench && r.metric === metric);
    if (!row) {
      row = { bench, metric, unit, cells: {} };
      this.rows.push(row);
    }
    row.cells[runtime] = cell;
  }

  /** Fills every listed metric the runtime has no cell for yet with `cell` (n/a or error). */
  fill(bench: BenchmarkId, metrics: readonly (readonly [string, string])[], runtime: RuntimeName, cell: Cell): void {
    for (const [metric, unit] of metrics) {
      const row = this.rows.find((r) => r.bench === bench && r.metric === metric);
      if (!row?.cells[runtime]) this.set(bench, metric, unit, runtime, cell);
    }
  }

  toJson(): RowJson[] {
    return this.rows.map((r) => ({ ...r, ratio: ratioOf(r), better: betterOf(r.unit) }));
  }
}

const digits = (unit: string) => (unit === "s" ? 2 : unit === "count" ? 0 : 1);

/** min..max of a cell's samples (3 or more), the spread shown beside a median. */
export function spreadOf(cell: Cell | undefined): { min: number; max: number } | undefined {
  if (!isValue(cell) || !cell.samples || cell.samples.length < 3) return undefined;
  return { min: Math.min(...cell.samples), max: Math.max(...cell.samples) };
}

export function formatCell(cell: Cell | undefined, unit: string, width = 64): string {
  if (!cell) return "-";
  if (isValue(cell)) {
    if (!Number.isFinite(cell.value)) return "-";
    const d = digits(unit);
    const spread = spreadOf(cell);
    return `${cell.value.toFixed(d)} ${unit === "count" ? "" : unit}`.trim() + (spread ? ` [${spread.min.toFixed(d)}..${spread.max.toFixed(d)}]` : "");
  }
  const text = "na" in cell ? `n/a (${cell.na})` : `error: ${cell.error}`;
  const flat = text.replace(/\s+/g, " ");
  return flat.length > width ? flat.slice(0, width - 3) + "..." : flat;
}

/**
 * A plain-text table: benchmark, metric, one column per runtime, ratio, and a "reference"
 * column when some row has one. Values with 3 or more samples show [min..max] after them.
 */
export function renderTable(rows: readonly Row[], runtimes: readonly RuntimeName[]): string {
  const cols: Column[] = [...runtimes, ...(rows.some((r) => r.cells.reference) ? ["reference" as const] : [])];
  const header = ["benchmark", "metric", ...cols, ...(runtimes.length === 2 ? ["berth/containerd"] : [])];
  const lines = rows.map((r) => {
    const ratio = ratioOf(r);
    return [r.bench, r.metric, ...cols.map((rt) => formatCell(r.cells[rt], r.unit)), ...(runtimes.length === 2 ? [ratio === null ? "-" : `${ratio.toFixed(2)}x`] : [])];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cols: string[]) => cols.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  const note = [
    ...(runtimes.length === 2 ? ["", "berth/containerd below 1.00x favours berth (for MB/s, above 1.00x does); n/a: the runtime cannot run it yet"] : []),
    ...(cols.includes("reference") ? ["reference: the same layers through a plain fetch + sha256 + gunzip + tar -x pipeline in this harness (no fsync)"] : []),
    ...(rows.some((r) => Object.values(r.cells).some((c) => spreadOf(c))) ? ["[a..b]: min..max of the samples behind a median"] : []),
  ];
  return [fmt(header), widths.map((w) => "-".repeat(w)).join("  "), ...lines.map(fmt), ...note].join("\n") + "\n";
}
