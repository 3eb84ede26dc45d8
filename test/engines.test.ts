/**
 * The Node versions package.json declares are the ones the dependencies support: every package in
 * package-lock.json that names an `engines.node` range admits the lowest declared version, so that
 * `npm ci` on that Node warns of no unsupported engine, and every other declared version too. Read from
 * the lock file alone: no install, no network.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';
import { packageRoot } from '../config/package-root';

interface Manifest {
  name?: string;
  version?: string;
  /** Usually `{ node: "range" }`; a few old packages still give an array of strings, which npm ignores. */
  engines?: { node?: string } | string[];
}

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(join(packageRoot, file), 'utf8')) as T;
}

/** `node_modules/a/node_modules/@s/b` → `@s/b`. */
function nameAt(path: string): string {
  return path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
}

describe('the Node versions the project declares', () => {
  it('are admitted by the engines.node range of every package in package-lock.json, the lowest first', () => {
    const declared = readJson<Manifest>('package.json').engines;
    const range = Array.isArray(declared) ? undefined : declared?.node;
    assert.ok(range && semver.validRange(range), `package.json: engines.node must be a semver range, not ${JSON.stringify(range)}`);
    const lowest = semver.minVersion(range)!;

    const { packages } = readJson<{ packages: Record<string, Manifest> }>('package-lock.json');
    const refusing: string[] = [];
    for (const [path, manifest] of Object.entries(packages)) {
      if (path === '' || !manifest.engines || Array.isArray(manifest.engines) || !manifest.engines.node) continue;
      const required = manifest.engines.node;
      // The lowest as npm checks it when it installs (npm-install-checks); then the whole declared range.
      if (!semver.satisfies(lowest, required, { includePrerelease: true })) refusing.push(`${nameAt(path)}@${manifest.version} requires node "${required}", refusing ${lowest}`);
      else if (!semver.subset(range, required)) refusing.push(`${nameAt(path)}@${manifest.version} requires node "${required}", refusing part of "${range}"`);
    }
    if (refusing.length > 0) assert.fail(`package.json declares node "${range}", which these packages do not support:\n  ${refusing.join('\n  ')}`);
  });
});
