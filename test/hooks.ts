/**
 * Mocha global fixtures: the real servers, set up once for the whole run; and root hooks around every
 * test: a test that leaves something open fails, naming what it leaked, and a failed test's pipeline
 * keeps its databases (test/support/pipeline.ts).
 */
import type Mocha from 'mocha';
import { checkSharingSuites, findLeaks, inSharingSuite, snapshot, type Snapshot } from './support/leaks';
import { testEnded, testStarted } from './support/pipeline';
import { setUpStack, tearDownStack } from './support/stack';

export async function mochaGlobalSetup(): Promise<void> {
  await setUpStack();
}

export async function mochaGlobalTeardown(): Promise<void> {
  await tearDownStack();
  // Fail on leaked handles rather than hang: a process still alive this long after the last test has
  // something open (a pool, a socket, a timer) that a test forgot to close.
  setTimeout(() => {
    console.error(`leaked handles keep the test process alive: ${process.getActiveResourcesInfo().join(', ')}`);
    process.exit(1);
  }, 15_000).unref();
}

let before: Snapshot | undefined;

export const mochaHooks: Mocha.RootHookObject = {
  beforeAll(this: Mocha.Context) {
    checkSharingSuites(this.test!.parent!);
  },

  async beforeEach(this: Mocha.Context) {
    testStarted(this.currentTest);
    if (inSharingSuite(this.currentTest)) return;
    // Counted a turn later, as in afterEach: by then mocha has armed this hook's own timeout timer, so
    // that the two hooks' timers cancel out.
    await new Promise((resolve) => setImmediate(resolve));
    before = snapshot();
  },

  async afterEach(this: Mocha.Context) {
    const test = this.currentTest;
    testEnded(test);
    if (!before) return;
    const leaked = await findLeaks(before);
    before = undefined;
    // A failed test is reported once, for what failed; what it left open follows from that.
    if (leaked && test?.state !== 'failed') {
      // Set on the hook, the error fails the test itself; thrown, it would stop the tests after it.
      (this.test as Mocha.Hook).error(new Error(`leaked ${leaked}`));
    }
  },
};
