/**
 * Mocha's spec reporter, closing with one plain line of totals: `tests: N passed, N failed, N skipped`.
 * Each test is counted once, by how it ended: one that passed and then failed the leak check after it
 * (test/hooks.ts) is a failed test, not one of each.
 */
import Mocha from 'mocha';

const { EVENT_RUN_END, EVENT_TEST_FAIL, EVENT_TEST_PASS, EVENT_TEST_PENDING } = Mocha.Runner.constants;

class SpecWithTotals extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    const passed = new Set<Mocha.Test>();
    const failed = new Set<Mocha.Test>();
    let skipped = 0;
    runner.on(EVENT_TEST_PASS, (test) => passed.add(test));
    // Hooks fail too (a `before` that throws): they count as one failure each, as mocha counts them.
    runner.on(EVENT_TEST_FAIL, (test) => {
      passed.delete(test as Mocha.Test);
      failed.add(test as Mocha.Test);
    });
    runner.on(EVENT_TEST_PENDING, () => skipped++);
    runner.once(EVENT_RUN_END, () => {
      console.log(`tests: ${passed.size} passed, ${failed.size} failed, ${skipped} skipped`);
    });
  }
}

export = SpecWithTotals;
