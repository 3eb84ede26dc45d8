/** Mocha global fixtures: the real servers, set up once for the whole run. */
import { setUpStack, tearDownStack } from './support/stack';

export async function mochaGlobalSetup(): Promise<void> {
  await setUpStack();
}

export async function mochaGlobalTeardown(): Promise<void> {
  await tearDownStack();
}
