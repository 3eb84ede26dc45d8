/**
 * The outbox page in a real browser (set up by test/support/browser.ts), its overview: the counts per
 * status and the overdue messages against the database, the two charts with their table of figures, and
 * the last verification.
 */
import assert from 'node:assert/strict';
import type { Locator } from 'playwright-core';
import { VIEWER, STATUSES, PAGE_WAIT_MS, SLA_SECONDS, chartsSettled, expectText, tableRows, sectionOf, useOutboxPage } from '../support/browser';
import { waitFor } from '../support/pipeline';

/** The latency chart's three series (servers/ui/web/src/charts.tsx). */
const LATENCY_COLOURS = ['#1d5fa8', '#9a5b00', '#6b2fa0'];

/**
 * The bands of canvas rows, top to bottom, that hold a pixel of one of `colours`: the legend at the bottom
 * is one band (its line samples); anything the chart drew in those colours above it is another.
 */
async function colourBands(canvas: Locator, colours: string[]): Promise<{ top: number; bottom: number }[]> {
  const rows = (await canvas.evaluate((element, hexes) => {
    const c = element as any;
    const { data, width, height } = c.getContext('2d').getImageData(0, 0, c.width, c.height) as { data: Uint8ClampedArray; width: number; height: number };
    const wanted = hexes.map((hex) => [1, 3, 5].map((at) => parseInt(hex.slice(at, at + 2), 16)));
    const found: number[] = [];
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 4;
        // Opaque pixels close to a series colour (anti-aliased edges are left out).
        if (data[i + 3]! > 200 && wanted.some(([r, g, b]) => Math.abs(data[i]! - r!) + Math.abs(data[i + 1]! - g!) + Math.abs(data[i + 2]! - b!) < 30)) {
          found.push(y);
          break;
        }
      }
    }
    return found;
  }, colours)) as number[];
  const bands: { top: number; bottom: number }[] = [];
  for (const y of rows) {
    const last = bands[bands.length - 1];
    if (last && y <= last.bottom + 2) last.bottom = y;
    else bands.push({ top: y, bottom: y });
  }
  return bands;
}

describe('the outbox page in a real browser: the overview', function () {
  const ui = useOutboxPage();

  it('shows counts on the overview that match the database, the oldest pending figure and the overdue count', async () => {
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
    const [{ n: overdue }] = await ui.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM outbox_messages WHERE status IN ('pending', 'processing', 'failed') AND created_at <= now() - $1 * interval '1 second'`,
      [SLA_SECONDS],
    );
    assert.equal(overdue, ui.outbox.failed.length, 'the failed messages are past the SLA, the others are not');
    await expectText(page.getByTestId('overdue'), String(overdue));
    await expectText(page.getByTestId('sla'), 'SLA 5 min 0 s');
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

  it('draws the latency of a single minute as visible points, where there is no line to draw', async () => {
    // Every completion moved into one minute, two minutes ago, each keeping its measured latency: what
    // the page shows a minute after `npm start`.
    await ui.query(
      `UPDATE outbox_messages m
          SET created_at = created_at + s.shift, updated_at = updated_at + s.shift, completed_at = completed_at + s.shift
         FROM (SELECT id, date_trunc('minute', now()) - interval '2 minutes' + make_interval(secs => id % 60) - completed_at AS shift
                 FROM outbox_messages WHERE status = 'completed') s
        WHERE m.id = s.id`,
    );
    const [{ minutes }] = await ui.query(`SELECT count(DISTINCT date_trunc('minute', completed_at))::int AS minutes FROM outbox_messages WHERE status = 'completed'`);
    assert.equal(minutes, 1);

    const page = await ui.signedIn(VIEWER);
    const section = sectionOf(page, 'End-to-end latency, last hour');
    const canvas = section.locator('canvas[role="img"]');
    await waitFor('the latency chart to have its minute', async () => (/ at \d{2}:\d{2} .*p50 \d/.test((await canvas.getAttribute('aria-label')) ?? '') ? true : undefined), PAGE_WAIT_MS);
    await section.getByText('Show as table').click();
    assert.equal((await tableRows(page, 'End-to-end latency, last hour')).length, 1, 'one minute has a latency');
    await chartsSettled(page);

    const bands = await colourBands(canvas, LATENCY_COLOURS);
    assert.ok(bands.length >= 2, `the series' colours appear only in the legend (rows ${JSON.stringify(bands)}): the minute is not drawn`);
    const drawn = bands.slice(0, -1);
    assert.ok(
      drawn.every((band) => band.bottom - band.top >= 2),
      `what is drawn above the legend is a point a person can see, at least three pixels high: ${JSON.stringify(drawn)}`,
    );
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
    await expectText(section.getByTestId('verify-when'), new RegExp(`^${checked} keys checked in [\\d.]+ m?s; ended at ${run!.at} \\+00:00 \\(\\d+ s ago\\)\\.$`));

    // A completed message's row gone from the target.
    await ui.targetQuery(`DELETE FROM synced_records WHERE (entity, entity_key) IN (SELECT entity, entity_key FROM synced_records WHERE NOT deleted LIMIT 1)`);
    assert.equal((await ui.cli(['verify'])).code, 3);
    await page.reload();
    await expectText(section.getByTestId('verify-result'), 'Failed: 1 missing, 0 stale, 0 different.');
  });
});
