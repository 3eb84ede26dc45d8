/**
 * The outbox page in a real browser: Debian's Chromium (through playwright-core) against the real
 * `outbox-sync ui` process, over an outbox the real pipeline filled. Messages reach completed and dead
 * through a worker and dispatcher; the pipeline then stops so that every status holds still while the
 * page is read. Elements are found by the names the page's contract gives them (role, label, test id).
 *
 * With UI_SCREENSHOTS=docs the run also saves docs/ui-overview.png, docs/ui-failed.png and
 * docs/ui-message.png (`npm run docs:screenshots`).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { packageRoot } from '../config/package-root';
import { enqueue } from '../stores/outbox/enqueue';
import { launchBrowser } from './support/browser';
import { TestPipeline, waitFor } from './support/pipeline';
import { ProcessGroup, type RunningProcess } from './support/processes';
import { freePort } from './support/stack';

const SCREENSHOTS = process.env.UI_SCREENSHOTS === 'docs';
const OPERATOR = { name: 'alice', token: `alice-${randomBytes(12).toString('hex')}` };
const VIEWER = { name: 'audit', token: `audit-${randomBytes(12).toString('hex')}` };
const STATUSES = ['pending', 'processing', 'completed', 'failed', 'dead'] as const;
const VIEWPORT = { width: 1366, height: 768 };
/** The three views every page-wide check visits. */
const VIEWS = ['overview', 'list', 'message page'] as const;
type View = (typeof VIEWS)[number];
/** How long the page may take to show what the database holds. */
const PAGE_WAIT_MS = 10_000;

/** The messages the pipeline produced, by what happened to them. */
interface Outbox {
  completed: number[];
  /** Data no retry can fix (a JSON array): dead at once, a permanent fault. */
  deadInvalid: number[];
  /** A plain-SQL insert with no data for an upsert: dead at once too, for another reason. */
  deadNoData: number;
  /** Refused by the target every time: dead once the executions ran out. */
  deadExhausted: number[];
  /** Refused by the target once, waiting for a redrive that never comes in this test. */
  failed: number[];
  /** Claimed and started, with no worker left to run them. */
  processing: number[];
  pending: number[];
}

