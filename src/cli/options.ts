import yargs, { type Options } from 'yargs';
import { MAX_TIMER_MS } from '../limits.js';
import { unknownArgument } from './args.js';

/**
 * One option table per bin: yargs tokenises the command line and renders `--help`; the values, the
 * PARITY_* environment and every check are ours, so a message always shows what the user typed
 * (yargs' number type turns `abc` into NaN, and its booleans turn PARITY_REPAIR=1 into false).
 */
export type IntSpec = { kind: 'int'; describe: string; default?: number; min: number; max: number };
export type StrSpec = { kind: 'str'; describe: string; default?: string };
export type BoolSpec = { kind: 'bool'; describe: string; default: boolean };
export type Spec = IntSpec | StrSpec | BoolSpec;
export type Specs = Record<string, Spec>;

export type Values<S extends Specs> = {
  [K in keyof S]: S[K] extends IntSpec
    ? S[K]['default'] extends number
      ? number
      : number | undefined
    : S[K] extends BoolSpec
      ? boolean
      : S[K]['default'] extends string
        ? string
        : string | undefined;
};

export const int = (describe: string, value: number, min = 1, max = Number.MAX_SAFE_INTEGER) =>
  ({ kind: 'int', describe, default: value, min, max }) as const;

/** A duration for a Node timer: past MAX_TIMER_MS, setTimeout fires after 1 ms instead. */
export const ms = (describe: string, value: number, min = 1) =>
  int(describe, value, min, MAX_TIMER_MS);

export const str = (describe: string, value: string) =>
  ({ kind: 'str', describe, default: value }) as const;

/** A string with no default: undefined unless given. */
export const optionalStr = (describe: string) => ({ kind: 'str', describe }) as const;

export const bool = (describe: string) => ({ kind: 'bool', describe, default: false }) as const;

export const envName = (name: string) => `PARITY_${name.toUpperCase().replace(/-/g, '_')}`;

export type Parsed<S extends Specs> =
  | { kind: 'run'; values: Values<S>; given: Set<string> }
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'error'; message: string };

/** What the user typed, quoted only when it would otherwise be invisible. */
const shown = (raw: string) => (raw.trim() === raw && raw !== '' ? raw : JSON.stringify(raw));

/** 1/0/true/false (any case) as a boolean; anything else is null. */
export function parseBool(raw: string): boolean | null {
  const v = raw.toLowerCase();
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  return null;
}

/** `raw` as `spec` says, or the reason it is not; `source` is how it was written ('--port '). */
function convert(spec: Spec, raw: string, source: string): { value: unknown } | { error: string } {
  const at = `${source}${shown(raw)}`;
  if (spec.kind === 'str') return { value: raw };
  if (spec.kind === 'bool') {
    const value = parseBool(raw);
    return value === null ? { error: `invalid ${at}: use 1, 0, true or false` } : { value };
  }
  // Decimal digits only: Number() would also take '', ' 7', '0x1f', '1e3' and '7.0'.
  const value = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (Number.isSafeInteger(value) && value >= spec.min && value <= spec.max) return { value };
  return { error: `invalid ${at}: use an integer ${spec.min}-${spec.max}` };
}

function parser<S extends Specs>(argv: string[], specs: S, name: string, usage: string) {
  const options: Record<string, Options> = {};
  for (const [key, spec] of Object.entries(specs)) {
    // No yargs defaults: an absent option must stay undefined so PARITY_* can fill it.
    const defaultDescription = spec.default === undefined ? undefined : String(spec.default);
    options[key] =
      spec.kind === 'bool'
        ? { type: 'boolean', describe: spec.describe, defaultDescription }
        : {
            ...(spec.kind === 'str' ? { type: 'string' } : {}),
            requiresArg: true,
            describe: spec.describe,
            ...(defaultDescription === undefined ? {} : { defaultDescription }),
          };
  }
  return yargs(argv)
    .scriptName(name)
    .usage(usage)
    .version(false) // ours below: yargs' would look for package.json from the working directory
    .options(options)
    .option('version', { type: 'boolean', describe: 'Show the version' })
    .parserConfiguration({
      'parse-numbers': false,
      'parse-positional-numbers': false,
      'duplicate-arguments-array': true,
    })
    .help()
    .alias('help', 'h')
    .exitProcess(false)
    .fail((message, err) => {
      throw err ?? new Error(message);
    });
}

/**
 * Parses `argv` against `specs`, filling what the command line leaves out from PARITY_<NAME> in
 * `env`, then from the defaults. Nothing is printed except yargs' own `--help`.
 */
export async function parseOptions<S extends Specs>(
  argv: string[],
  env: NodeJS.ProcessEnv,
  specs: S,
  meta: { name: string; usage: string; epilogue?: string },
): Promise<Parsed<S> & { help(): Promise<string> }> {
  const y = parser(argv, specs, meta.name, meta.usage);
  if (meta.epilogue !== undefined) y.epilogue(meta.epilogue);
  const help = () => y.getHelp();
  const result = await parseWith(y, argv, env, specs).catch(
    (err: unknown) => ({ kind: 'error', message: (err as Error).message }) as const,
  );
  return { ...result, help };
}

async function parseWith<S extends Specs>(
  y: ReturnType<typeof parser>,
  argv: string[],
  env: NodeJS.ProcessEnv,
  specs: S,
): Promise<Parsed<S>> {
  const args = (await y.parseAsync()) as Record<string, unknown> & { _: unknown[] };
  const end = argv.includes('--') ? argv.indexOf('--') : argv.length;
  for (const key of [...Object.keys(specs), 'help', 'version']) {
    // yargs collects a repeated value option into an array, but lets the last boolean win.
    const flag = new RegExp(`^--(?:no-)?${key}(?:=|$)`);
    const repeated = argv.slice(0, end).filter((a) => flag.test(a)).length > 1;
    if (repeated || Array.isArray(args[key])) {
      return { kind: 'error', message: `--${key} given more than once` };
    }
  }
  if (args.help === true) return { kind: 'help' };
  if (args.version === true) return { kind: 'version' };
  const unknown = unknownArgument(argv, [...Object.keys(specs), 'version', 'h'], args._);
  if (unknown !== null) return { kind: 'error', message: `Unknown argument: ${unknown}` };
  const values: Record<string, unknown> = {};
  const given = new Set<string>();
  for (const [key, spec] of Object.entries(specs)) {
    let raw = args[key];
    let source = `--${key} `;
    if (spec.kind === 'bool') {
      // yargs reads `--repair=1` as false; take the text after `=` ourselves.
      const written = argv.find((a) => a.startsWith(`--${key}=`) || a.startsWith(`--no-${key}=`));
      if (written !== undefined) {
        const text = written.slice(written.indexOf('=') + 1);
        const parsed = convert(spec, text, written.slice(0, written.indexOf('=') + 1));
        if ('error' in parsed) return { kind: 'error', message: parsed.error };
        raw = written.startsWith('--no-') ? !parsed.value : parsed.value;
      }
    }
    if (raw === undefined) {
      const fromEnv = env[envName(key)];
      if (fromEnv !== undefined && fromEnv !== '') {
        raw = fromEnv;
        source = `${envName(key)}=`;
      }
    }
    if (raw === undefined) {
      values[key] = spec.default;
      continue;
    }
    given.add(key);
    if (typeof raw === 'boolean') {
      values[key] = raw;
      continue;
    }
    const parsed = convert(spec, String(raw), source);
    if ('error' in parsed) return { kind: 'error', message: parsed.error };
    values[key] = parsed.value;
  }
  return { kind: 'run', values: values as Values<S>, given };
}
