/**
 * A real browser for the outbox page's tests: Debian's Chromium driven through playwright-core, never a
 * browser Playwright downloads. Each launch gets a new, empty profile (Playwright makes a temporary user
 * data directory and removes it on close), so no cookie or cache survives from one run to the next.
 *
 * The outbox page's tests share their set-up here: `useOutboxPage()` gives a test file its own browser,
 * its own pipeline run over a realistic outbox (every status represented) and its own `outbox-sync ui`
 * process, with a sign-in helper; the functions below it read what the page shows.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { enqueue } from '../../stores/outbox/enqueue';
import { TestPipeline, waitFor } from './pipeline';
import { ProcessGroup, runCli, type CliRun, type RunningProcess } from './processes';
import { freePort } from './stack';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Quiet, offline-friendly flags: no sandbox (CI runs as root), no GPU, nothing phoning home. */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`no Chromium at ${CHROMIUM_PATH}: install it (apt-get install chromium chromium-driver) or set CHROMIUM_PATH`);
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
}

export const OPERATOR = { name: 'alice', token: `alice-${randomBytes(12).toString('hex')}` };
export const VIEWER = { name: 'audit', token: `audit-${randomBytes(12).toString('hex')}` };
export const STATUSES = ['pending', 'processing', 'completed', 'failed', 'dead'] as const;
const VIEWPORT = { width: 1366, height: 768 };
/** The three views every page-wide check visits. */
export const VIEWS = ['overview', 'list', 'message page'] as const;
export type View = (typeof VIEWS)[number];
/** How long the page may take to show what the database holds. */
export const PAGE_WAIT_MS = 10_000;
/** The page's SLA (OUTBOX_SYNC_SLA_SECONDS): the failed messages were sent longer ago than that. */
export const SLA_SECONDS = 300;

/** The messages the pipeline produced, by what happened to them. */
export interface Outbox {
  completed: number[];
  /** Data no retry can fix (a JSON array): dead at once, a permanent fault. */
  deadInvalid: number[];
  /** A plain-SQL insert with no data for an upsert: dead at once too, for another reason. */
  deadNoData: number;
  /** Refused by the target every time: dead once the executions ran out. */
  deadExhausted: number[];
  /** Refused by the target once, waiting for a redrive that never comes in this test; sent ten minutes
   * ago, so past the SLA, and marked overdue by a dispatcher's sweep. */
  failed: number[];
  /** Claimed and started, with no worker left to run them. */
  processing: number[];
  pending: number[];
}

export interface OutboxPageOptions {
  /** How many messages the pipeline completes (30; the docs' pictures take more). */
  completed?: number;
  /** Spread the completions over the last hour, for the docs' pictures (see below). */
  spreadOverTheHour?: boolean;
}

export interface PageOptions {
  injectScripts?: boolean;
  timezoneId?: string;
}

/** What a test file of the outbox page works with, ready once its `before` hook has run. */
export interface OutboxPage {
  readonly base: string;
  readonly outbox: Outbox;
  /**
   * A fresh browser context (its own cookies), at 1366×768, in UTC so that times read predictably, or in
   * the IANA zone `timezoneId` names. `injectScripts` lets a test add a script of its own (axe-core) past
   * the page's script-src 'self'.
   */
  newPage(options?: PageOptions): Promise<Page>;
  /** Signs in through the form, as a person would, waits for the overview, then goes to `path`. */
  signedIn(who: { token: string }, path?: string, options?: PageOptions): Promise<Page>;
  query<T = any>(sql: string, params?: unknown[]): Promise<T[]>;
  /** A statement in the target database (synced_records), as an operator would run it by hand. */
  targetQuery(sql: string, params?: unknown[]): Promise<void>;
  /** `outbox-sync ARGS` to its end, with the pipeline's settings. */
  cli(args: string[]): Promise<CliRun>;
  statusOf(ids: number[]): Promise<string[]>;
  /** Opens one of the three views as the operator (who sees the most) and waits until it shows its data. */
  openView(view: View, options?: PageOptions): Promise<Page>;
  /** Goes to a view and waits until it shows its data. */
  showView(page: Page, view: View): Promise<void>;
}