describe('the outbox page in a real browser (Debian Chromium)', function () {
  let pipeline: TestPipeline;
  let processes: ProcessGroup;
  let ui: RunningProcess;
  let base: string;
  let browser: Browser;
  let outbox: Outbox;
  const contexts: BrowserContext[] = [];

  before(async function () {
    this.timeout(240_000);
    browser = await launchBrowser(); // first: a missing Chromium fails in one line, before any work
    pipeline = await TestPipeline.create({
      env: { OUTBOX_SYNC_MAX_EXECUTIONS: '2', OUTBOX_SYNC_ACTIVITY_MAX_ATTEMPTS: '2', TEMPORAL_UI_URL: 'http://127.0.0.1:8233' },
    });
    outbox = await fillOutbox(pipeline, SCREENSHOTS ? 400 : 30);
    if (SCREENSHOTS) await spreadCompletionsOverTheHour(pipeline);
    processes = new ProcessGroup(pipeline);
    const port = await freePort();
    ui = processes.start('ui', {
      OUTBOX_SYNC_UI_PORT: String(port),
      OUTBOX_SYNC_UI_HOST: '127.0.0.1',
      OUTBOX_SYNC_UI_TOKENS: `${OPERATOR.name}=${OPERATOR.token},${VIEWER.name}=${VIEWER.token}`,
      OUTBOX_SYNC_UI_OPERATORS: OPERATOR.name,
    });
    base = `http://127.0.0.1:${port}`;
    await waitFor('the ui server to answer', async () => {
      if (ui.child.exitCode !== null) throw new Error(`outbox-sync ui exited with ${ui.child.exitCode}: ${ui.output()}`);
      return (await fetch(`${base}/api/me`).catch(() => undefined))?.status === 401 ? true : undefined;
    });
  });

  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((c) => c.close()));
  });

  after(async () => {
    await browser?.close();
    processes?.killAll();
    if (pipeline) {
      // The processing messages' workflows have no worker left; end them rather than leave them running.
      for (const id of outbox?.processing ?? []) {
        await pipeline.client.workflow.getHandle(`${pipeline.config.workflowIdPrefix}${id}`).terminate('test over').catch(() => undefined);
      }
      await pipeline.close();
    }
  });

  /**
   * A fresh browser context (its own cookies), at 1366×768, in UTC so that times read predictably.
   * `injectScripts` lets a test add a script of its own (axe-core) past the page's script-src 'self'.
   */
  async function newPage(options: { injectScripts?: boolean } = {}): Promise<Page> {
    const context = await browser.newContext({
      viewport: VIEWPORT,
      timezoneId: 'UTC',
      locale: 'en-GB',
      baseURL: base,
      bypassCSP: options.injectScripts ?? false,
    });
    context.setDefaultTimeout(PAGE_WAIT_MS);
    contexts.push(context);
    return context.newPage();
  }

  /** Signs in through the form, as a person would, and waits for the overview. */
  async function signedIn(who: { token: string }, path = '/', options: { injectScripts?: boolean } = {}): Promise<Page> {
    const page = await newPage(options);
    await page.goto('/');
    await page.getByLabel('Token').fill(who.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    if (path !== '/') await page.goto(path);
    return page;
  }

  async function query<T = any>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await pipeline.stores.outbox.query(sql, params)).rows;
  }

  async function statusOf(ids: number[]): Promise<string[]> {
    const rows = await query<{ status: string }>('SELECT status FROM outbox_messages WHERE id = ANY($1) ORDER BY id', [ids]);
    return rows.map((r) => r.status);
  }

  if (SCREENSHOTS) {
    // First, while every message still has the status the pipeline gave it.
    it('saves the overview, the failed and dead list and a message page as screenshots for the docs', async () => {
      const page = await signedIn(OPERATOR);
      await page.getByTestId('count-completed').waitFor();
      await chartsSettled(page);
      await page.screenshot({ path: join(packageRoot, 'docs', 'ui-overview.png') });
      await page.goto('/messages');
      await page.getByRole('heading', { name: 'Failed and dead messages' }).waitFor();
      await page.getByRole('link', { name: `#${outbox.deadExhausted[0]}` }).waitFor();
      await page.screenshot({ path: join(packageRoot, 'docs', 'ui-failed.png') });
      await page.goto(`/messages/${outbox.deadExhausted[1]}`);
      await page.getByRole('heading', { name: 'Executions' }).waitFor();
      await page.getByRole('link', { name: 'Open in Temporal' }).first().waitFor();
      await page.screenshot({ path: join(packageRoot, 'docs', 'ui-message.png') });
    });
  }

  it('shows an unauthenticated visitor the sign-in form and no outbox data, and answers 401 on every /api route', async () => {
    const page = await newPage();
    const answered: { url: string; status: number }[] = [];
    page.on('response', (r) => {
      if (new URL(r.url()).pathname.startsWith('/api/')) answered.push({ url: r.url(), status: r.status() });
    });
    for (const path of ['/', '/messages', `/messages/${outbox.deadExhausted[0]}`]) {
      await page.goto(path);
      await page.getByRole('heading', { name: 'Sign in to the outbox' }).waitFor();
      await page.getByLabel('Token').waitFor();
      await page.getByRole('button', { name: 'Sign in' }).waitFor();
      const text = await page.locator('body').innerText();
      assert.doesNotMatch(text, /#\d+/, `no message id on the sign-in page at ${path}`);
      for (const key of ['SHP-20931', 'ORD-10412', 'MTR-0081']) assert.ok(!text.includes(key), `${key} is not on the page at ${path}`);
      assert.equal(await page.getByTestId(/^count-/).count(), 0, 'no counts');
      assert.equal(await page.getByTestId('oldest-pending').count(), 0, 'no oldest-pending figure');
    }
    assert.ok(answered.length > 0, 'the page asked the API who is signed in');
    assert.deepEqual(answered.filter((a) => a.status !== 401), [], 'every API answer was 401');

    const id = outbox.deadExhausted[0];
    const reads = ['/api/me', '/api/status', '/api/activity', '/api/messages', '/api/messages?status=completed', `/api/messages/${id}`];
    for (const path of reads) {
      const answer = await fetch(`${base}${path}`);
      assert.equal(answer.status, 401, path);
      assert.deepEqual(await answer.json(), { error: 'sign in with an outbox page token' }, path);
    }
    for (const path of [`/api/messages/${id}/retry`, '/api/retry']) {
      const answer = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal(answer.status, 401, path);
    }
    const wrongBearer = await fetch(`${base}/api/status`, { headers: { authorization: 'Bearer not-a-token' } });
    assert.equal(wrongBearer.status, 401);
    assert.deepEqual(await statusOf([id!]), ['dead'], 'nothing moved');
  });

  it('shows the "unknown token" alert for a wrong token, and stays on the sign-in form', async () => {
    const page = await newPage();
    await page.goto('/');
    await page.getByLabel('Token').fill('this-is-not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expectText(page.getByRole('alert'), /unknown token/);
    assert.ok(await page.getByRole('heading', { name: 'Sign in to the outbox' }).isVisible());
    assert.equal(await page.getByTestId(/^count-/).count(), 0);
  });

  it('signs in with a #token= link once, removes the token from the address bar, and signs out', async () => {
    const page = await newPage();
    await page.goto(`/#token=${VIEWER.token}`);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await waitFor('the token to leave the address bar', async () => (page.url().includes(VIEWER.token) ? undefined : true), PAGE_WAIT_MS);
    await expectText(page.getByRole('banner'), new RegExp(VIEWER.name));
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to the outbox' }).waitFor();
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in to the outbox' }).waitFor();
  });

  it('shows counts on the overview that match the database, and the oldest pending figure', async () => {
    const page = await signedIn(VIEWER);
    await page.getByLabel('Counts by status').waitFor();
    const rows = await query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM outbox_messages GROUP BY status');
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
    const page = await signedIn(VIEWER);
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
    const completedByMinute = await query<{ minute: string; n: number }>(
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

  it('narrows the list with a filter (entity, then error text) and keeps the filter in the URL', async () => {
    const page = await signedIn(VIEWER, '/messages');
    await page.getByRole('heading', { name: 'Failed and dead messages' }).waitFor();
    const [{ n: all }] = await query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox_messages WHERE status IN ('failed', 'dead')`);
    await expectText(page.getByTestId('match-count'), new RegExp(`^\\s*${all}\\b`));

    const search = page.getByRole('search');
    await search.getByLabel('Entity').fill('shipment');
    await search.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForURL(/[?&]entity=shipment\b/);
    const [{ n: shipments }] = await query<{ n: number }>(
      `SELECT count(*)::int AS n FROM outbox_messages WHERE status IN ('failed', 'dead') AND entity = 'shipment'`,
    );
    assert.ok(shipments > 0 && shipments < all);
    await expectText(page.getByTestId('match-count'), new RegExp(`^\\s*${shipments}\\b`));
    await expectColumn(page, 'Entity', (entities) => entities.length === shipments && entities.every((e) => e === 'shipment'));

    await search.getByLabel('Entity').fill('');
    await search.getByLabel('Error contains').fill('MUST BE A JSON OBJECT');
    await search.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForURL(/[?&]error=MUST/);
    const invalid = await query<{ id: string }>(
      `SELECT id FROM outbox_messages WHERE status IN ('failed', 'dead') AND last_error ILIKE '%must be a json object%'`,
    );
    assert.ok(invalid.length > 0 && invalid.length < all);
    await expectText(page.getByTestId('match-count'), new RegExp(`^\\s*${invalid.length}\\b`));
    await expectColumn(page, 'Message', (cells) => sameSet(cells, invalid.map((r) => `#${r.id}`)));

    // The URL alone brings the same view back: it can be shared.
    const shared = page.url();
    const other = await signedIn(VIEWER, new URL(shared).pathname + new URL(shared).search);
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
    const rows = await query<{ id: string }>(
      `INSERT INTO outbox_messages (entity, entity_key, data, source) SELECT $1, 'row-' || g, '{"n": 1}', 'bulk' FROM generate_series(1, 57) g RETURNING id`,
      [entity],
    );
    const ids = rows.map((r) => Number(r.id));
    await query(
      `UPDATE outbox_messages SET status = 'dead', last_error = 'refused by the import', updated_at = now() - (id % 7) * interval '1 second' WHERE id = ANY($1)`,
      [ids],
    );
    const newestFirst = (
      await query<{ id: string }>(`SELECT id FROM outbox_messages WHERE id = ANY($1) ORDER BY updated_at DESC, id DESC`, [ids])
    ).map((r) => `#${r.id}`);

    const page = await signedIn(VIEWER, `/messages?entity=${entity}`);
    await expectText(page.getByTestId('match-count'), /^\s*57\b/);
    await expectColumn(page, 'Message', (cells) => cells.join() === newestFirst.slice(0, 50).join());
    await page.getByRole('button', { name: 'Load more' }).click();
    await expectColumn(page, 'Message', (cells) => cells.join() === newestFirst.join());
    assert.equal(await page.getByRole('button', { name: 'Load more' }).count(), 0, 'no "Load more" after the last page');
    await query(`DELETE FROM outbox_messages WHERE id = ANY($1)`, [ids]);
  });

  it('shows a message page with its fields, its status history and its executions linked to Temporal', async () => {
    const id = outbox.deadExhausted[1]!;
    const [message] = await query('SELECT * FROM outbox_messages WHERE id = $1', [id]);
    const page = await signedIn(VIEWER, `/messages/${id}`);
    await page.getByRole('heading', { name: `Message #${id}` }).waitFor();
    const fields = await descriptionList(page);
    assert.equal(fields.Status?.toLowerCase(), 'dead');
    assert.equal(fields.Entity, 'shipment');
    assert.equal(fields.Key, message.entity_key);
    assert.equal(fields.Source, 'warehouse');
    assert.equal(fields.Op, 'upsert');
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
    const id = outbox.deadExhausted[0]!;
    const page = await signedIn(OPERATOR, `/messages/${id}`);
    await page.getByRole('heading', { name: `Message #${id}` }).waitFor();
    await page.getByRole('button', { name: 'Retry this message' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('heading', { name: `Retry message #${id}?` }).waitFor();
    await dialog.getByRole('button', { name: 'Retry' }).click();
    await expectText(page.getByRole('status').filter({ hasText: 'sent back' }), `Message #${id} sent back to pending`);
    assert.deepEqual(await statusOf([id]), ['pending']);
    const [last] = await query('SELECT from_status, to_status, actor FROM outbox_message_history WHERE message_id = $1 ORDER BY id DESC LIMIT 1', [id]);
    assert.deepEqual(last, { from_status: 'dead', to_status: 'pending', actor: `ui:${OPERATOR.name}` });
    // The page reloads the message: it now reads pending, with the retry in its history, and no retry button.
    await expectText(page.getByRole('definition').filter({ hasText: /^pending$/i }).first(), /^pending$/i);
    await expectText(page.getByRole('cell', { name: `ui:${OPERATOR.name}` }).first(), `ui:${OPERATOR.name}`);
    assert.equal(await page.getByRole('button', { name: 'Retry this message' }).count(), 0);
  });

  it('lets an operator retry all of a filtered set, and moves exactly that set', async () => {
    const everything = await query<{ id: string; status: string }>('SELECT id, status FROM outbox_messages ORDER BY id');
    const chosen = outbox.deadInvalid;
    const page = await signedIn(OPERATOR, '/messages?error=must%20be%20a%20JSON%20object');
    await expectText(page.getByTestId('match-count'), new RegExp(`^\\s*${chosen.length}\\b`));
    await page.getByRole('button', { name: `Retry all ${chosen.length}` }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('heading', { name: `Retry ${chosen.length} messages?` }).waitFor();
    await dialog.getByRole('button', { name: 'Retry' }).click();
    await expectText(page.getByRole('status').filter({ hasText: 'sent back' }), `${chosen.length} messages sent back to pending`);

    const after = await query<{ id: string; status: string }>('SELECT id, status FROM outbox_messages ORDER BY id');
    const moved = after.filter((m, i) => m.status !== everything[i]!.status).map((m) => Number(m.id));
    assert.deepEqual(moved, chosen, 'exactly the filtered messages moved');
    assert.ok(after.filter((m) => chosen.includes(Number(m.id))).every((m) => m.status === 'pending'));
    const actors = await query('SELECT DISTINCT actor FROM outbox_message_history WHERE message_id = ANY($1) AND to_status = $2 AND from_status = $3', [
      chosen,
      'pending',
      'dead',
    ]);
    assert.deepEqual(actors, [{ actor: `ui:${OPERATOR.name}` }]);
  });

  it('shows a read-only token no retry buttons, and refuses its forced retry with 403', async () => {
    const id = outbox.deadNoData;
    const page = await signedIn(VIEWER, '/messages');
    await page.getByRole('heading', { name: 'Failed and dead messages' }).waitFor();
    await page.getByTestId('match-count').waitFor();
    await page.getByRole('link', { name: `#${id}` }).waitFor();
    assert.equal(await page.getByRole('button', { name: /retry/i }).count(), 0, 'no retry button on the list');
    await page.goto(`/messages/${id}`);
    await page.getByRole('heading', { name: `Message #${id}` }).waitFor();
    await page.getByRole('heading', { name: 'Status history' }).waitFor();
    assert.equal(await page.getByRole('button', { name: /retry/i }).count(), 0, 'no retry button on the message page');

    // The same requests the buttons would send, from the page itself, with the viewer's cookie.
    const forced = await page.evaluate(async (id) => {
      const post = async (path: string, body: object) => {
        const answer = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        return { status: answer.status, body: (await answer.json()) as { error: string } };
      };
      return [await post(`/api/messages/${id}/retry`, {}), await post('/api/retry', { status: 'failed,dead' })];
    }, id);
    for (const answer of forced) {
      assert.equal(answer.status, 403);
      assert.equal(answer.body.error, 'this token may look but not act (add its name to OUTBOX_SYNC_UI_OPERATORS)');
    }
    assert.deepEqual(await statusOf([id]), ['dead']);
  });

  it('works with the keyboard alone: skip link, filter form, and the retry dialog (Tab, Enter, Escape)', async () => {
    const id = outbox.failed[0]!;
    const [{ entity_key: key }] = await query('SELECT entity_key FROM outbox_messages WHERE id = $1', [id]);
    const page = await signedIn(OPERATOR, '/messages');
    await page.getByRole('heading', { name: 'Failed and dead messages' }).waitFor();
    await page.getByTestId('match-count').waitFor();

    await page.keyboard.press('Tab');
    assert.ok(await isFocused(page.getByRole('link', { name: 'Skip to content' })), 'the skip link comes first');
    await tabTo(page, page.getByRole('search').getByLabel('Key'));
    await page.keyboard.type(key);
    await page.keyboard.press('Enter');
    await page.waitForURL(new RegExp(`[?&]key=${key}\\b`));
    await expectText(page.getByTestId('match-count'), /^\s*1\b/);

    const retryAll = page.getByRole('button', { name: 'Retry all 1' });
    await tabTo(page, retryAll);
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('heading', { name: /Retry 1 messages?\?/ }).waitFor();
    assert.ok(await dialog.evaluate((el) => el.contains(el.ownerDocument.activeElement)), 'focus moved into the dialog');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert.deepEqual(await statusOf([id]), ['failed'], 'Escape cancels');
    assert.ok(await isFocused(retryAll), 'focus returns to the button that opened the dialog');

    await page.keyboard.press('Enter');
    await dialog.waitFor();
    await tabTo(page, dialog.getByRole('button', { name: 'Retry' }));
    await page.keyboard.press('Enter');
    await expectText(page.getByRole('status').filter({ hasText: 'sent back' }), /1 messages? sent back to pending/);
    assert.deepEqual(await statusOf([id]), ['pending']);
  });

  for (const view of VIEWS) {
    it(`has no serious or critical accessibility violations (axe-core) on the ${view}`, async () => {
      const page = await openView(view, { injectScripts: true });
      await page.addScriptTag({ path: require.resolve('axe-core/axe.min.js') });
      const result = (await page.evaluate(`axe.run(document, { resultTypes: ['violations'] })`)) as AxeResult;
      const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      assert.deepEqual(
        serious.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`),
        [],
      );
    });
  }

  it('runs under its strict Content-Security-Policy without the browser blocking anything, on every view', async () => {
    for (const view of VIEWS) {
      const blocked: string[] = [];
      const page = await newPage();
      page.on('console', (m) => {
        if (/Content Security Policy/i.test(m.text())) blocked.push(m.text());
      });
      const answer = await page.goto('/');
      assert.match(answer!.headers()['content-security-policy'] ?? '', /script-src 'self'/);
      await page.getByLabel('Token').fill(OPERATOR.token);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Overview' }).waitFor();
      await showView(page, view);
      assert.deepEqual(blocked, [], `the ${view} ran into the CSP`);
    }
  });

  it('fits 1366×768 without scrolling the page sideways, on the overview, the list and a message page', async () => {
    for (const view of VIEWS) {
      const page = await openView(view);
      const overflow = (await page.evaluate(`document.documentElement.scrollWidth - document.documentElement.clientWidth`)) as number;
      assert.ok(overflow <= 0, `the ${view} is ${overflow} px wider than the window`);
    }
  });

  /** Opens one of the three views as the operator (who sees the most) and waits until it shows its data. */
  async function openView(view: View, options: { injectScripts?: boolean } = {}): Promise<Page> {
    const page = await signedIn(OPERATOR, '/', options);
    await showView(page, view);
    return page;
  }

  /** Goes to a view and waits until it shows its data. */
  async function showView(page: Page, view: View): Promise<void> {
    if (view === 'overview') {
      await page.getByTestId('count-completed').waitFor();
      await page.locator('canvas[role="img"]').first().waitFor();
    } else if (view === 'list') {
      await page.goto('/messages');
      await page.getByRole('link', { name: `#${outbox.deadNoData}` }).waitFor();
    } else {
      await page.goto(`/messages/${outbox.deadExhausted[1]}`);
      await page.getByRole('heading', { name: 'Executions' }).waitFor();
      await page.getByRole('link', { name: 'Open in Temporal' }).first().waitFor();
    }
  }
});

interface AxeResult {
  violations: { id: string; impact: string | null; help: string; nodes: { target: string[] }[] }[];
}

/**
 * Runs the real pipeline over a realistic mix of messages and stops it with every status represented:
 * completed, dead (a permanent fault, and executions run out), failed, processing and pending.
 */
async function fillOutbox(pipeline: TestPipeline, completedCount: number): Promise<Outbox> {
  const { outbox } = pipeline.stores;
  // The target refuses these shipments every time, as a misconfigured carrier table would.
  await pipeline.targetAdmin(`
    CREATE FUNCTION refuse_shipment() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'shipment % refused: no carrier for the destination', NEW.entity_key; END $$;
    CREATE TRIGGER refuse_shipment BEFORE INSERT OR UPDATE ON synced_records
      FOR EACH ROW WHEN (NEW.entity = 'shipment') EXECUTE FUNCTION refuse_shipment();`);

  // 1. A worker and a running dispatcher: completions, and deaths of both kinds.
  await pipeline.startWorker();
  pipeline.startDispatcher();
  const completed: number[] = [];
  for (let i = 0; i < completedCount; i++) completed.push(await enqueue(outbox, businessMessage(i)));
  const { rows } = await outbox.query(
    `INSERT INTO outbox_messages (source, entity, entity_key, data)
     SELECT 'press-7', 'meter-reading', 'MTR-' || lpad(n::text, 4, '0'), '[412.7, 413.1]'::jsonb FROM generate_series(81, 84) n
     UNION ALL SELECT 'press-7', 'meter-reading', 'MTR-0085', NULL
     RETURNING id`,
  );
  const invalid = rows.map((r) => Number(r.id));
  const deadExhausted = [
    await enqueue(outbox, shipment('SHP-20931', 'Tromsø')),
    await enqueue(outbox, shipment('SHP-20977', 'Tromsø')),
  ];
  await pipeline.waitForStatus(completed, ['completed'], 120_000);
  await pipeline.waitForStatus([...invalid, ...deadExhausted], ['dead'], 60_000);
  await pipeline.stopDispatchers();

  // 2. Refused once, with no redrive pass afterwards: they stay failed.
  const failed = [
    await enqueue(outbox, shipment('SHP-21004', 'Hammerfest')),
    await enqueue(outbox, shipment('SHP-21011', 'Kirkenes')),
    await enqueue(outbox, shipment('SHP-21016', 'Vardø')),
  ];
  const dispatcher = pipeline.createDispatcher();
  await waitFor('the failing shipments to be claimed', async () => ((await dispatcher.dispatchOnce()) === 0 ? true : undefined));
  await pipeline.waitForStatus(failed, ['failed']);

  // 3. No worker: claimed and started, they stay processing.
  await pipeline.stopWorkers();
  const processing = [
    await enqueue(outbox, { source: 'shop-web', entity: 'order', key: 'ORD-11206', data: order(206) }),
    await enqueue(outbox, { source: 'shop-web', entity: 'order', key: 'ORD-11207', data: order(207) }),
  ];
  await waitFor('the last orders to be claimed', async () => ((await dispatcher.dispatchOnce()) === 0 ? true : undefined));
  await pipeline.waitForStatus(processing, ['processing']);
  await pipeline.stopDispatchers();

  // 4. Nothing dispatches any more: these stay pending.
  const pending = [
    await enqueue(outbox, { source: 'crm', entity: 'customer', key: 'CUS-3318', data: { name: 'Ingrid Solberg', tier: 'gold' } }),
    await enqueue(outbox, { source: 'crm', entity: 'customer', key: 'CUS-3319', data: { name: 'Jonas Berg', tier: 'standard' } }),
    await enqueue(outbox, { source: 'billing', entity: 'invoice', key: 'INV-2026-0917', data: { amount: 1290.5, currency: 'NOK' } }),
  ];
  return {
    completed,
    deadInvalid: invalid.slice(0, 4),
    deadNoData: invalid[4]!,
    deadExhausted,
    failed,
    processing,
    pending,
  };
}

/** Orders, customers and invoices in a plausible mix, with versions as producers send them. */
function businessMessage(i: number): { source: string; entity: string; key: string; data: Record<string, unknown> } {
  switch (i % 3) {
    case 0:
      return { source: 'shop-web', entity: 'order', key: `ORD-${10412 + i}`, data: order(i) };
    case 1:
      return { source: 'crm', entity: 'customer', key: `CUS-${2201 + i}`, data: { name: `Customer ${2201 + i}`, tier: i % 7 === 0 ? 'gold' : 'standard' } };
    default:
      return { source: 'billing', entity: 'invoice', key: `INV-2026-${String(500 + i).padStart(4, '0')}`, data: { amount: 100 + ((i * 37) % 900), currency: 'NOK' } };
  }
}

function order(i: number): Record<string, unknown> {
  return { customer: `CUS-${2201 + (i % 40)}`, total: 49 + ((i * 53) % 1500), currency: 'NOK', lines: 1 + (i % 4) };
}

function shipment(key: string, destination: string): { source: string; entity: string; key: string; data: Record<string, unknown> } {
  return { source: 'warehouse', entity: 'shipment', key, data: { destination, parcels: 2, weightKg: 14.5 } };
}

/**
 * For the docs' pictures only: the pipeline completed everything within seconds, which draws one bar.
 * Shifting each completed message (its creation and completion alike, so latencies stay the measured
 * ones) back by up to 55 minutes, fewer the further back, draws the hour an operator would see.
 */
async function spreadCompletionsOverTheHour(pipeline: TestPipeline): Promise<void> {
  await pipeline.stores.outbox.query(
    `UPDATE outbox_messages
        SET created_at = created_at - shift, updated_at = updated_at - shift, completed_at = completed_at - shift
       FROM (SELECT id AS shifted, make_interval(secs => floor(3300 * power(((id * 7919) % 997) / 997.0, 1.5))) AS shift
               FROM outbox_messages WHERE status = 'completed') s
      WHERE id = s.shifted`,
  );
}

/** Polls a locator's text until it equals (or matches) what is expected; fails with the last text seen. */
async function expectText(locator: Locator, expected: string | RegExp, timeoutMs = PAGE_WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const seen = (await locator.first().textContent({ timeout: Math.max(1, deadline - Date.now()) }).catch(() => null))?.trim() ?? null;
    if (seen !== null && (typeof expected === 'string' ? seen === expected : expected.test(seen))) return;
    if (Date.now() > deadline) assert.fail(`expected ${locator} to read ${expected}, saw ${JSON.stringify(seen)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The messages table's cells in one column, once `accept` takes them. */
async function expectColumn(page: Page, header: string, accept: (cells: string[]) => boolean): Promise<void> {
  let cells: string[] = [];
  await waitFor(
    `the ${header} column to show the filtered messages`,
    async () => {
      cells = await columnCells(page, header);
      return accept(cells) ? true : undefined;
    },
    PAGE_WAIT_MS,
  ).catch(() => assert.fail(`the ${header} column did not show what was expected: ${JSON.stringify(cells)}`));
}

async function columnCells(page: Page, header: string): Promise<string[]> {
  const table = page.getByRole('table').filter({ has: page.getByRole('columnheader', { name: header, exact: true }) }).first();
  const headers = (await table.getByRole('columnheader').allInnerTexts()).map((h) => h.trim());
  const index = headers.indexOf(header);
  const rows = await table.locator('tbody tr').all();
  const cells: string[] = [];
  for (const row of rows) cells.push((await row.locator('td, th').nth(index).innerText()).trim());
  return cells;
}

/** The body rows (cell texts) of the table under a heading's section. */
async function tableRows(page: Page, heading: string): Promise<string[][]> {
  const table = sectionOf(page, heading).locator('table').first();
  await table.waitFor({ state: 'attached' });
  return (await table.locator('tbody tr').evaluateAll((rows) =>
    rows.map((row) => Array.from(row.querySelectorAll('th, td')).map((cell: any) => (cell.textContent ?? '').trim())),
  )) as string[][];
}

async function tableHeaders(page: Page, heading: string): Promise<string[]> {
  const table = sectionOf(page, heading).locator('table').first();
  return (await table.locator('thead th').allTextContents()).map((h) => h.trim());
}

/** The element that holds a heading and what follows it (a section, or the nearest enclosing block). */
function sectionOf(page: Page, heading: string): Locator {
  return page.locator('section, [role="region"], figure, article').filter({ has: page.getByRole('heading', { name: heading, exact: true }) }).last();
}

/** The message page's description list as { term: definition }. */
async function descriptionList(page: Page): Promise<Record<string, string>> {
  const list = page.locator('dl').first();
  await list.waitFor();
  return (await list.evaluate((dl) => {
    const pairs: Record<string, string> = {};
    let term = '';
    for (const child of Array.from(dl.querySelectorAll('dt, dd')) as any[]) {
      if (child.tagName === 'DT') term = (child.textContent ?? '').trim();
      else pairs[term] = (child.textContent ?? '').trim();
    }
    return pairs;
  })) as Record<string, string>;
}

async function isFocused(locator: Locator): Promise<boolean> {
  return locator.evaluate((el) => el === el.ownerDocument.activeElement);
}

/** Presses Tab until `locator` has the focus (a bounded number of times). */
async function tabTo(page: Page, locator: Locator, maxPresses = 40): Promise<void> {
  for (let i = 0; i < maxPresses; i++) {
    if (await isFocused(locator)) return;
    await page.keyboard.press('Tab');
  }
  assert.fail(`${maxPresses} presses of Tab did not reach ${locator}`);
}

/** Waits until the charts' pixels stop changing (Chart.js animates them in). */
async function chartsSettled(page: Page): Promise<void> {
  let last = '';
  let same = 0;
  await waitFor('the charts to finish drawing', async () => {
    const now = (await page.locator('canvas').evaluateAll((canvases) => canvases.map((c) => (c as any).toDataURL()).join('|'))) as string;
    same = now === last && now.length > 0 ? same + 1 : 0;
    last = now;
    return same >= 3 ? true : undefined;
  });
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && [...a].sort().join() === [...b].sort().join();
}
