/**
 * The workflow code, bundled once at build time (`npm run build`, scripts/setup.sh) into dist/, so that a
 * worker starts without running webpack: about 1.5 s faster, and about 80 MiB less resident memory for the
 * worker's whole life. Two bundles, because the failure converter is compiled into the workflow sandbox:
 * one plain, one whose failures keep their messages in (encrypted) payloads, for workers with codec keys.
 *
 * Beside each bundle, `<bundle>.sha256` holds a digest of the compiled code it was made from. A worker uses
 * the bundle only while that digest matches the compiled code it has (otherwise it bundles at start), so a
 * stale bundle is never run after a rebuild. A digest rather than file times: npm install, a copy or a
 * checkout stamps files in whatever order it happens to write them.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleWorkflowCode, DefaultLogger, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { packageRoot } from '../config/package-root';
import { ENCODED_FAILURES_PATH } from '../temporal/data-converter';

export type BundleKind = 'plain' | 'encoded-failures';

export function workflowBundlePath(kind: BundleKind): string {
  return join(packageRoot, 'dist', kind === 'plain' ? 'workflow-bundle.js' : 'workflow-bundle-encoded-failures.js');
}

const WORKFLOWS_DIR = join(packageRoot, 'dist', 'workflows');

/** The file beside a bundle that names what it was built from. */
const digestPath = (bundlePath: string) => `${bundlePath}.sha256`;

/** A digest of what a bundle of `kind` is made from: the compiled workflows (and, for `encoded-failures`, the failure converter). */
export function workflowSourcesDigest(kind: BundleKind): string {
  const files = readdirSync(WORKFLOWS_DIR)
    .filter((name) => name.endsWith('.js'))
    .sort()
    .map((name) => join(WORKFLOWS_DIR, name));
  if (kind === 'encoded-failures') files.push(ENCODED_FAILURES_PATH);
  const hash = createHash('sha256');
  for (const file of files) hash.update(`${file.slice(packageRoot.length)}\0`).update(readFileSync(file)).update('\0');
  return hash.digest('hex');
}

/** The workflow code with the failure converter that `kind` names. */
function bundleWorkflows(kind: BundleKind): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows/sync-message'),
    ...(kind === 'encoded-failures' ? { failureConverterPath: ENCODED_FAILURES_PATH } : {}),
    logger: new DefaultLogger('WARN'),
  });
}

/** Written whole or not at all: a worker starting meanwhile never reads half a file. */
function writeWhole(path: string, content: string): void {
  writeFileSync(`${path}.tmp`, content);
  renameSync(`${path}.tmp`, path);
}

export async function writeWorkflowBundle(kind: BundleKind, path = workflowBundlePath(kind)): Promise<void> {
  const digest = workflowSourcesDigest(kind);
  const { code } = await bundleWorkflows(kind);
  // The bundle first: a worker that reads the old digest beside the new bundle only bundles at start,
  // while a new digest beside the old bundle would run stale code.
  writeWhole(path, code);
  writeWhole(digestPath(path), `${digest}\n`);
}

/** The prebuilt bundle's path when it was built from the compiled workflow code there is now; null otherwise. */
export function freshWorkflowBundle(kind: BundleKind, path = workflowBundlePath(kind)): string | null {
  try {
    return readFileSync(digestPath(path), 'utf8').trim() === workflowSourcesDigest(kind) ? path : null;
  } catch {
    return null;
  }
}

if (require.main === module) {
  Promise.all([writeWorkflowBundle('plain'), writeWorkflowBundle('encoded-failures')]).catch((err) => {
    console.error(`workflow bundle: ${(err as Error).message}`);
    process.exit(1);
  });
}
