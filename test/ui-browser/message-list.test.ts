/**
 * The outbox page in a real browser (set up by test/support/browser.ts), its list of failed and dead
 * messages: a filter kept in the URL, paging with "Load more", the failed messages past the SLA marked
 * overdue, and an operator's retry of all a filter matches.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { OPERATOR, VIEWER, PAGE_WAIT_MS, expectText, expectColumn, columnCells, sameSet, useOutboxPage } from '../support/browser';
import { waitFor } from '../support/pipeline';

describe('the outbox page in a real browser: the list of failed and dead messages', function () {
  const ui = useOutboxPage();

  it('narrows the list with a filter (entity, then error text) and keeps the filter in the URL', async () => {
    const page = await ui.signedIn(VIEWER, '/messages');
    await page.getByRole('heading', { name: 'Failed and dead messages' }).waitFor();
    const [{ n: all }] = await ui.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox_messages WHERE status IN ('failed', 'dead')`);
    await expectText(page.getByTestId('match-count'), new RegExp(`^\\s*${all}\\b`));

    const search = page.getByRole('search');
    await search.getByLabel('Entity').fill('shipment');
    await search.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForURL(/[?&]entity=shipment\b/);
    const [{ n: shipments }] = await ui.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM outbox_messages WHERE status IN ('failed', 'dead') AND entity = 'shipment'`,
    );
    assert.ok(shipments > 0 && shipments < all);
    await expectText(page.getByTestId('match-count'), new RegExp(`^\\s*${shipments}\\b`));
    await expectColumn(page, 'Entity', (entities) => entities.length === shipments && entities.every((e) => e === 'shipment'));

    await search.getByLabel('Entity').fill('');
    await search.getByLabel('Error contains').fill('MUST BE A JSON OBJECT');
    await search.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForURL(/[?&]error=MUST/);
    const invalid = await ui.query<{ id: string }>(
      `SELECT id FROM outbox_messages WHERE status IN ('failed', 'dead') AND last_error ILIKE '%must be a json object%'`,
    );
    assert.ok(invalid.length > 0 && invalid.length < all);
    await expectText(page.getByTestId('match-count'), new RegExp(`^\\s*${invalid.length}\\b`));
    await expectColumn(page, 'Message', (cells) => sameSet(cells, invalid.map((r) => `#${r.id}`)));

    // The URL alone brings the same view back: it can be shared.
    const shared = page.url();
    const other = await ui.signedIn(VIEWER, new URL(shared).pathname + new URL(shared).search);
    await expectText(other.getByTestId('match-count'), new RegExp(`^\\s*${invalid.length}\\b`));
    assert.equal(await other.getByRole('search').getByLabel('Error contains').inputValue(), 'MUST BE A JSON OBJECT');

    await search.getByRole('button', { name: 'Clear' }).click();
    await waitFor('the filter to leave the URL', async () => (page.url().includes('error=') ? undefined : true), PAGE_WAIT_MS);
    await expectText(page.getByTestId('match-count'), new RegExp(`^\\s*${all}\\b`));
  });

  it('pages through a long list with "Load more", newest first, each message once', async () => {
    // More dead messages than a page holds (50), under an entity of their own so the other tests' sets
    // stay as the pipeline made them. Their status is set directly: the paging is under test here, not
    // how they died.
    const entity = `import-${randomBytes(3).toString('hex')}`;
    const rows = await ui.query<{ id: string }>(
      `INSERT INTO outbox_messages (entity, entity_key, data, source) SELECT $1, 'row-' || g, '{"n": 1}', 'bulk' FROM generate_series(1, 57) g RETURNING id`,
      [entity],
    );
    const ids = rows.map((r) => Number(r.id));
    await ui.query(
      `UPDATE outbox_messages SET status = 'dead', last_error = 'refused by the import', updated_at = now() - (id % 7) * interval '1 second' WHERE id = ANY($1)`,
      [ids],
    );
    const newestFirst = (
      await ui.query<{ id: string }>(`SELECT id FROM outbox_messages WHERE id = ANY($1) ORDER BY updated_at DESC, id DESC`, [ids])
    ).map((r) => `#${r.id}`);

    const page = await ui.signedIn(VIEWER, `/messages?entity=${entity}`);
    await expectText(page.getByTestId('match-count'), /^\s*57\b/);
    await expectColumn(page, 'Message', (cells) => cells.join() === newestFirst.slice(0, 50).join());
    await page.getByRole('button', { name: 'Load more' }).click();
    await expectColumn(page, 'Message', (cells) => cells.join() === newestFirst.join());
    assert.equal(await page.getByRole('button', { name: 'Load more' }).count(), 0, 'no "Load more" after the last page');
    await ui.query(`DELETE FROM outbox_messages WHERE id = ANY($1)`, [ids]);
  });

  it('marks the failed messages past the SLA "Overdue", and no dead one', async () => {
    const page = await ui.signedIn(VIEWER, '/messages');
    const { failed, deadExhausted } = ui.outbox;
    await expectColumn(page, 'Message', (cells) => [...failed, ...deadExhausted].every((id) => cells.includes(`#${id}`)));
    const ids = await columnCells(page, 'Message');
    const statuses = await columnCells(page, 'Status');
    const statusOf = (id: number) => statuses[ids.indexOf(`#${id}`)]!.replace(/\s+/g, ' ');
    for (const id of failed) assert.equal(statusOf(id), 'Failed Overdue', `message ${id}`);
    for (const id of deadExhausted) assert.equal(statusOf(id), 'Dead', `message ${id}`);
  });

  it('lets an operator retry all of a filtered set, and moves exactly that set', async () => {
    const everything = await ui.query<{ id: string; status: string }>('SELECT id, status FROM outbox_messages ORDER BY id');
    const chosen = ui.outbox.deadInvalid;
    const page = await ui.signedIn(OPERATOR, '/messages?error=must%20be%20a%20JSON%20object');
    await expectText(page.getByTestId('match-count'), new RegExp(`^\\s*${chosen.length}\\b`));
    await page.getByRole('button', { name: `Retry all ${chosen.length}` }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('heading', { name: `Retry ${chosen.length} messages?` }).waitFor();
    await dialog.getByRole('button', { name: 'Retry' }).click();
    await expectText(page.getByRole('status').filter({ hasText: 'sent back' }), `${chosen.length} messages sent back to pending`);

    const after = await ui.query<{ id: string; status: string }>('SELECT id, status FROM outbox_messages ORDER BY id');
    const moved = after.filter((m, i) => m.status !== everything[i]!.status).map((m) => Number(m.id));
    assert.deepEqual(moved, chosen, 'exactly the filtered messages moved');
    assert.ok(after.filter((m) => chosen.includes(Number(m.id))).every((m) => m.status === 'pending'));
    const actors = await ui.query('SELECT DISTINCT actor FROM outbox_message_history WHERE message_id = ANY($1) AND to_status = $2 AND from_status = $3', [
      chosen,
      'pending',
      'dead',
    ]);
    assert.deepEqual(actors, [{ actor: `ui:${OPERATOR.name}` }]);
  });
});
