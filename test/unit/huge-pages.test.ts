import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HUGE_PAGES_TUNABLE, hugePagesState, withHugePages } from '../../src/core/index.js';

describe('malloc huge pages for the processes fitbroker starts', () => {
  it('adds the tunable, keeps the tunables an operator set, and leaves alone one who chose', () => {
    assert.equal(withHugePages({ PATH: '/bin' }).GLIBC_TUNABLES, HUGE_PAGES_TUNABLE);
    assert.equal(withHugePages({ PATH: '/bin' }).PATH, '/bin');
    assert.equal(withHugePages({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }).GLIBC_TUNABLES, `glibc.malloc.arena_max=2:${HUGE_PAGES_TUNABLE}`);
    assert.equal(withHugePages({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' }).GLIBC_TUNABLES, 'glibc.malloc.hugetlb=0');
    assert.equal(withHugePages({ FITBROKER_HUGE_PAGES: '0' }).GLIBC_TUNABLES, undefined);
    const env = { A: '1' };
    withHugePages(env);
    assert.deepEqual(env, { A: '1' }, 'the environment passed in is not changed');
  });

  it('tells whether malloc gets huge pages from the tunable and the kernel mode', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fitbroker-thp-'));
    try {
      const thp = join(dir, 'enabled');
      const state = (mode: string, tunables?: string) => {
        writeFileSync(thp, mode);
        return hugePagesState(tunables === undefined ? {} : { GLIBC_TUNABLES: tunables }, thp);
      };
      assert.deepEqual(state('always [madvise] never\n', HUGE_PAGES_TUNABLE), { malloc: '1', kernel: 'madvise', effective: true });
      assert.deepEqual(state('[always] madvise never\n', `glibc.malloc.arena_max=2:${HUGE_PAGES_TUNABLE}`), { malloc: '1', kernel: 'always', effective: true });
      assert.deepEqual(state('always madvise [never]\n', HUGE_PAGES_TUNABLE), { malloc: '1', kernel: 'never', effective: false });
      assert.deepEqual(state('always [madvise] never\n'), { malloc: 'unset', kernel: 'madvise', effective: false });
      assert.deepEqual(state('always [madvise] never\n', 'glibc.malloc.hugetlb=0'), { malloc: '0', kernel: 'madvise', effective: false });
      assert.deepEqual(hugePagesState({ GLIBC_TUNABLES: HUGE_PAGES_TUNABLE }, join(dir, 'missing')), { malloc: '1', kernel: 'unknown', effective: false });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
