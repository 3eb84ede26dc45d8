/**
 * The outbox page in a real browser (set up by test/support/browser.ts), its overview: the counts per
 * status against the database, the two charts with their table of figures, and the last verification.
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

  it('shows the last verification: not run yet, then what the verify command found and when it ran', async () => {
    const page = await ui.signedIn(VIEWER);
    const section = sectionOf(page, 'Last verification');
    await expectText(section.getByTestId('verify-result'), /^Not run yet: outbox-sync verify compares/);

    const passed = await ui.cli(['verify', '--json']);
    assert.equal(passed.code, 0, passed.stderr);
    const { checked } = JSON.parse(passed.stdout) as { checked: number };
    assert.ok(checked > 0);
    await page.reload();
    await expectText(section.getByTestId('verify-result'), 'Passed: the target matches the outbox.');
    // The page is in UTC (test/support/browser.ts): the time of the run as the database recorded it.
    const [run] = await ui.query<{ at: string }>(`SELECT to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS at FROM outbox_verify_runs ORDER BY id DESC LIMIT 1`);
    await expectText(section.getByTestId('verify-when'), new RegExp(`^${checked} keys checked in [\\d.]+ m?s; ended at ${run!.at} \\(\\d+ s ago\\)\\.$`));

    // A completed message's row gone from the target.
    await ui.targetQuery(`DELETE FROM synced_records WHERE (entity, entity_key) IN (SELECT entity, entity_key FROM synced_records WHERE NOT deleted LIMIT 1)`);
    assert.equal((await ui.cli(['verify'])).code, 3);
    await page.reload();
    await expectText(section.getByTestId('verify-result'), 'Failed: 1 missing, 0 stale, 0 different.');
  });
});
