// The V8 heap floor fitbroker's processes start with (src/core/heap-floor.ts): added to the
// node arguments of what we spawn, never over an operator's own setting, and on the CLI's
// shebang, which is how `fitbroker replica` started by hand gets it.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { HEAP_FLOOR_FLAG, hasHeapFloor, withHeapFloor } from '../../src/core/index.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

describe('the heap floor for the processes fitbroker starts', () => {
  it('is added before other node arguments, once, and not over an initial old space size already given', () => {
    assert.deepEqual(withHeapFloor([], {}), [HEAP_FLOOR_FLAG]);
    assert.deepEqual(withHeapFloor(['--cpu-prof'], {}), [HEAP_FLOOR_FLAG, '--cpu-prof']);
    assert.deepEqual(withHeapFloor(['--initial-old-space-size=512'], {}), ['--initial-old-space-size=512']);
    assert.deepEqual(withHeapFloor(withHeapFloor([], {}), {}), [HEAP_FLOOR_FLAG]);
    const args = ['--trace-gc'];
    withHeapFloor(args, {});
    assert.deepEqual(args, ['--trace-gc'], 'the arguments passed in are not changed');
  });

  it('FITBROKER_HEAP_FLOOR=0 leaves it out', () => {
    assert.deepEqual(withHeapFloor(['--cpu-prof'], { FITBROKER_HEAP_FLOOR: '0' }), ['--cpu-prof']);
  });

  it('is a flag node accepts, and a process started with it knows it has it', () => {
    const out = execFileSync(process.execPath, [...withHeapFloor([], {}), '--input-type=module', '-e', 'console.log(JSON.stringify(process.execArgv))'], { encoding: 'utf8' });
    const execArgv = JSON.parse(out) as string[];
    assert.ok(hasHeapFloor(execArgv), `a child started with it reports ${out}`);
    assert.ok(!hasHeapFloor(['--trace-gc']));
  });

  it('is on the fitbroker command line itself, and in the systemd unit and the container we ship', () => {
    const shebang = readFileSync(CLI, 'utf8').split('\n')[0]!;
    assert.equal(shebang, `#!/usr/bin/env -S node ${HEAP_FLOOR_FLAG}`);
    const deploy = (f: string): string => readFileSync(fileURLToPath(new URL(`../../../deploy/${f}`, import.meta.url)), 'utf8');
    assert.match(deploy('fitbroker-replica@.service'), new RegExp(`^ExecStart=/usr/bin/node ${HEAP_FLOOR_FLAG} `, 'm'));
    assert.match(deploy('Dockerfile'), new RegExp(`^ENTRYPOINT \\["node", "${HEAP_FLOOR_FLAG}", `, 'm'));
  });
});
