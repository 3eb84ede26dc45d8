import assert from 'node:assert/strict';
import { enqueue, enqueueBatch } from '../stores/outbox/enqueue';
import { readRecord, upsertRecord } from '../stores/target/synced-records';
import { TestPipeline } from './support/pipeline';

describe('order safety: the target holds the highest version completed', () => {
  let pipeline: TestPipeline;

  beforeEach(async () => {
    pipeline = await TestPipeline.create();
    await pipeline.startWorker();
    pipeline.startDispatcher();
  });

  afterEach(async () => {
    await pipeline.close();
  });

  it('keeps the newer upsert when an older version arrives later', async () => {
    const { outbox, target } = pipeline.stores;
    const newer = await enqueue(outbox, { entity: 'order', key: '7', version: 5, data: { state: 'shipped' } });
    await pipeline.waitForStatus([newer], ['completed']);
    const older = await enqueue(outbox, { entity: 'order', key: '7', version: 3, data: { state: 'placed' } });
    await pipeline.waitForStatus([older], ['completed']);
    const record = await readRecord(target, 'order', '7');
    assert.equal(record!.version, '5');
    assert.deepEqual(record!.data, { state: 'shipped' });
    assert.equal(record!.messageId, newer);
  });

  it('keeps a delete when an older upsert arrives after it (the tombstone holds)', async () => {
    const { outbox, target } = pipeline.stores;
    const deleted = await enqueue(outbox, { entity: 'order', key: '8', op: 'delete', version: 10 });
    await pipeline.waitForStatus([deleted], ['completed']);
    const older = await enqueue(outbox, { entity: 'order', key: '8', version: 9, data: { state: 'placed' } });
    await pipeline.waitForStatus([older], ['completed']);
    const record = await readRecord(target, 'order', '8');
    assert.equal(record!.deleted, true);
    assert.equal(record!.version, '10');
  });

  it('keeps the newer upsert when an older delete arrives later', async () => {
    const { outbox, target } = pipeline.stores;
    const newer = await enqueue(outbox, { entity: 'order', key: '9', version: 4, data: { state: 'back' } });
    await pipeline.waitForStatus([newer], ['completed']);
    const olderDelete = await enqueue(outbox, { entity: 'order', key: '9', op: 'delete', version: 2 });
    await pipeline.waitForStatus([olderDelete], ['completed']);
    const record = await readRecord(target, 'order', '9');
    assert.equal(record!.deleted, false);
    assert.equal(record!.version, '4');
  });

  it('ends with the highest version of every key when many versions of each are in flight at once', async () => {
    const { outbox, target } = pipeline.stores;
    const keys = 20;
    const versions = 6;
    // Every key's versions in a scrambled order, all enqueued together so they run concurrently.
    const messages = [];
    for (let v = 1; v <= versions; v++) {
      for (let k = 0; k < keys; k++) {
        const version = ((v * 7 + k) % versions) + 1;
        const deleteIt = k % 5 === 0 && version === versions;
        messages.push(
          deleteIt
            ? { entity: 'stock', key: `k${k}`, op: 'delete' as const, version }
            : { entity: 'stock', key: `k${k}`, version, data: { version } },
        );
      }
    }
    const ids = await enqueueBatch(outbox, messages);
    await pipeline.waitForStatus(ids, ['completed'], 60_000);
    for (let k = 0; k < keys; k++) {
      const record = await readRecord(target, 'stock', `k${k}`);
      assert.equal(record!.version, String(versions), `key k${k}`);
      assert.equal(record!.deleted, k % 5 === 0, `key k${k}`);
      if (k % 5 !== 0) assert.deepEqual(record!.data, { version: versions });
    }
    // The cache holds the newest staged copy of each key too: the stage is compare-and-set.
    for (let k = 0; k < keys; k++) {
      const copy = await pipeline.stores.cache.read('stock', `k${k}`);
      assert.equal(copy!.version, String(versions), `cache for k${k}`);
    }
  });

  it('refuses an older version in the cache and in the target even when written directly', async () => {
    const { cache, target } = pipeline.stores;
    assert.equal(await cache.stage('item', 'x', { version: '10', op: 'upsert', data: '{"v":10}', messageId: 2 }), 'staged');
    assert.equal(await cache.stage('item', 'x', { version: '9', op: 'upsert', data: '{"v":9}', messageId: 1 }), 'newer-staged');
    assert.equal(await cache.stage('item', 'x', { version: '10', op: 'upsert', data: '{"v":10}', messageId: 2 }), 'already-staged');
    // Versions past 2^53 compare exactly (as decimal strings, not Lua doubles).
    assert.equal(await cache.stage('item', 'big', { version: '9007199254740993', op: 'upsert', data: '{}', messageId: 3 }), 'staged');
    assert.equal(await cache.stage('item', 'big', { version: '9007199254740992', op: 'upsert', data: '{}', messageId: 4 }), 'newer-staged');
    assert.equal((await cache.read('item', 'x'))!.data, '{"v":10}');
    // Staged copies expire: the cache is a staging area, not a second store.
    const ttl = await pipeline.stores.redis.pttl(cache.recordKey('item', 'x'));
    assert.ok(ttl > 0 && ttl <= pipeline.config.cacheTtlSeconds * 1000, `ttl ${ttl}`);

    assert.equal(await upsertRecord(target, { entity: 'item', key: 'x', version: '10', data: { v: 10 }, deleted: false, messageId: 2 }), true);
    assert.equal(await upsertRecord(target, { entity: 'item', key: 'x', version: '9', data: { v: 9 }, deleted: false, messageId: 1 }), false);
    assert.equal(await upsertRecord(target, { entity: 'item', key: 'x', version: '10', data: { v: 10 }, deleted: false, messageId: 2 }), false);
    assert.deepEqual((await readRecord(target, 'item', 'x'))!.data, { v: 10 });
  });
});
