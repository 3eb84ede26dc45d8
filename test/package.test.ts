/**
 * The npm package as a user gets it: `npm pack` of this checkout, installed into an empty folder, then its
 * CLI, its worker and its library used from there against the real servers, and its typings checked by a
 * strict TypeScript project of a producer's. Packed once and installed once for all the checks (the
 * install is most of the cost); the checkout's dist/ is packed as this run built it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { builtinModules, createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import pg from 'pg';
import { packageRoot } from '../config/package-root';
import { pgSettings } from '../stores/postgres/connect';
import { isPool } from '../stores/postgres/queryable';
import { readRecord } from '../stores/target/synced-records';
import { freshWorkflowBundle, workflowSourcesDigest } from '../worker/bundle';
import { TestPipeline } from './support/pipeline';
import { childEnv, spawnProcess, type ProcessHandle } from './support/processes';
import { databaseUrl, dropDatabase, getStack } from './support/stack';

/** Runs a command to its end; fails with its output unless it exits 0. */
async function run(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<ProcessHandle> {
  const handle = spawnProcess({ command, args, cwd: options.cwd, env: options.env ?? childEnv() });
  const { code, signal } = await handle.exited;
  assert.equal(code, 0, `${handle.name} exited ${code ?? signal}:\n${handle.output().slice(-3000)}`);
  return handle;
}

/** Every file under `dir`, as paths relative to it. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

describe('the npm package, packed and installed into an empty folder', function () {
  // A cold install on a busy machine: most of this suite's time.
  this.timeout(240_000);

  let work: string;
  /** The producer's project: the tarball and pg installed, nothing else. */
  let app: string;
  /** The installed package. */
  let installed: string;
  let bin: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'outbox-sync-package-test-'));
    // dist/ as this run built it (scripts/setup.sh builds what prepack would), without building again.
    const pack = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: packageRoot });
    const [{ filename }] = JSON.parse(pack.stdout()) as [{ filename: string }];
    app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'producer-app', version: '1.0.0', private: true }));
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(work, filename), 'pg@^8'], { cwd: app });
    installed = join(app, 'node_modules', 'outbox-sync');
    bin = join(app, 'node_modules', '.bin', 'outbox-sync');
  });

  after(function () {
    if (!work) return;
    if (this.test?.parent?.tests.some((test) => test.state === 'failed')) console.error(`    kept for inspection: ${work}`);
    else rmSync(work, { recursive: true, force: true });
  });

  it('holds the CLI, the built outbox page, both workflow bundles, the migrations and the typings, and no tests, sources or bench', () => {
    const files = filesUnder(installed);
    for (const expected of [
      'bin/outbox-sync',
      'dist/client/cli.js',
      'dist/client/library.js',
      'dist/client/library.d.ts',
      'dist/ui/web/index.html',
      'dist/workflow-bundle.js',
      'dist/workflow-bundle.js.sha256',
      'dist/workflow-bundle-encoded-failures.js',
      'dist/workflow-bundle-encoded-failures.js.sha256',
      'stores/migrations/outbox/001_outbox_messages.sql',
      'stores/migrations/target/001_synced_records.sql',
      'stores/migrations/versions/001_outbox_sync_versions.sql',
      'stores/migrations/versions-mysql/001_outbox_sync_versions.sql',
    ]) {
      assert.ok(files.includes(expected), `${expected} is in the package`);
    }
    assert.ok(
      files.some((file) => /^dist\/ui\/web\/assets\/.+\.js$/.test(file)),
      'the page’s script is in the package',
    );
    const unwanted = files.filter((file) => /^(dist\/)?(test|bench|docs|scripts)\//.test(file) || /\.map$|\.tsbuildinfo$/.test(file) || (file.endsWith('.ts') && !file.endsWith('.d.ts')));
    assert.deepEqual(unwanted, []);

    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { main: string; types: string; exports: { '.': { types: string; default: string } } };
    for (const entry of [manifest.main, manifest.types, manifest.exports['.'].types, manifest.exports['.'].default]) {
      assert.ok(files.includes(entry.replace(/^\.\//, '')), `${entry} (named in package.json) is in the package`);
    }
  });

  it('requires at run time nothing but its dependencies and Node’s own modules', () => {
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const allowed = new Set([...Object.keys(manifest.dependencies), ...builtinModules]);
    const needed = new Map<string, string>();
    for (const file of filesUnder(installed).filter((f) => f.endsWith('.js') && !f.startsWith('dist/ui/') && !f.startsWith('dist/workflow-bundle'))) {
      // tsc compiles every import, static or dynamic, to require("…").
      for (const [, specifier] of readFileSync(join(installed, file), 'utf8').matchAll(/require\("([^".][^"]*)"\)/g)) {
        const name = specifier!.replace(/^node:/, '').match(/^(@[^/]+\/)?[^/]+/)![0];
        if (!allowed.has(name)) needed.set(name, file);
      }
    }
    assert.deepEqual([...needed].map(([name, file]) => `${name} (from ${file})`), []);
  });

  it('loads the library by its name, through require() and import alike', async () => {
    writeFileSync(
      join(app, 'load.mjs'),
      `import { createRequire } from 'node:module';
import { enqueue, enqueueBatch, MessageStatus } from 'outbox-sync';
const required = createRequire(import.meta.url)('outbox-sync');
if (required.enqueue !== enqueue || required.enqueueBatch !== enqueueBatch) throw new Error('require() and import give different functions');
console.log(MessageStatus.completed);
`,
    );
    const load = await run(process.execPath, ['load.mjs'], { cwd: app });
    assert.equal(load.stdout(), 'completed\n');
  });

  it('tells a pool of the producer’s own copy of pg from its clients, though that copy’s Pool is another class', async () => {
    const producerPg = createRequire(join(app, 'package.json'))('pg') as typeof pg;
    const pool = new producerPg.Pool();
    try {
      assert.equal(pool instanceof pg.Pool, false, 'the producer’s pg is a copy apart from the one this test loaded');
      assert.equal(isPool(pool), true);
      assert.equal(isPool(new producerPg.Client()), false);
    } finally {
      await pool.end();
    }
  });

  it('runs `outbox-sync --help` from the installed folder', async () => {
    const help = await run(bin, ['--help'], { cwd: app });
    for (const command of ['migrate', 'worker', 'dispatcher', 'enqueue']) assert.match(help.stdout(), new RegExp(`^  ${command}\\b`, 'm'));
  });

  it('runs `outbox-sync migrate` from the installed folder: it creates both databases, applies its migrations and reaches Temporal', async () => {
    const stack = getStack();
    const name = `outbox_sync_pkg_${randomBytes(4).toString('hex')}`;
    const env = childEnv({
      ...stack.temporalEnv,
      OUTBOX_DATABASE_URL: databaseUrl(stack.postgresUrl, `${name}_outbox`),
      TARGET_DATABASE_URL: databaseUrl(stack.postgresUrl, `${name}_target`),
    });
    try {
      const migrate = await run(bin, ['migrate'], { cwd: app, env });
      const lines = migrate.stdout().split('\n');
      assert.ok(lines.includes(`created database ${name}_outbox`), migrate.stdout());
      assert.ok(lines.includes(`created database ${name}_target`), migrate.stdout());
      assert.ok(lines.some((line) => line.startsWith('outbox: applied outbox/001_outbox_messages.sql')), migrate.stdout());
      assert.ok(lines.some((line) => line.startsWith('target: applied target/001_synced_records.sql')), migrate.stdout());
      assert.ok(lines.some((line) => line.startsWith(`temporal: `) && line.endsWith(` in ${stack.namespace}`)), migrate.stdout());
      const again = await run(bin, ['migrate', '--skip-temporal'], { cwd: app, env });
      assert.equal(again.stdout(), 'outbox: up to date\ntarget: up to date\n');
    } finally {
      await dropDatabase(stack.postgresUrl, `${name}_outbox`);
      await dropDatabase(stack.postgresUrl, `${name}_target`);
    }
  });

  it('runs `outbox-sync worker` from the installed folder on the package’s prebuilt workflow bundle, and syncs a message the installed library enqueued', async () => {
    const pipeline = await TestPipeline.create();
    let worker: ProcessHandle | undefined;
    try {
      writeFileSync(
        join(app, 'enqueue.mjs'),
        `import { enqueue } from 'outbox-sync';
import pg from 'pg';
const pool = new pg.Pool({ connectionString: process.env.PRODUCER_DATABASE_URL });
try {
  console.log(await enqueue(pool, { entity: 'order', key: 'pkg-1', version: 3, data: { total: 1250 } }));
} finally {
  await pool.end();
}
`,
      );
      const producer = await run(process.execPath, ['enqueue.mjs'], {
        cwd: app,
        env: childEnv({ PRODUCER_DATABASE_URL: pgSettings(pipeline.env.OUTBOX_DATABASE_URL!).connectionString! }),
      });
      const id = Number(producer.stdout());
      assert.ok(Number.isInteger(id) && id > 0, `the producer printed an id: ${producer.output()}`);

      worker = spawnProcess({ command: bin, args: ['worker'], cwd: app, env: pipeline.processEnv(), name: 'installed outbox-sync worker' });
      await worker.waitFor('"worker running"');
      const running = worker
        .stderr()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { msg: string; workflowBundle?: string })
        .find((line) => line.msg === 'worker running')!;
      assert.equal(running.workflowBundle, join(realpathSync(installed), 'dist', 'workflow-bundle.js'));

      pipeline.startDispatcher();
      await pipeline.waitForStatus([id], ['completed']);
      const record = await readRecord(pipeline.stores.target, 'order', 'pkg-1');
      assert.deepEqual({ version: record?.version, data: record?.data }, { version: '3', data: { total: 1250 } });

      assert.deepEqual(await worker.stop('SIGTERM'), { code: 0, signal: null });
    } finally {
      await worker?.kill();
      await pipeline.close();
    }
  });

  it('type-checks a strict TypeScript project of a producer against the installed typings, with neither @types/pg nor @types/node', async () => {
    writeFileSync(
      join(app, 'tsconfig.json'),
      // No ambient types at all: the library's declarations must stand on what the package brings.
      JSON.stringify({ compilerOptions: { strict: true, module: 'nodenext', target: 'es2022', noEmit: true, types: [] }, files: ['producer.ts'] }),
    );
    writeFileSync(
      join(app, 'producer.ts'),
      `import { enqueue, enqueueBatch, IdempotencyConflictError, InvalidMessageError, MessageStatus, validateMessage, type EnqueueOptions, type MessageInput, type ProducerDb } from 'outbox-sync';

/** The producer's own code: the order's change and its message, in a transaction of the caller's. */
export async function orderPaid(db: ProducerDb, orderId: number, version: bigint, options: EnqueueOptions = {}): Promise<number> {
  const message: MessageInput = { entity: 'order', key: String(orderId), op: 'upsert', version, data: { status: 'paid' }, idempotencyKey: \`paid-\${orderId}\` };
  validateMessage(message, options);
  try {
    const [id] = await enqueueBatch(db, [message], options);
    return id ?? (await enqueue(db, message, options));
  } catch (err) {
    if (err instanceof IdempotencyConflictError) return err.existingId;
    if (err instanceof InvalidMessageError) throw new Error(\`order \${orderId}: \${err.field}: \${err.reason}\`);
    throw err;
  }
}

export const settled: string[] = [MessageStatus.completed, MessageStatus.dead];

// The types refuse what validation refuses at run time: a message without a key, an op that is not one.
// @ts-expect-error
export const keyless: MessageInput = { entity: 'order' };
// @ts-expect-error
export const merge: MessageInput = { entity: 'order', key: '1', op: 'merge' };
`,
    );
    await run(join(packageRoot, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], { cwd: app });
  });
});

describe('the prebuilt workflow bundle', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'outbox-sync-bundle-test-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('is used while its digest matches the compiled workflows, whatever times the files carry, and not once they differ', () => {
    const bundle = join(dir, 'workflow-bundle.js');
    writeFileSync(bundle, '// a bundle\n');
    assert.equal(freshWorkflowBundle('plain', bundle), null, 'a bundle without its digest is not used');

    writeFileSync(`${bundle}.sha256`, `${workflowSourcesDigest('plain')}\n`);
    // Older than every compiled workflow, as an install's extraction order may leave it.
    const past = new Date('2000-01-01T00:00:00Z');
    utimesSync(bundle, past, past);
    utimesSync(`${bundle}.sha256`, past, past);
    assert.equal(freshWorkflowBundle('plain', bundle), bundle);

    // Built from other workflow code (or for the other failure converter): bundled at start instead.
    assert.equal(freshWorkflowBundle('encoded-failures', bundle), null);
    writeFileSync(`${bundle}.sha256`, `${'0'.repeat(64)}\n`);
    assert.equal(freshWorkflowBundle('plain', bundle), null);
  });
});
