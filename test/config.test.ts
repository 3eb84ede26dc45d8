import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../config/config';

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
      publishIntervalMs: 100,
      cacheTtlSeconds: 86_400,
      maxDataBytes: 256 * 1024,
      activityMaxAttempts: 8,
      activityInitialIntervalMs: 200,
      activityMaxIntervalMs: 10_000,
      activityTimeoutMs: 30_000,
      logLevel: 'info',
      logFormat: 'auto',
      metricsAddress: '',
      redisTlsCaFile: '',
      redisTlsCertFile: '',
      redisTlsKeyFile: '',
      temporalTls: false,
      temporalTlsCaFile: '',
      temporalTlsCertFile: '',
      temporalTlsKeyFile: '',
      temporalTlsServerName: '',
      temporalApiKey: '',
      ingestPort: 8080,
      ingestHost: '127.0.0.1',
      ingestTokens: [],
      ingestMaxBodyBytes: 4 * 1024 * 1024,
      codecKeys: [],
      codecPort: 8089,
      codecHost: '127.0.0.1',
      codecTokens: [],
      uiPort: 8090,
      uiHost: '127.0.0.1',
      uiTokens: [],
      uiOperators: [],
      maxInFlight: 1_000,
      slaSeconds: null,
      targetsFile: '',
      targetPoolSize: 10,
      targets: null,
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

    it('refuses OUTBOX_SYNC_LOG_LEVEL=loud and OUTBOX_SYNC_LOG_FORMAT=xml, naming the choices', () => {
      assert.match(configError({ OUTBOX_SYNC_LOG_LEVEL: 'loud' }), /^OUTBOX_SYNC_LOG_LEVEL: must be one of trace, debug, info, warn, error, fatal, silent/);
      assert.match(configError({ OUTBOX_SYNC_LOG_FORMAT: 'xml' }), /^OUTBOX_SYNC_LOG_FORMAT: must be json, pretty or auto/);
    });

    it('refuses an OUTBOX_SYNC_SLA_SECONDS that is not a whole number of seconds, or is 0; takes one that is, and none when unset', () => {
      for (const value of ['5m', '0', '-1', '1.5', '31536001']) {
        assert.equal(configError({ OUTBOX_SYNC_SLA_SECONDS: value }), `OUTBOX_SYNC_SLA_SECONDS: must be a whole number of seconds from 1 to 31536000, or unset for none (got "${value}")`);
      }
      assert.equal(loadConfig({ OUTBOX_SYNC_SLA_SECONDS: '300' }).slaSeconds, 300);
      assert.equal(loadConfig({ OUTBOX_SYNC_SLA_SECONDS: '' }).slaSeconds, null);
    });

    it('refuses OUTBOX_SYNC_METRICS_ADDRESS=9464, which has no host', () => {
      assert.match(configError({ OUTBOX_SYNC_METRICS_ADDRESS: '9464' }), /^OUTBOX_SYNC_METRICS_ADDRESS: must be host:port/);
    });

    it('refuses a TLS file that is not there, naming the setting', () => {
      assert.match(
        configError({ REDIS_URL: 'rediss://127.0.0.1:6380', REDIS_TLS_CA_FILE: join(dir, 'no-such-ca.pem') }),
        /^REDIS_TLS_CA_FILE: is not a readable file/,
      );
      assert.match(configError({ TEMPORAL_TLS_CA_FILE: join(dir, 'none.pem') }), /^TEMPORAL_TLS_CA_FILE: is not a readable file/);
    });

    it('refuses a client certificate without its key, and a Redis CA without a rediss:// URL', () => {
      const pem = configFile('client.pem', 'not checked here');
      assert.match(configError({ TEMPORAL_TLS_CERT_FILE: pem }), /^TEMPORAL_TLS_KEY_FILE: must be set together with TEMPORAL_TLS_CERT_FILE/);
      assert.match(configError({ TEMPORAL_TLS_KEY_FILE: pem }), /^TEMPORAL_TLS_CERT_FILE: must be set together with TEMPORAL_TLS_KEY_FILE/);
      assert.match(configError({ REDIS_TLS_CA_FILE: pem }), /^REDIS_TLS_CA_FILE: needs a rediss:\/\/ REDIS_URL/);
    });

    it('refuses TEMPORAL_TLS=yes, which is not true or false', () => {
      assert.match(configError({ TEMPORAL_TLS: 'yes' }), /^TEMPORAL_TLS: must be true or false/);
    });

    it('keeps a value holding a line break on one line', () => {
      const message = configError({ OUTBOX_DATABASE_URL: 'not\na url' });
      assert.ok(message.startsWith('OUTBOX_DATABASE_URL: '), message);
    });
  });

  describe('tokens and keys', () => {
    const key32 = Buffer.alloc(32, 7).toString('base64');
    const key16 = Buffer.alloc(16, 7).toString('base64');

    it('reads INGEST_TOKENS as source=token pairs; a source may hold two tokens while they rotate', () => {
      const config = loadConfig({ INGEST_TOKENS: 'press-1=aaaaaaaaaaaaaaaa1, press-2=bbbbbbbbbbbbbbbb2,press-1=cccccccccccccccc3' });
      assert.deepEqual(config.ingestTokens, [
        { name: 'press-1', token: 'aaaaaaaaaaaaaaaa1' },
        { name: 'press-2', token: 'bbbbbbbbbbbbbbbb2' },
        { name: 'press-1', token: 'cccccccccccccccc3' },
      ]);
    });

    it('refuses a pair without "=", a short token and a token given to two sources, never repeating a token', () => {
      assert.equal(configError({ INGEST_TOKENS: 'press-1' }), 'INGEST_TOKENS: pair 1 must be name=token');
      const short = configError({ INGEST_TOKENS: 'press-1=short-secret' });
      assert.equal(short, 'INGEST_TOKENS: the token of "press-1" must be 16 to 512 printable characters without spaces');
      const twice = configError({ INGEST_TOKENS: 'a=aaaaaaaaaaaaaaaa-secret,b=aaaaaaaaaaaaaaaa-secret' });
      assert.equal(twice, 'INGEST_TOKENS: the token of "b" is given twice; a token names one holder');
      assert.doesNotMatch(short + twice, /secret/);
    });

    it('reads OUTBOX_SYNC_UI_TOKENS as name=token pairs and OUTBOX_SYNC_UI_OPERATORS as names among them', () => {
      const config = loadConfig({ OUTBOX_SYNC_UI_TOKENS: 'alice=aaaaaaaaaaaaaaaa1,bob=bbbbbbbbbbbbbbbb2', OUTBOX_SYNC_UI_OPERATORS: ' alice ,alice' });
      assert.deepEqual(config.uiTokens, [
        { name: 'alice', token: 'aaaaaaaaaaaaaaaa1' },
        { name: 'bob', token: 'bbbbbbbbbbbbbbbb2' },
      ]);
      assert.deepEqual(config.uiOperators, ['alice']);
    });

    it('refuses an operator who holds no outbox page token, and a short outbox page token without showing it', () => {
      assert.equal(
        configError({ OUTBOX_SYNC_UI_TOKENS: 'alice=aaaaaaaaaaaaaaaa1', OUTBOX_SYNC_UI_OPERATORS: 'alice,carol' }),
        'OUTBOX_SYNC_UI_OPERATORS: "carol" is not a name in OUTBOX_SYNC_UI_TOKENS',
      );
      assert.equal(configError({ OUTBOX_SYNC_UI_OPERATORS: 'alice' }), 'OUTBOX_SYNC_UI_OPERATORS: "alice" is not a name in OUTBOX_SYNC_UI_TOKENS');
      assert.equal(configError({ OUTBOX_SYNC_UI_OPERATORS: 'al ice' }), 'OUTBOX_SYNC_UI_OPERATORS: "al ice" is not a name (1 to 200 letters, digits or ._:@-) (got "al ice")');
      const short = configError({ OUTBOX_SYNC_UI_TOKENS: 'alice=short-secret' });
      assert.equal(short, 'OUTBOX_SYNC_UI_TOKENS: the token of "alice" must be 16 to 512 printable characters without spaces');
      assert.equal(configError({ OUTBOX_SYNC_UI_PORT: '70000' }), 'OUTBOX_SYNC_UI_PORT: must be at most 65535 (got "70000")');
    });

    it('reads OUTBOX_SYNC_CODEC_KEYS as keyId=base64 pairs of 32-byte keys, the first one first', () => {
      const config = loadConfig({ OUTBOX_SYNC_CODEC_KEYS: `k2=${key32},k1=${Buffer.alloc(32, 1).toString('base64')}` });
      assert.deepEqual(config.codecKeys.map((k) => k.id), ['k2', 'k1']);
      assert.ok(config.codecKeys[0]!.key.equals(Buffer.alloc(32, 7)));
    });

    it('refuses a short key, a key that is not base64 and a repeated key id with one line that shows no key', () => {
      const short = configError({ OUTBOX_SYNC_CODEC_KEYS: `k1=${key16}` });
      assert.equal(short, 'OUTBOX_SYNC_CODEC_KEYS: key "k1" must be 32 bytes (AES-256), got 16; make one with: openssl rand -base64 32');
      assert.equal(configError({ OUTBOX_SYNC_CODEC_KEYS: 'k1=not base64!' }), 'OUTBOX_SYNC_CODEC_KEYS: key "k1" is not base64');
      assert.equal(configError({ OUTBOX_SYNC_CODEC_KEYS: `k1=${key32},k1=${key32}` }), 'OUTBOX_SYNC_CODEC_KEYS: key id "k1" is given twice');
      assert.equal(configError({ OUTBOX_SYNC_CODEC_KEYS: key32 }), 'OUTBOX_SYNC_CODEC_KEYS: pair 1 must be keyId=base64key');
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
