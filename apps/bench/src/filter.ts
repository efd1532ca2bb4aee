// `--filter key=value,key=value|value`: which cells of a suite to run, so one cell can be timed
// quickly. Keys are the cells' parameters (model, posterior, impl, batch, L, mode, peer, ...); a
// key a cell does not have does not constrain it. A value matches equal text, or one of the
// '-'-separated words of the cell's value (impl=native matches int8-native).

/** Allowed values by key. */
export type CaseFilter = ReadonlyMap<string, readonly string[]>;

/** Parses `key=v1|v2,key2=v3`; throws an Error naming the bad part. */
export function parseFilter(text: string): CaseFilter {
  const filter = new Map<string, string[]>();
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim();
    const values = part
      .slice(eq + 1)
      .split('|')
      .map((v) => v.trim())
      .filter((v) => v !== '');
    if (eq < 1 || values.length === 0) throw new Error(`bad filter '${part}': expected key=value[|value...]`);
    filter.set(key, [...(filter.get(key) ?? []), ...values]);
  }
  return filter;
}

function matches(value: string, wanted: string): boolean {
  return value === wanted || value.split('-').includes(wanted);
}

/** Whether a cell with these parameters passes the filter (keys it lacks are not checked). */
export function accepts(filter: CaseFilter, params: Readonly<Record<string, string | number>>): boolean {
  for (const [key, wanted] of filter) {
    const v = params[key];
    if (v === undefined) continue;
    if (!wanted.some((w) => matches(String(v), w))) return false;
  }
  return true;
}

/** The filter as it was written (for reports). */
export function formatFilter(filter: CaseFilter): string {
  return [...filter].map(([k, v]) => `${k}=${v.join('|')}`).join(',');
}

/**
 * What a filter did over a run: `accepts` as above, recording the keys the cells had and how many
 * cells passed; `unused()` the keys no cell had (a misspelt key, `modle=resnet18`, constrained
 * nothing: the whole suite ran) and `selected` the cells that passed.
 */
export function trackFilter(filter: CaseFilter): {
  accepts(params: Readonly<Record<string, string | number>>): boolean;
  unused(): string[];
  readonly selected: number;
} {
  const seen = new Set<string>();
  let selected = 0;
  return {
    accepts(params) {
      for (const key of Object.keys(params)) seen.add(key);
      const ok = accepts(filter, params);
      if (ok) selected++;
      return ok;
    },
    unused: () => [...filter.keys()].filter((k) => !seen.has(k)),
    get selected() {
      return selected;
    },
  };
}
