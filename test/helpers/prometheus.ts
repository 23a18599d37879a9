// A strict parser of the Prometheus text exposition format (version 0.0.4), for tests that
// scrape a replica's /metrics: it refuses anything a Prometheus server would refuse, and more
// (a sample with no # TYPE, a family split in two, a histogram whose buckets do not add up),
// so a test that reads a value also checks the page it came from. prom-client writes this
// format but has no parser of its own.
// Spec: https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  /** The sample's own name: for a histogram, FAMILY_bucket, FAMILY_sum or FAMILY_count. */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: MetricType;
  help: string | undefined;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export class ExpositionError extends Error {
  constructor(line: number, what: string) {
    super(`line ${line}: ${what}`);
  }
}

/** The families of a scrape, in order. Throws ExpositionError on the first thing that is wrong. */
export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const closed = new Set<string>();
  const seen = new Set<string>();
  let current: Family | undefined;
  if (text.length > 0 && !text.endsWith('\n')) throw new ExpositionError(text.split('\n').length, 'the last line does not end with a line feed');
  const lines = text.split('\n');
  lines.pop();
  const open = (name: string, at: number): Family => {
    if (current?.name === name) return current;
    if (current) closed.add(current.name);
    if (closed.has(name)) throw new ExpositionError(at, `metric family ${name} appears in two separate groups`);
    let f = families.get(name);
    if (!f) families.set(name, (f = { name, type: 'untyped', help: undefined, samples: [] }));
    current = f;
    return f;
  };
  const typed = new Set<string>();
  lines.forEach((line, i) => {
    const at = i + 1;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!m) return; // a plain comment
      const [, kind, name, rest = ''] = m;
      if (!METRIC_NAME.test(name!)) throw new ExpositionError(at, `invalid metric name ${JSON.stringify(name)}`);
      const f = open(name!, at);
      if (kind === 'HELP') {
        if (f.help !== undefined) throw new ExpositionError(at, `second HELP for ${name}`);
        f.help = unescape(rest, at, false);
      } else {
        if (typed.has(name!)) throw new ExpositionError(at, `second TYPE for ${name}`);
        if (f.samples.length > 0) throw new ExpositionError(at, `TYPE for ${name} after its samples`);
        if (!TYPES.has(rest as MetricType)) throw new ExpositionError(at, `unknown type ${JSON.stringify(rest)} for ${name}`);
        typed.add(name!);
        f.type = rest as MetricType;
      }
      return;
    }
    const s = parseSample(line, at);
    const family = familyOf(s.name, families);
    if (!family || !typed.has(family)) throw new ExpositionError(at, `sample ${s.name} has no # TYPE line before it`);
    const f = open(family, at);
    const key = `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`;
    if (seen.has(key)) throw new ExpositionError(at, `duplicate series ${s.name}${JSON.stringify(s.labels)}`);
    seen.add(key);
    if ((f.type === 'counter' || s.name.endsWith('_count') || s.name.endsWith('_bucket')) && !(s.value >= 0)) {
      throw new ExpositionError(at, `${s.name} is ${s.value}: counters and counts are never negative`);
    }
    f.samples.push(s);
  });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

/** The family a sample belongs to: its own name, or for a histogram or summary the name less its suffix. */
function familyOf(sample: string, families: Map<string, Family>): string | undefined {
  const own = families.get(sample);
  // A summary's quantile lines carry the bare name; a histogram has no bare-name series.
  if (own && own.type !== 'histogram') return sample;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sample.endsWith(suffix)) continue;
    const base = families.get(sample.slice(0, -suffix.length));
    if (base?.type === 'histogram' || (base?.type === 'summary' && suffix !== '_bucket')) return base.name;
  }
  return undefined;
}

function parseSample(line: string, at: number): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+(-?\d+))?$/.exec(line);
  if (!m) throw new ExpositionError(at, `not a sample line: ${JSON.stringify(line)}`);
  return { name: m[1]!, labels: m[2] ? parseLabels(m[2], at) : {}, value: parseValue(m[3]!, at) };
}

