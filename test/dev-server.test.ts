import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { startDevServer, type DevServer } from '../temporal/dev-server';
import { waitFor } from './support/pipeline';
import { freePort } from './support/stack';

describe('the Temporal dev server the project starts', () => {
  let dir: string;
  let server: DevServer | undefined;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'outbox-sync-dev-server-'));
  });

  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps workflow history in its SQLite file through a kill and a restart', async () => {
    const options = { port: await freePort(), uiPort: null, dbFile: join(dir, 'temporal.sqlite'), logFile: join(dir, 'temporal.log') };
    server = await startDevServer(options);
    let connection = await Connection.connect({ address: server.address });
    const handle = await new Client({ connection }).workflow.start('syncMessage', {
      taskQueue: 'nobody-polls-this',
      workflowId: 'survives-restart',
      args: [{ messageId: 1, execution: 1 }],
    });
    await connection.close();

    server.process.kill('SIGKILL');
    await new Promise((resolve) => server!.process.once('exit', resolve));
    server = await startDevServer(options);
    connection = await Connection.connect({ address: server.address });
    try {
      const described = await new Client({ connection }).workflow.getHandle('survives-restart').describe();
      assert.equal(described.runId, handle.firstExecutionRunId);
      assert.equal(described.status.name, 'RUNNING');
      // Our search attributes are registered on the fresh server too.
      const attributes = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
      assert.ok(Object.keys(attributes.customAttributes ?? {}).includes('OutboxMessageId'));
    } finally {
      await connection.close();
    }
  });

  it('points its Web UI at a codec endpoint when given one', async () => {
    await server?.stop();
    const uiPort = await freePort();
    server = await startDevServer({
      port: await freePort(),
      uiPort,
      dbFile: join(dir, 'codec.sqlite'),
      logFile: join(dir, 'codec.log'),
      uiCodecEndpoint: 'http://127.0.0.1:8089/codec',
    });
    const settings = await waitFor('the Web UI to answer', async () => {
      const response = await fetch(`${server!.uiUrl}/api/v1/settings`).catch(() => undefined);
      return response?.ok ? ((await response.json()) as { Codec: { Endpoint: string } }) : undefined;
    });
    assert.equal(settings.Codec.Endpoint, 'http://127.0.0.1:8089/codec');
  });
});
