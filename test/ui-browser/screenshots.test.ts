/**
 * The docs' pictures of the outbox page: with UI_SCREENSHOTS=docs (`npm run docs:screenshots`) this file
 * saves docs/ui-overview.png, docs/ui-failed.png and docs/ui-message.png, from a real browser over an
 * outbox with an hour of completions (set up by test/support/browser.ts). Without it, it has no test,
 * and so sets nothing up.
 */
import { join } from 'node:path';
import { packageRoot } from '../../config/package-root';
import { OPERATOR, chartsSettled, useOutboxPage } from '../support/browser';

const SCREENSHOTS = process.env.UI_SCREENSHOTS === 'docs';

describe('the outbox page in a real browser: screenshots for the docs', function () {
  const ui = useOutboxPage({ completed: 400, spreadOverTheHour: true });

  if (SCREENSHOTS) {
    it('saves the overview, the failed and dead list and a message page as screenshots for the docs', async () => {
      // The overview shows the last verification: one has run.
      await ui.cli(['verify']);
      const page = await ui.signedIn(OPERATOR);
      await page.getByTestId('count-completed').waitFor();
      await chartsSettled(page);
      await page.screenshot({ path: join(packageRoot, 'docs', 'ui-overview.png') });
      await page.goto('/messages');
      await page.getByRole('heading', { name: 'Failed and dead messages' }).waitFor();
      await page.getByRole('link', { name: `#${ui.outbox.deadExhausted[0]}` }).waitFor();
      await page.screenshot({ path: join(packageRoot, 'docs', 'ui-failed.png') });
      await page.goto(`/messages/${ui.outbox.deadExhausted[1]}`);
      await page.getByRole('heading', { name: 'Executions' }).waitFor();
      await page.getByRole('link', { name: 'Open in Temporal' }).first().waitFor();
      await page.screenshot({ path: join(packageRoot, 'docs', 'ui-message.png') });
    });
  }
});
