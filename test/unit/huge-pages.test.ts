import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HUGE_PAGES_TUNABLE, hugePagesState, withHugePages } from '../../src/core/index.js';
import { readHugePagesState } from '../../src/replica/index.js';

describe('malloc huge pages for the processes fitbroker starts', () => {
  it('adds the tunable, keeps the tunables an operator set, and leaves alone a hugetlb they chose', () => {
    assert.equal(withHugePages({ PATH: '/bin' }).GLIBC_TUNABLES, HUGE_PAGES_TUNABLE);
    assert.equal(withHugePages({ PATH: '/bin' }).PATH, '/bin');
    assert.equal(withHugePages({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }).GLIBC_TUNABLES, `glibc.malloc.arena_max=2:${HUGE_PAGES_TUNABLE}`);
    assert.equal(withHugePages({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' }).GLIBC_TUNABLES, 'glibc.malloc.hugetlb=0');
    assert.equal(withHugePages({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=2' }).GLIBC_TUNABLES, 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=2');
    const env = { A: '1' };
    withHugePages(env);
    assert.deepEqual(env, { A: '1' }, 'the environment passed in is not changed');
  });

  it('FITBROKER_HUGE_PAGES=0 starts children without it, even when this process has it', () => {
    assert.equal(withHugePages({ FITBROKER_HUGE_PAGES: '0' }).GLIBC_TUNABLES, undefined);
    assert.ok(!('GLIBC_TUNABLES' in withHugePages({ FITBROKER_HUGE_PAGES: '0', GLIBC_TUNABLES: HUGE_PAGES_TUNABLE })));
    assert.equal(withHugePages({ FITBROKER_HUGE_PAGES: '0', GLIBC_TUNABLES: `glibc.malloc.arena_max=2:${HUGE_PAGES_TUNABLE}` }).GLIBC_TUNABLES, 'glibc.malloc.arena_max=2');
    const env = { FITBROKER_HUGE_PAGES: '0', GLIBC_TUNABLES: HUGE_PAGES_TUNABLE };
    withHugePages(env);
    assert.equal(env.GLIBC_TUNABLES, HUGE_PAGES_TUNABLE, 'the environment passed in is not changed');
  });

  it('says malloc gets huge pages only with the tunable, glibc 2.35 or later, and the kernel in madvise mode', () => {
    const madvise = 'always [madvise] never\n';
    const on = { GLIBC_TUNABLES: HUGE_PAGES_TUNABLE };
    assert.deepEqual(hugePagesState(on, madvise, '2.36'), { malloc: '1', kernel: 'madvise', glibc: '2.36', effective: true });
    assert.equal(hugePagesState({ GLIBC_TUNABLES: `glibc.malloc.arena_max=2:${HUGE_PAGES_TUNABLE}` }, madvise, '2.40').effective, true);
    assert.equal(hugePagesState(on, madvise, '3.0').effective, true);
    // glibc's tunable acts in madvise mode only; 'always' measured no fewer faults without it.
    assert.deepEqual(hugePagesState(on, '[always] madvise never\n', '2.36'), { malloc: '1', kernel: 'always', glibc: '2.36', effective: false });
    assert.equal(hugePagesState(on, 'always madvise [never]\n', '2.36').effective, false);
    assert.equal(hugePagesState(on, madvise, '2.34').effective, false, 'glibc before the tunable ignores it');
    assert.deepEqual(hugePagesState(on, madvise, undefined), { malloc: '1', kernel: 'madvise', glibc: 'unknown', effective: false });
    assert.deepEqual(hugePagesState({}, madvise, '2.36'), { malloc: 'unset', kernel: 'madvise', glibc: '2.36', effective: false });
    assert.equal(hugePagesState({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' }, madvise, '2.36').malloc, '0');
    assert.equal(hugePagesState({ GLIBC_TUNABLES: `glibc.malloc.hugetlb=0:${HUGE_PAGES_TUNABLE}` }, madvise, '2.36').malloc, '1', 'the last entry wins, as in glibc');
    assert.deepEqual(hugePagesState(on, undefined, '2.36'), { malloc: '1', kernel: 'unknown', glibc: '2.36', effective: false });
  });

  it('reads this machine: the kernel mode and glibc version it runs', () => {
    const s = readHugePagesState({ GLIBC_TUNABLES: HUGE_PAGES_TUNABLE });
    assert.equal(s.malloc, '1');
    assert.match(s.kernel, /^(always|madvise|never|unknown)$/);
    assert.match(s.glibc, /^(\d+\.\d+|unknown)$/);
  });
});
