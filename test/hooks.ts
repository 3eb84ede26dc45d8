/** Mocha global fixtures: the real servers, set up once for the whole run. */
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
