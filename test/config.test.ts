import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../config';

/** Runs loadConfig(env), expects a ConfigError whose message is one line, and returns that message. */
function configError(env: NodeJS.ProcessEnv): string {
  let caught: unknown;
  try {
    loadConfig(env);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  assert.doesNotMatch(caught.message, /[\r\n]/, 'the message is one line');
  return caught.message;
}

describe('settings (loadConfig)', () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'outbox-sync-config-test-'));
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** Writes `text` to a file in the temporary directory and returns its path. */
  function configFile(name: string, text: string): string {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  }

  it('points at local servers with the documented defaults when the environment is empty', () => {
    assert.deepEqual(loadConfig({}), {
      outboxDatabaseUrl: 'postgres://127.0.0.1:5432/outbox_sync',
      targetDatabaseUrl: 'postgres://127.0.0.1:5432/outbox_sync_target',
      redisUrl: 'redis://127.0.0.1:6379',
      redisPrefix: 'outbox-sync:',
      temporalAddress: '127.0.0.1:7233',
      temporalNamespace: 'default',
      taskQueue: 'outbox-sync',
      workflowIdPrefix: 'outbox-message-',
      temporalUiUrl: 'http://127.0.0.1:8233',
      maxExecutions: 5,
      redriveBaseMs: 5_000,
      redriveMaxMs: 600_000,
      leaseMs: 60_000,
      claimBatchSize: 200,
      pollIntervalMs: 1_000,
      cacheTtlSeconds: 86_400,
      maxDataBytes: 256 * 1024,
      activityMaxAttempts: 8,
      activityInitialIntervalMs: 200,
      activityMaxIntervalMs: 10_000,
      activityTimeoutMs: 30_000,
      maxInFlight: 1_000,
    });
  });

  it('treats an empty variable as unset and uses the default', () => {
    assert.equal(loadConfig({ OUTBOX_SYNC_MAX_EXECUTIONS: '' }).maxExecutions, 5);
  });

  it('turns a numeric setting from the environment into a number', () => {
    const config = loadConfig({ OUTBOX_SYNC_MAX_EXECUTIONS: '7', OUTBOX_SYNC_POLL_MS: '250' });
    assert.strictEqual(config.maxExecutions, 7);
    assert.strictEqual(config.pollIntervalMs, 250);
  });

  it('takes URLs and names from the environment as given', () => {
    const config = loadConfig({
      OUTBOX_DATABASE_URL: 'postgresql://db.example:5433/outbox',
      REDIS_URL: 'rediss://cache.example:6380',
      TEMPORAL_ADDRESS: 'temporal.example:7233',
      TEMPORAL_NAMESPACE: 'orders',
    });
    assert.equal(config.outboxDatabaseUrl, 'postgresql://db.example:5433/outbox');
    assert.equal(config.redisUrl, 'rediss://cache.example:6380');
    assert.equal(config.temporalAddress, 'temporal.example:7233');
    assert.equal(config.temporalNamespace, 'orders');
  });

  describe('a wrong value stops with one line that starts with the setting name', () => {
    it('refuses OUTBOX_SYNC_MAX_EXECUTIONS=0, below its minimum of 1', () => {
      const message = configError({ OUTBOX_SYNC_MAX_EXECUTIONS: '0' });
      assert.ok(message.startsWith('OUTBOX_SYNC_MAX_EXECUTIONS: '), message);
      assert.match(message, /\(got "0"\)$/);
    });

    it('refuses OUTBOX_SYNC_MAX_EXECUTIONS=abc, which is not a number', () => {
      const message = configError({ OUTBOX_SYNC_MAX_EXECUTIONS: 'abc' });
      assert.ok(message.startsWith('OUTBOX_SYNC_MAX_EXECUTIONS: '), message);
      assert.match(message, /\(got "abc"\)$/);
    });

    it('refuses REDIS_URL=http://x, which is not a Redis URL', () => {
      const message = configError({ REDIS_URL: 'http://x' });
      assert.equal(message, 'REDIS_URL: must be a URL starting with redis:// or rediss:// (got "http://x")');
    });

    it('refuses TEMPORAL_ADDRESS=nohost, which has no port', () => {
      const message = configError({ TEMPORAL_ADDRESS: 'nohost' });
      assert.equal(message, 'TEMPORAL_ADDRESS: must be host:port (got "nohost")');
    });

    it('refuses numbers in loose notations: hexadecimal, exponent, padded', () => {
      for (const value of ['0x10', '1e2', ' 7 ', '3.5']) {
        const message = configError({ OUTBOX_SYNC_MAX_EXECUTIONS: value });
        assert.ok(message.startsWith('OUTBOX_SYNC_MAX_EXECUTIONS: must be an integer'), message);
      }
    });

    it('keeps a value holding a line break on one line', () => {
      const message = configError({ OUTBOX_DATABASE_URL: 'not\na url' });
      assert.ok(message.startsWith('OUTBOX_DATABASE_URL: '), message);
    });
  });

  describe('the config file named by OUTBOX_SYNC_CONFIG', () => {
    it('supplies the values it holds, numbers included', () => {
      const file = configFile('values.json', JSON.stringify({ OUTBOX_SYNC_MAX_EXECUTIONS: 7, TEMPORAL_NAMESPACE: 'from-file' }));
      const config = loadConfig({ OUTBOX_SYNC_CONFIG: file });
      assert.strictEqual(config.maxExecutions, 7);
      assert.equal(config.temporalNamespace, 'from-file');
      assert.equal(config.taskQueue, 'outbox-sync', 'what the file leaves out keeps its default');
    });

    it('gives way to the environment, which wins over the file', () => {
      const file = configFile('overridden.json', JSON.stringify({ OUTBOX_SYNC_MAX_EXECUTIONS: 7, TEMPORAL_NAMESPACE: 'from-file' }));
      const config = loadConfig({ OUTBOX_SYNC_CONFIG: file, OUTBOX_SYNC_MAX_EXECUTIONS: '9' });
      assert.strictEqual(config.maxExecutions, 9);
      assert.equal(config.temporalNamespace, 'from-file');
    });

    it('is not hidden by an empty variable of the same name', () => {
      const file = configFile('empty-env.json', JSON.stringify({ OUTBOX_SYNC_MAX_EXECUTIONS: 7 }));
      assert.strictEqual(loadConfig({ OUTBOX_SYNC_CONFIG: file, OUTBOX_SYNC_MAX_EXECUTIONS: '' }).maxExecutions, 7);
    });

    it('refuses a boolean or null where a number belongs', () => {
      for (const value of [true, null]) {
        const file = configFile(`typed-${value}.json`, JSON.stringify({ OUTBOX_SYNC_MAX_EXECUTIONS: value }));
        const message = configError({ OUTBOX_SYNC_CONFIG: file });
        assert.ok(message.startsWith('OUTBOX_SYNC_MAX_EXECUTIONS: must be an integer'), message);
      }
    });

    it('has its wrong values refused by the setting name, like the environment', () => {
      const file = configFile('wrong-value.json', JSON.stringify({ REDIS_URL: 'http://x' }));
      const message = configError({ OUTBOX_SYNC_CONFIG: file });
      assert.ok(message.startsWith('REDIS_URL: '), message);
    });

    it('refuses a file that names an unknown setting', () => {
      const file = configFile('unknown.json', JSON.stringify({ OUTBOX_SYNC_MAX_EXECUTIONS: 3, OUTBOX_SYNC_COLOUR: 'red' }));
      const message = configError({ OUTBOX_SYNC_CONFIG: file });
      assert.ok(message.startsWith('OUTBOX_SYNC_CONFIG: '), message);
      assert.match(message, /unknown setting OUTBOX_SYNC_COLOUR$/);
    });

    it('refuses a file that does not exist', () => {
      const file = join(dir, 'missing.json');
      const message = configError({ OUTBOX_SYNC_CONFIG: file });
      assert.equal(message, `OUTBOX_SYNC_CONFIG: cannot read ${file} (ENOENT)`);
    });

    it('refuses a file that is not JSON', () => {
      const file = configFile('not-json.json', 'OUTBOX_SYNC_MAX_EXECUTIONS=3\n');
      const message = configError({ OUTBOX_SYNC_CONFIG: file });
      assert.equal(message, `OUTBOX_SYNC_CONFIG: ${file} is not valid JSON`);
    });

    it('refuses a file whose JSON is not an object', () => {
      const file = configFile('array.json', '[{"OUTBOX_SYNC_MAX_EXECUTIONS": 3}]');
      const message = configError({ OUTBOX_SYNC_CONFIG: file });
      assert.ok(message.startsWith('OUTBOX_SYNC_CONFIG: '), message);
      assert.match(message, /must hold a JSON object/);
    });
  });
});