function parseLabels(text: string, at: number): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 1;
  const end = text.length - 1;
  while (i < end) {
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new ExpositionError(at, `label without a value in ${text}`);
    const name = text.slice(i, eq);
    if (!LABEL_NAME.test(name)) throw new ExpositionError(at, `invalid label name ${JSON.stringify(name)}`);
    if (name in labels) throw new ExpositionError(at, `label ${name} given twice`);
    if (text[eq + 1] !== '"') throw new ExpositionError(at, `label ${name}: the value must be in double quotes`);
    let j = eq + 2;
    let raw = '';
    for (; j < end; j++) {
      const c = text[j]!;
      if (c === '\\') {
        raw += c + (text[j + 1] ?? '');
        j++;
      } else if (c === '"') break;
      else raw += c;
    }
    if (text[j] !== '"') throw new ExpositionError(at, `label ${name}: unterminated value`);
    labels[name] = unescape(raw, at, true);
    i = j + 1;
    if (text[i] === ',') i++;
    else if (i !== end) throw new ExpositionError(at, `expected "," or "}" after label ${name}`);
  }
  return labels;
}

/** Label values escape \\, \" and \n; HELP text escapes \\ and \n. Any other escape is an error. */
function unescape(raw: string, at: number, quotes: boolean): string {
  return raw.replace(/\\(.?)/g, (_, c: string) => {
    if (c === '\\') return '\\';
    if (c === 'n') return '\n';
    if (c === '"' && quotes) return '"';
    throw new ExpositionError(at, `invalid escape \\${c}`);
  });
}

/** As Go's strconv.ParseFloat reads it (the spec's definition): "Nan" and "inf" too, whatever the case. */
function parseValue(text: string, at: number): number {
  const special = /^([-+]?)(inf|infinity|nan)$/i.exec(text);
  if (special) return special[2]!.toLowerCase() === 'nan' ? (special[1] ? badValue(text, at) : NaN) : special[1] === '-' ? -Infinity : Infinity;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new ExpositionError(at, `invalid value ${JSON.stringify(text)}`);
  return Number(text);
}

function badValue(text: string, at: number): never {
  throw new ExpositionError(at, `invalid value ${JSON.stringify(text)}`);
}

/** Per label set: buckets with le, ascending and cumulative, one at +Inf equal to _count, and a _sum. */
function checkHistogram(f: Family): void {
  const groups = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { buckets: [] }));
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) throw new Error(`${f.name}: a bucket without le ${key}`);
      g.buckets.push([parseValue(le, 0), s.value]);
    } else if (s.name === `${f.name}_sum`) g.sum = s.value;
    else if (s.name === `${f.name}_count`) g.count = s.value;
    else throw new Error(`${f.name}: sample ${s.name} is not a histogram series`);
  }
  for (const [key, g] of groups) {
    if (g.sum === undefined || g.count === undefined) throw new Error(`${f.name}${key}: no _sum or no _count`);
    const last = g.buckets.at(-1);
    if (!last || last[0] !== Infinity) throw new Error(`${f.name}${key}: no le="+Inf" bucket last`);
    if (last[1] !== g.count) throw new Error(`${f.name}${key}: the +Inf bucket holds ${last[1]}, _count is ${g.count}`);
    for (let i = 1; i < g.buckets.length; i++) {
      if (!(g.buckets[i]![0] > g.buckets[i - 1]![0])) throw new Error(`${f.name}${key}: bucket bounds not ascending`);
      if (g.buckets[i]![1] < g.buckets[i - 1]![1]) throw new Error(`${f.name}${key}: buckets not cumulative`);
    }
  }
}

/** A parsed scrape with lookups that fail loudly. */
export class Scrape {
  readonly families: Map<string, Family>;

  constructor(readonly text: string) {
    this.families = parseExposition(text);
  }

  /** Every sample named `name` whose labels include `labels`. */
  samples(name: string, labels: Record<string, string> = {}): Sample[] {
    const out: Sample[] = [];
    for (const f of this.families.values()) {
      for (const s of f.samples) if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) out.push(s);
    }
    return out;
  }

  /** The one sample named `name` with (at least) these labels; throws if there is none or more than one. */
  value(name: string, labels: Record<string, string> = {}): number {
    const found = this.samples(name, labels);
    if (found.length !== 1) throw new Error(`${name}${JSON.stringify(labels)}: ${found.length} samples, expected exactly 1`);
    return found[0]!.value;
  }

  /** The sum of every sample named `name` whose labels include `labels` (0 if none). */
  sum(name: string, labels: Record<string, string> = {}): number {
    return this.samples(name, labels).reduce((n, s) => n + s.value, 0);
  }
}
