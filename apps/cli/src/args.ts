import { parseArgs } from 'node:util';

/** Thrown for a bad command line: the message names the flag and what it allows. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** One flag of a command: its kind, default, allowed values or range, and help text. */
export type FlagSpec =
  | { type: 'string'; help: string; default?: string; choices?: readonly string[]; multiple?: false }
  | { type: 'int'; help: string; default?: number; min?: number; max?: number }
  | { type: 'number'; help: string; default?: number; min?: number; max?: number }
  | { type: 'boolean'; help: string; default?: boolean };

export type FlagSpecs = Record<string, FlagSpec>;

type ValueOf<S extends FlagSpec> = S extends { type: 'boolean' }
  ? boolean
  : S extends { type: 'int' | 'number' }
    ? number
    : string;

/** Parsed flags: every flag with a default is defined; the others may be undefined. */
export type Flags<S extends FlagSpecs> = {
  [K in keyof S]: S[K] extends { default: unknown } ? ValueOf<S[K]> : ValueOf<S[K]> | undefined;
};

/**
 * `--samples -1` as `--samples=-1`: a numeric flag followed by a negative number takes it as its
 * value (node's parseArgs would call it an ambiguous option), so the range check can name it.
 */
function joinNegativeValues(argv: string[], specs: FlagSpecs): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const spec = a.startsWith('--') && !a.includes('=') ? specs[a.slice(2)] : undefined;
    const next = argv[i + 1];
    if (
      spec &&
      (spec.type === 'int' || spec.type === 'number') &&
      next !== undefined &&
      /^-(\d|\.|Infinity$|NaN$)/.test(next)
    ) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/**
 * Parses `argv` against `specs` strictly: unknown flags, missing values, numbers out of range
 * and values outside `choices` are UsageErrors naming the flag and the allowed values.
 */
export function parseFlags<S extends FlagSpecs>(command: string, argv: string[], specs: S): Flags<S> {
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const [name, spec] of Object.entries(specs))
    options[name] = { type: spec.type === 'boolean' ? 'boolean' : 'string' };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: joinNegativeValues(argv, specs),
      options,
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    const known = Object.keys(specs)
      .map((k) => `--${k}`)
      .join(', ');
    throw new UsageError(`qbnn ${command}: ${(err as Error).message}. Flags of '${command}': ${known}`);
  }
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const raw = parsed.values[name];
    if (raw === undefined) {
      out[name] = spec.default;
      continue;
    }
    if (spec.type === 'boolean') {
      out[name] = raw;
      continue;
    }
    const text = String(raw);
    if (spec.type === 'string') {
      if (spec.choices && !spec.choices.includes(text)) {
        throw new UsageError(
          `qbnn ${command}: --${name} must be one of ${spec.choices.join(', ')}; got '${text}'`,
        );
      }
      out[name] = text;
      continue;
    }
    const value = Number(text);
    const isInt = spec.type === 'int';
    if (text.trim() === '' || !Number.isFinite(value) || (isInt && !Number.isInteger(value))) {
      throw new UsageError(
        `qbnn ${command}: --${name} must be ${isInt ? 'an integer' : 'a number'}; got '${text}'`,
      );
    }
    if ((spec.min !== undefined && value < spec.min) || (spec.max !== undefined && value > spec.max)) {
      throw new UsageError(
        `qbnn ${command}: --${name} must be in [${spec.min ?? '-inf'}, ${spec.max ?? 'inf'}]; got ${value}`,
      );
    }
    out[name] = value;
  }
  return out as Flags<S>;
}

/** Help text of a command's flags. */
export function flagHelp(specs: FlagSpecs): string {
  return Object.entries(specs)
    .map(([name, s]) => {
      const extra = [
        'choices' in s && s.choices ? `one of ${s.choices.join('|')}` : '',
        'min' in s && s.min !== undefined ? `min ${s.min}` : '',
        'max' in s && s.max !== undefined ? `max ${s.max}` : '',
        s.default !== undefined ? `default ${s.default}` : '',
      ]
        .filter(Boolean)
        .join(', ');
      return `  --${name.padEnd(14)} ${s.help}${extra ? ` (${extra})` : ''}`;
    })
    .join('\n');
}
