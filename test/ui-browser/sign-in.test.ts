/**
 * The outbox page in a real browser (set up by test/support/browser.ts), signing in and out: a visitor
 * without a session sees the sign-in form and no outbox data, and every API route answers 401.
 */
import assert from 'node:assert/strict';
import { VIEWER, PAGE_WAIT_MS, expectText, useOutboxPage } from '../support/browser';
import { waitFor } from '../support/pipeline';

describe('the outbox page in a real browser: signing in and out', function () {
  const ui = useOutboxPage();

  it('shows an unauthenticated visitor the sign-in form and no outbox data, and answers 401 on every /api route', async () => {
    const page = await ui.newPage();
    const answered: { url: string; status: number }[] = [];
    page.on('response', (r) => {
      if (new URL(r.url()).pathname.startsWith('/api/')) answered.push({ url: r.url(), status: r.status() });
    });
    for (const path of ['/', '/messages', `/messages/${ui.outbox.deadExhausted[0]}`]) {
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

    const id = ui.outbox.deadExhausted[0];
    const reads = ['/api/me', '/api/status', '/api/activity', '/api/messages', '/api/messages?status=completed', `/api/messages/${id}`];
    for (const path of reads) {
      const answer = await fetch(`${ui.base}${path}`);
      assert.equal(answer.status, 401, path);
      assert.deepEqual(await answer.json(), { error: 'sign in with an outbox page token' }, path);
    }
    for (const path of [`/api/messages/${id}/retry`, '/api/retry']) {
      const answer = await fetch(`${ui.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal(answer.status, 401, path);
    }
    const wrongBearer = await fetch(`${ui.base}/api/status`, { headers: { authorization: 'Bearer not-a-token' } });
    assert.equal(wrongBearer.status, 401);
    assert.deepEqual(await ui.statusOf([id!]), ['dead'], 'nothing moved');
  });

  it('shows the "unknown token" alert for a wrong token, and stays on the sign-in form', async () => {
    const page = await ui.newPage();
    await page.goto('/');
    await page.getByLabel('Token').fill('this-is-not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expectText(page.getByRole('alert'), /unknown token/);
    assert.ok(await page.getByRole('heading', { name: 'Sign in to the outbox' }).isVisible());
    assert.equal(await page.getByTestId(/^count-/).count(), 0);
  });

  it('signs in with a #token= link once, removes the token from the address bar, and signs out', async () => {
    const page = await ui.newPage();
    await page.goto(`/#token=${VIEWER.token}`);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await waitFor('the token to leave the address bar', async () => (page.url().includes(VIEWER.token) ? undefined : true), PAGE_WAIT_MS);
    await expectText(page.getByRole('banner'), new RegExp(VIEWER.name));
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to the outbox' }).waitFor();
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in to the outbox' }).waitFor();
  });
});