/**
 * Registers, in the calling `describe`, the hooks that set up the outbox page for its tests: the real
 * pipeline fills an outbox and stops with every status holding still, `outbox-sync ui` serves it, and a
 * browser is launched; each test's browser contexts are closed after it, everything else after the file.
 */
export function useOutboxPage(options: OutboxPageOptions = {}): OutboxPage {
  let pipeline: TestPipeline | undefined;
  let processes: ProcessGroup | undefined;
  let ui: RunningProcess;
  let base = '';
  let browser: Browser | undefined;
  let outbox: Outbox | undefined;
  const contexts: BrowserContext[] = [];

  before(async function () {
    this.timeout(240_000);
    browser = await launchBrowser(); // first: a missing Chromium fails in one line, before any work
    pipeline = await TestPipeline.create({
      env: {
        OUTBOX_SYNC_MAX_EXECUTIONS: '2',
        OUTBOX_SYNC_ACTIVITY_MAX_ATTEMPTS: '2',
        TEMPORAL_UI_URL: 'http://127.0.0.1:8233',
        OUTBOX_SYNC_SLA_SECONDS: String(SLA_SECONDS),
      },
    });
    outbox = await fillOutbox(pipeline, options.completed ?? 30);
    if (options.spreadOverTheHour) await spreadCompletionsOverTheHour(pipeline);
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
    await processes?.killAll();
    if (pipeline) {
      // The processing messages' workflows have no worker left; end them rather than leave them running.
      for (const id of outbox?.processing ?? []) {
        await pipeline.client.workflow.getHandle(`${pipeline.config.workflowIdPrefix}${id}`).terminate('test over').catch(() => undefined);
      }
      await pipeline.close();
    }
  });

  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the outbox page is not set up yet: use it inside a test');
    return value;
  };

  const page: OutboxPage = {
    get base() {
      return base;
    },
    get outbox() {
      return ready(outbox);
    },

    async newPage(options = {}) {
      const context = await ready(browser).newContext({
        viewport: VIEWPORT,
        timezoneId: options.timezoneId ?? 'UTC',
        locale: 'en-GB',
        baseURL: base,
        bypassCSP: options.injectScripts ?? false,
      });
      context.setDefaultTimeout(PAGE_WAIT_MS);
      contexts.push(context);
      return context.newPage();
    },

    async signedIn(who, path = '/', options = {}) {
      const signing = await page.newPage(options);
      await signing.goto('/');
      await signing.getByLabel('Token').fill(who.token);
      await signing.getByRole('button', { name: 'Sign in' }).click();
      await signing.getByRole('heading', { name: 'Overview' }).waitFor();
      if (path !== '/') await signing.goto(path);
      return signing;
    },

    async query(sql, params = []) {
      return (await ready(pipeline).stores.outbox.query(sql, params)).rows;
    },

    async targetQuery(sql, params = []) {
      await ready(pipeline).targetAdmin(sql, params);
    },

    cli(args) {
      return runCli(args, ready(pipeline).processEnv());
    },

    async statusOf(ids) {
      const rows = await page.query<{ status: string }>('SELECT status FROM outbox_messages WHERE id = ANY($1) ORDER BY id', [ids]);
      return rows.map((r) => r.status);
    },

    async openView(view, options = {}) {
      const opened = await page.signedIn(OPERATOR, '/', options);
      await page.showView(opened, view);
      return opened;
    },

    async showView(shown, view) {
      const { deadNoData, deadExhausted } = ready(outbox);
      if (view === 'overview') {
        await shown.getByTestId('count-completed').waitFor();
        await shown.locator('canvas[role="img"]').first().waitFor();
      } else if (view === 'list') {
        await shown.goto('/messages');
        await shown.getByRole('link', { name: `#${deadNoData}` }).waitFor();
      } else {
        await shown.goto(`/messages/${deadExhausted[1]}`);
        await shown.getByRole('heading', { name: 'Executions' }).waitFor();
        await shown.getByRole('link', { name: 'Open in Temporal' }).first().waitFor();
      }
    },
  };
  return page;
}

