/**
 * The outbox page in a real browser (set up by test/support/browser.ts), a message's page: its fields,
 * its status history, its executions linked to Temporal, and an operator's retry through the dialog.
 */
import assert from 'node:assert/strict';
import { OPERATOR, VIEWER, expectText, tableRows, tableHeaders, descriptionList, useOutboxPage } from '../support/browser';

describe('the outbox page in a real browser: a message page', function () {
  const ui = useOutboxPage();

  it('shows a message page with its fields, its status history and its executions linked to Temporal', async () => {
    const id = ui.outbox.deadExhausted[1]!;
    const [message] = await ui.query('SELECT * FROM outbox_messages WHERE id = $1', [id]);
    const page = await ui.signedIn(VIEWER, `/messages/${id}`);
    await page.getByRole('heading', { name: `Message #${id}` }).waitFor();
    const fields = await descriptionList(page);
    assert.equal(fields.Status?.toLowerCase(), 'dead');
    assert.equal(fields.Entity, 'shipment');
    assert.equal(fields.Key, message.entity_key);
    assert.equal(fields.Source, 'warehouse');
    assert.equal(fields.Op, 'upsert');
    assert.equal(fields.Target, 'TARGET_DATABASE_URL table synced_records', 'an entity without a mapping goes to the default target');
    assert.equal(fields.Attempts, '2');
    assert.ok(fields['Workflow id']!.startsWith(message.workflow_id), fields['Workflow id']);
    assert.match(fields['Last error']!, /no carrier for the destination/);
    assert.match(fields.Data!, /"destination": "Tromsø"/, 'the data as pretty JSON');

    const history = await tableRows(page, 'Status history');
    const byHeader = await tableHeaders(page, 'Status history');
    assert.deepEqual(byHeader, ['When', 'From', 'To', 'Attempts', 'Error', 'By']);
    const to = history.map((cells) => cells[2]!.toLowerCase());
    assert.equal(to[0], 'pending', 'the history starts with the message’s creation');
    assert.equal(to.at(-1), 'dead');
    assert.equal(to.filter((s) => s === 'processing').length, 2, `two executions in ${JSON.stringify(history)}`);

    const executions = await tableRows(page, 'Executions');
    assert.equal(executions.length, 2, `both runs of the workflow: ${JSON.stringify(executions)}`);
    const links = await page.getByRole('region', { name: 'Executions' }).getByRole('link', { name: 'Open in Temporal' }).all();
    assert.equal(links.length, 2, 'a Temporal link per run');
    for (const link of links) {
      const href = (await link.getAttribute('href'))!;
      assert.ok(href.startsWith('http://127.0.0.1:8233/'), href);
      assert.ok(href.includes(encodeURIComponent(message.workflow_id)) || href.includes(message.workflow_id), href);
      assert.equal(await link.getAttribute('target'), '_blank');
      assert.match((await link.getAttribute('rel')) ?? '', /\bnoopener\b/);
    }
  });

  it('lets an operator retry a dead message from its page through the confirmation dialog, recorded as ui:<name>', async () => {
    const id = ui.outbox.deadExhausted[0]!;
    const page = await ui.signedIn(OPERATOR, `/messages/${id}`);
    await page.getByRole('heading', { name: `Message #${id}` }).waitFor();
    await page.getByRole('button', { name: 'Retry this message' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('heading', { name: `Retry message #${id}?` }).waitFor();
    await dialog.getByRole('button', { name: 'Retry' }).click();
    await expectText(page.getByRole('status').filter({ hasText: 'sent back' }), `Message #${id} sent back to pending`);
    assert.deepEqual(await ui.statusOf([id]), ['pending']);
    const [last] = await ui.query('SELECT from_status, to_status, actor FROM outbox_message_history WHERE message_id = $1 ORDER BY id DESC LIMIT 1', [id]);
    assert.deepEqual(last, { from_status: 'dead', to_status: 'pending', actor: `ui:${OPERATOR.name}` });
    // The page reloads the message: it now reads pending, with the retry in its history, and no retry button.
    await expectText(page.getByRole('definition').filter({ hasText: /^pending$/i }).first(), /^pending$/i);
    await expectText(page.getByRole('cell', { name: `ui:${OPERATOR.name}` }).first(), `ui:${OPERATOR.name}`);
    assert.equal(await page.getByRole('button', { name: 'Retry this message' }).count(), 0);
  });
});
