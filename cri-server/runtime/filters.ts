// Pure helpers shared by the list RPCs: label selectors and id-prefix matching.

/** True when every key/value of `selector` is present in `labels` (CRI's label_selector semantics). */
export function matchLabels(labels: Record<string, string>, selector: Record<string, string> | undefined): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

/** CRI list filters match ids by exact id or by unique prefix; an empty filter matches everything. */
export const matchIdPrefix = (id: string, filter: string | undefined) => !filter || id.startsWith(filter);

