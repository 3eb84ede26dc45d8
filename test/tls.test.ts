/**
 * TLS settings reach real servers: PostgreSQL (the local server has TLS on) through the URL's sslmode,
 * Redis through a TLS-only redis-server of the test's own that demands client certificates (mTLS), and
 * Temporal through the connection options the worker and the client share.
 */
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config/config';
import { Connection } from '@temporalio/client';
import { openStores, type Stores } from '../stores/stores';
import { temporalConnectionOptions } from '../temporal/connection';
import { freePort, getStack } from './support/stack';
import { waitFor } from './support/pipeline';

/** A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl. */
function makeCertificates(dir: string): Record<'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey', string> {
  const at = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', at('ca.key'), '-out', at('ca.pem'), '-days', '1', '-subj', '/CN=outbox-sync test CA');
  writeFileSync(at('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const [name, extra] of [['server', ['-extfile', at('server.ext')]], ['client', []]] as const) {
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', at(`${name}.key`), '-out', at(`${name}.csr`), '-subj', `/CN=${name}`);
    openssl('x509', '-req', '-in', at(`${name}.csr`), '-CA', at('ca.pem'), '-CAkey', at('ca.key'), '-CAcreateserial', '-out', at(`${name}.pem`), '-days', '1', ...extra);
  }
  return { ca: at('ca.pem'), serverCert: at('server.pem'), serverKey: at('server.key'), clientCert: at('client.pem'), clientKey: at('client.key') };
}

describe('TLS settings against real servers', () => {
  let dir: string;
  let certs: ReturnType<typeof makeCertificates>;
  const opened: Stores[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'outbox-sync-tls-'));
    certs = makeCertificates(dir);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  afterEach(async () => {
    await Promise.all(opened.map((s) => s.close()));
    opened.length = 0;
  });

  function open(env: Record<string, string>): Stores {
    const stores = openStores(loadConfig(env), 1);
    opened.push(stores);
    return stores;
  }

  describe('PostgreSQL, from the URL as libpq reads it', () => {
    const postgresUrl = () => {
      const url = new URL(getStack().postgresUrl);
      url.pathname = '/postgres';
      return url;
    };

    it('connects encrypted with sslmode=require', async () => {
      const url = postgresUrl();
      url.search = 'sslmode=require&uselibpqcompat=true';
      const { outbox } = open({ OUTBOX_DATABASE_URL: url.toString() });
      const { rows } = await outbox.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      assert.equal(rows[0].ssl, true);
    });

    it('refuses a server whose certificate the CA in sslrootcert did not sign (verify-full)', async () => {
      const url = postgresUrl();
      url.search = `sslmode=verify-full&sslrootcert=${encodeURIComponent(certs.ca)}`;
      const { outbox } = open({ OUTBOX_DATABASE_URL: url.toString() });
      await assert.rejects(outbox.query('SELECT 1'), /certificate/i);
    });
  });

  describe('Redis with mutual TLS', () => {
    let server: ChildProcess;
    let port: number;

    before(async () => {
      port = await freePort();
      server = spawn('redis-server', [
        '--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1',
        '--tls-cert-file', certs.serverCert, '--tls-key-file', certs.serverKey, '--tls-ca-cert-file', certs.ca,
        '--tls-auth-clients', 'yes', '--save', '', '--appendonly', 'no', '--dir', dir,
      ], { stdio: 'ignore' });
      await waitFor('the TLS redis-server to listen', async () => {
        try {
          execFileSync('redis-cli', ['--tls', '--cacert', certs.ca, '--cert', certs.clientCert, '--key', certs.clientKey, '-p', String(port), 'ping'], { stdio: 'pipe' });
          return true;
        } catch {
          return undefined;
        }
      }, 10_000);
    });

    after(async () => {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGKILL');
      await exited;
    });

    it('stages and reads a record over rediss:// with the CA and the client certificate', async () => {
      const { cache } = open({
        REDIS_URL: `rediss://127.0.0.1:${port}`,
        REDIS_TLS_CA_FILE: certs.ca,
        REDIS_TLS_CERT_FILE: certs.clientCert,
        REDIS_TLS_KEY_FILE: certs.clientKey,
      });
      await cache.stage('order', '1', { version: '3', op: 'upsert', data: '{"a":1}', messageId: 9 });
      assert.deepEqual(await cache.read('order', '1'), { version: '3', op: 'upsert', data: '{"a":1}', messageId: 9 });
    });

    it('is refused without the client certificate the server demands', async () => {
      const { redis } = open({ REDIS_URL: `rediss://127.0.0.1:${port}`, REDIS_TLS_CA_FILE: certs.ca });
      await assert.rejects(redis.ping());
      // Refused, the client would keep reconnecting until the pool closes: stop it here.
      redis.disconnect();
    });
  });

  describe('Temporal', () => {
    it('builds TLS from the CA, the client pair and the server name, for client and worker alike', () => {
      const options = temporalConnectionOptions(
        loadConfig({
          TEMPORAL_ADDRESS: 'example.tmprl.cloud:7233',
          TEMPORAL_TLS_CA_FILE: certs.ca,
          TEMPORAL_TLS_CERT_FILE: certs.clientCert,
          TEMPORAL_TLS_KEY_FILE: certs.clientKey,
          TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
        }),
      );
      assert.equal(options.address, 'example.tmprl.cloud:7233');
      const tls = options.tls as { serverNameOverride: string; serverRootCACertificate: Buffer; clientCertPair: { crt: Buffer; key: Buffer } };
      assert.equal(tls.serverNameOverride, 'temporal.internal');
      assert.match(tls.serverRootCACertificate.toString(), /BEGIN CERTIFICATE/);
      assert.match(tls.clientCertPair.crt.toString(), /BEGIN CERTIFICATE/);
      assert.match(tls.clientCertPair.key.toString(), /PRIVATE KEY/);
      assert.equal(options.apiKey, undefined);
    });

    it('turns TLS on with an API key (Temporal Cloud), and leaves it off by default', () => {
      assert.deepEqual(temporalConnectionOptions(loadConfig({ TEMPORAL_API_KEY: 'k-123' })), { address: '127.0.0.1:7233', tls: {}, apiKey: 'k-123' });
      assert.deepEqual(temporalConnectionOptions(loadConfig({})), { address: '127.0.0.1:7233' });
    });

    it('speaks TLS when TEMPORAL_TLS=true: the plain-text dev server cannot answer it', async () => {
      const config = loadConfig({ TEMPORAL_ADDRESS: getStack().temporalAddress, TEMPORAL_TLS: 'true' });
      await assert.rejects(Connection.connect({ ...temporalConnectionOptions(config), connectTimeout: '2 seconds' }));
    });
  });
});
