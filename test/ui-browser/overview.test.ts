/**
 * The outbox page in a real browser (set up by test/support/browser.ts), its overview: the counts per
 * status against the database, and the two charts with their table of figures.
 */
import assert from 'node:assert/strict';
import { VIEWER, STATUSES, PAGE_WAIT_MS, expectText, tableRows, sectionOf, useOutboxPage } from '../support/browser';
import { waitFor } from '../support/pipeline';

describe('the outbox page in a real browser: the overview', function () {
  const ui = useOutboxPage();

  it('shows counts on the overview that match the database, and the oldest pending figure', async () => {
    const page = await ui.signedIn(VIEWER);
    await page.getByLabel('Counts by status').waitFor();
    const rows = await ui.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM outbox_messages GROUP BY status');
    const inDatabase = Object.fromEntries(STATUSES.map((s) => [s, rows.find((r) => r.status === s)?.n ?? 0]));
    for (const status of STATUSES) {
      assert.ok(inDatabase[status]! > 0, `the outbox has ${status} messages to show`);
      await expectText(page.getByTestId(`count-${status}`), String(inDatabase[status]));
    }
    // There are pending messages, so the figure is an age (digits), not a dash.
    await expectText(page.getByTestId('oldest-pending'), /\d/);
    assert.ok(await page.getByText('Oldest pending').first().isVisible());
    await expectText(page.getByText(/Updated \d{2}:\d{2}:\d{2}/), /Updated/);
  });

  it('draws both charts as labelled images and lists the completed messages by minute in the activity table', async () => {
    const page = await ui.signedIn(VIEWER);
    for (const title of ['Throughput, last hour', 'End-to-end latency, last hour']) {
      await page.getByRole('heading', { name: title }).waitFor();
    }
    const charts = page.locator('canvas[role="img"]');
    await waitFor('two labelled charts', async () => ((await charts.count()) === 2 ? true : undefined), PAGE_WAIT_MS);
    for (const chart of await charts.all()) {
      const label = await chart.getAttribute('aria-label');
      assert.ok(label && label.trim().length > 0, 'the chart has a summary');
      assert.match(label!, /\d/, `the summary gives figures: ${label}`);
    }
    const completedByMinute = await ui.query<{ minute: string; n: number }>(
      `SELECT to_char(date_trunc('minute', completed_at) AT TIME ZONE 'UTC', 'HH24:MI') AS minute, count(*)::int AS n
         FROM outbox_messages WHERE status = 'completed' AND completed_at > now() - interval '59 minutes' GROUP BY 1`,
    );
    assert.ok(completedByMinute.length > 0);
    // The table may sit in a closed <details> ("Show as table"); open it as a reader would.
    const showTable = sectionOf(page, 'Throughput, last hour').getByText('Show as table');
    if ((await showTable.count()) > 0) await showTable.first().click();
    const rows = await tableRows(page, 'Throughput, last hour');
    for (const { minute, n } of completedByMinute) {
      const row = rows.find((cells) => cells[0]!.includes(minute));
      assert.ok(row, `a row for ${minute} in ${JSON.stringify(rows.slice(-5))}`);
      assert.ok(row.slice(1).includes(String(n)), `${n} completed at ${minute}: ${JSON.stringify(row)}`);
    }
  });
});
