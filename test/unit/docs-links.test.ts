// Every link between our documents lands: the file exists and, for a link to a heading, the
// heading does; and no document still holds a merge conflict (prediction.md did, for weeks). Headings get renamed as the docs grow, and a link into performance.md that
// named a heading no longer there went unnoticed for weeks (limits.md, fixed in session 23).
// Anchors are made as GitHub makes them: lower case, punctuation dropped, spaces to hyphens,
// and a repeated heading gets -1, -2, ….

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];

function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const m = fenced ? null : /^#{1,6} (.*)$/.exec(line);
    if (!m) continue;
    const text = m[1]!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .trim()
      .toLowerCase();
    const slug = text.replace(/[^\p{L}\p{N}_\- ]/gu, '').replace(/ /g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

test('a heading becomes the anchor GitHub makes of it', () => {
  const a = anchorsOf('# Performance\n## Session 23: a fresh process pays for its pages\n### `--warmup N`, and why\n## Results\n## Results\n```\n# not a heading\n```\n');
  assert.deepEqual([...a], ['performance', 'session-23-a-fresh-process-pays-for-its-pages', '--warmup-n-and-why', 'results', 'results-1']);
});

test('every link from one of our documents to another, or to a heading, lands', () => {
  const anchors = new Map<string, Set<string>>();
  const anchorsIn = (file: string): Set<string> => {
    let a = anchors.get(file);
    if (!a) anchors.set(file, (a = anchorsOf(readFileSync(join(ROOT, file), 'utf8'))));
    return a;
  };
  const broken: string[] = [];
  for (const doc of DOCS) {
    const text = readFileSync(join(ROOT, doc), 'utf8').replace(/```[\s\S]*?```/g, '');
    for (const m of text.matchAll(/\]\(([^)\s]*)\)/g)) {
      const link = m[1]!;
      if (/^[a-z]+:/i.test(link)) continue; // https:, mailto:
      const [path = '', anchor] = link.split('#');
      const target = path === '' ? doc : normalize(join(dirname(doc), path));
      if (!existsSync(join(ROOT, target))) {
        broken.push(`${doc}: ${link} (no file ${target})`);
        continue;
      }
      if (anchor !== undefined && target.endsWith('.md') && !anchorsIn(target).has(anchor)) broken.push(`${doc}: ${link} (no heading #${anchor} in ${target})`);
    }
  }
  assert.deepEqual(broken, []);
});

test('no document holds a merge conflict\'s markers', () => {
  const marked = DOCS.flatMap((doc) =>
    readFileSync(join(ROOT, doc), 'utf8')
      .split('\n')
      .flatMap((line, i) => (/^(<{7}|>{7})( |$)/.test(line) ? [`${doc}:${i + 1}: ${line}`] : [])),
  );
  assert.deepEqual(marked, []);
});
