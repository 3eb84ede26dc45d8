/**
 * The outbox page in a real browser (set up by test/support/browser.ts), what holds on every view: a
 * read-only token can neither see nor force a retry, the keyboard alone is enough, axe-core finds nothing
 * serious, the strict Content-Security-Policy blocks nothing, 1366×768 needs no sideways scrolling, and
 * every time shown carries its offset from UTC.
 */
import assert from 'node:assert/strict';
import { OPERATOR, VIEWER, VIEWS, type AxeResult, expectText, isFocused, tabTo, useOutboxPage } from '../support/browser';

describe('the outbox page in a real browser: every view', function () {
  const ui = useOutboxPage();

  it('shows a read-only token no retry buttons, and refuses its forced retry with 403', async () => {
    const id = ui.outbox.deadNoData;
    const page = await ui.signedIn(VIEWER, '/messages');
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
    assert.deepEqual(await ui.statusOf([id]), ['dead']);
  });

  it('works with the keyboard alone: skip link, filter form, and the retry dialog (Tab, Enter, Escape)', async () => {
    const id = ui.outbox.failed[0]!;
    const [{ entity_key: key }] = await ui.query('SELECT entity_key FROM outbox_messages WHERE id = $1', [id]);
    const page = await ui.signedIn(OPERATOR, '/messages');
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
    assert.deepEqual(await ui.statusOf([id]), ['failed'], 'Escape cancels');
    assert.ok(await isFocused(retryAll), 'focus returns to the button that opened the dialog');

    await page.keyboard.press('Enter');
    await dialog.waitFor();
    await tabTo(page, dialog.getByRole('button', { name: 'Retry' }));
    await page.keyboard.press('Enter');
    await expectText(page.getByRole('status').filter({ hasText: 'sent back' }), /1 messages? sent back to pending/);
    assert.deepEqual(await ui.statusOf([id]), ['pending']);
  });

  for (const view of VIEWS) {
    it(`has no serious or critical accessibility violations (axe-core) on the ${view}`, async () => {
      const page = await ui.openView(view, { injectScripts: true });
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
      const page = await ui.newPage();
      page.on('console', (m) => {
        if (/Content Security Policy/i.test(m.text())) blocked.push(m.text());
      });
      const answer = await page.goto('/');
      assert.match(answer!.headers()['content-security-policy'] ?? '', /script-src 'self'/);
      await page.getByLabel('Token').fill(OPERATOR.token);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Overview' }).waitFor();
      await ui.showView(page, view);
      assert.deepEqual(blocked, [], `the ${view} ran into the CSP`);
    }
  });

  it('fits 1366×768 without scrolling the page sideways, on the overview, the list and a message page', async () => {
    for (const view of VIEWS) {
      const page = await ui.openView(view);
      const overflow = (await page.evaluate(`document.documentElement.scrollWidth - document.documentElement.clientWidth`)) as number;
      assert.ok(overflow <= 0, `the ${view} is ${overflow} px wider than the window`);
    }
  });

  it('writes every time on every view as local time with its UTC offset (+05:30 in Asia/Kolkata)', async () => {
    // A zone with a half-hour offset and no summer time: a wrong sign, rounding or a UTC time shows.
    const offset = '+05:30';
    for (const view of VIEWS) {
      const page = await ui.openView(view, { timezoneId: 'Asia/Kolkata' });
      if (view === 'overview') {
        for (const show of await page.getByText('Show as table').all()) await show.click();
        await page.locator('.chart-table table').first().waitFor();
      }
      const shown = (await page.evaluate(() => {
        const doc = (globalThis as any).document;
        return {
          times: Array.from(doc.querySelectorAll('time')).map((t: any) => ({ text: (t.textContent ?? '').trim(), at: t.dateTime })),
          text: [doc.body.innerText, ...Array.from(doc.querySelectorAll('[aria-label]')).map((e: any) => e.getAttribute('aria-label'))].join('\n'),
        };
      })) as { times: { text: string; at: string }[]; text: string };

      // Every time of day in the text and the charts' summaries, wherever it is, is followed by the offset.
      const clocks = [...shown.text.matchAll(/(?<![\d:+-])(\d{2}:\d{2}(?::\d{2})?)(?![\d:])(.{0,7})/g)];
      assert.ok(clocks.length > 0, `the ${view} shows times`);
      for (const [, clock, after] of clocks) assert.ok(after!.startsWith(` ${offset}`), `the ${view} shows ${clock} without its offset: "${clock}${after}"`);

      // And each <time> reads the very instant its dateTime attribute holds, in that zone.
      if (view !== 'overview') assert.ok(shown.times.length > 0, `the ${view} has <time> elements`);
      for (const { text, at } of shown.times) {
        const match = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) ([+-]\d{2}:\d{2})$/.exec(text);
        assert.ok(match, `the ${view} writes a time as "${text}"`);
        assert.equal(match[3], offset);
        assert.equal(Date.parse(`${match[1]}T${match[2]}${match[3]}`), Math.floor(Date.parse(at) / 1000) * 1000, `"${text}" is ${at}`);
      }
    }
  });
});