export interface AxeResult {
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
  // Sent ten minutes ago and still not through: past the SLA, as the dispatcher's sweep finds.
  await outbox.query(`UPDATE outbox_messages SET created_at = created_at - interval '10 minutes' WHERE id = ANY($1)`, [failed]);
  assert.deepEqual((await dispatcher.sweepOverdueOnce()).map((m) => m.id).sort((a, b) => a - b), failed);

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
export async function expectText(locator: Locator, expected: string | RegExp, timeoutMs = PAGE_WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const seen = (await locator.first().textContent({ timeout: Math.max(1, deadline - Date.now()) }).catch(() => null))?.trim() ?? null;
    if (seen !== null && (typeof expected === 'string' ? seen === expected : expected.test(seen))) return;
    if (Date.now() > deadline) assert.fail(`expected ${locator} to read ${expected}, saw ${JSON.stringify(seen)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The messages table's cells in one column, once `accept` takes them. */
export async function expectColumn(page: Page, header: string, accept: (cells: string[]) => boolean): Promise<void> {
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

export async function columnCells(page: Page, header: string): Promise<string[]> {
  const table = page.getByRole('table').filter({ has: page.getByRole('columnheader', { name: header, exact: true }) }).first();
  const headers = (await table.getByRole('columnheader').allInnerTexts()).map((h) => h.trim());
  const index = headers.indexOf(header);
  const rows = await table.locator('tbody tr').all();
  const cells: string[] = [];
  for (const row of rows) cells.push((await row.locator('td, th').nth(index).innerText()).trim());
  return cells;
}

/** The body rows (cell texts) of the table under a heading's section. */
export async function tableRows(page: Page, heading: string): Promise<string[][]> {
  const table = sectionOf(page, heading).locator('table').first();
  await table.waitFor({ state: 'attached' });
  return (await table.locator('tbody tr').evaluateAll((rows) =>
    rows.map((row) => Array.from(row.querySelectorAll('th, td')).map((cell: any) => (cell.textContent ?? '').trim())),
  )) as string[][];
}

export async function tableHeaders(page: Page, heading: string): Promise<string[]> {
  const table = sectionOf(page, heading).locator('table').first();
  return (await table.locator('thead th').allTextContents()).map((h) => h.trim());
}

/** The element that holds a heading and what follows it (a section, or the nearest enclosing block). */
export function sectionOf(page: Page, heading: string): Locator {
  return page.locator('section, [role="region"], figure, article').filter({ has: page.getByRole('heading', { name: heading, exact: true }) }).last();
}

/** The message page's description list as { term: definition }. */
export async function descriptionList(page: Page): Promise<Record<string, string>> {
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

export async function isFocused(locator: Locator): Promise<boolean> {
  return locator.evaluate((el) => el === el.ownerDocument.activeElement);
}

/** Presses Tab until `locator` has the focus (a bounded number of times). */
export async function tabTo(page: Page, locator: Locator, maxPresses = 40): Promise<void> {
  for (let i = 0; i < maxPresses; i++) {
    if (await isFocused(locator)) return;
    await page.keyboard.press('Tab');
  }
  assert.fail(`${maxPresses} presses of Tab did not reach ${locator}`);
}

/** Waits until the charts' pixels stop changing (Chart.js animates them in). */
export async function chartsSettled(page: Page): Promise<void> {
  let last = '';
  let same = 0;
  await waitFor('the charts to finish drawing', async () => {
    const now = (await page.locator('canvas').evaluateAll((canvases) => canvases.map((c) => (c as any).toDataURL()).join('|'))) as string;
    same = now === last && now.length > 0 ? same + 1 : 0;
    last = now;
    return same >= 3 ? true : undefined;
  });
}

export function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && [...a].sort().join() === [...b].sort().join();
}
