import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../database/package-root';

/** Modules that workflow code may load at run time: deterministic, and free of I/O. */
const ALLOWED = new Set(['@temporalio/workflow', '@temporalio/common']);

describe('workflows/ stays pure', () => {
  it('imports only the Temporal workflow libraries at run time (activities and the rest as types only)', () => {
    const dir = join(packageRoot, 'workflows');
    const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
    assert.ok(files.length > 0);
    for (const file of files) {
      const source = readFileSync(join(dir, file), 'utf8');
      for (const match of source.matchAll(/^import\s+(type\s+)?[^;]*?from\s+'([^']+)'/gms)) {
        const [, typeOnly, from] = match;
        if (typeOnly) continue;
        assert.ok(ALLOWED.has(from!), `${file} imports ${from} at run time`);
      }
      assert.doesNotMatch(source, /\brequire\(/, `${file} calls require`);
    }
  });
});
