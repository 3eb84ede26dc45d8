/** The chaos suite's seeded parts on their own: a seed replays the same workload and fault plan. */
import assert from 'node:assert/strict';
import { faultPlan, prng, workload } from './chaos';

describe('the chaos plan', () => {
  it('is the same workload and the same faults for the same seed, and different for another', () => {
    const a = prng(123);
    const b = prng(123);
    assert.deepEqual(workload(500, a), workload(500, b));
    assert.deepEqual(faultPlan(a), faultPlan(b));
    assert.notDeepEqual(faultPlan(prng(124)), faultPlan(prng(123)));
  });

  it('holds every fault the issue asks for, in rising points of progress', () => {
    const plan = faultPlan(prng(7));
    const count = (kind: string) => plan.filter((f) => f.kind === kind).length;
    assert.ok(count('kill worker') >= 3);
    assert.ok(count('kill dispatcher') >= 2);
    for (const kind of ['restart Temporal', 'Redis FLUSHALL', 'restart Redis', 'Redis unreachable', 'terminate target connections', 'target unreachable', 'terminate outbox connections']) {
      assert.equal(count(kind), 1, kind);
    }
    const points = plan.map((f) => f.atProgress);
    assert.deepEqual(points, [...points].sort((x, y) => x - y));
    assert.ok(points.every((p) => p >= 0.05 && p <= 0.85));
  });

  it('expects, per key, the message with the highest version, deletes included, and sends versions out of order', () => {
    const { messages, expected } = workload(2000, prng(99));
    assert.equal(messages.length, 2000);
    for (const [key, want] of expected) {
      const ofKey = messages.filter((m) => m.key === key);
      const highest = ofKey.reduce((x, y) => (Number(y.version) > Number(x.version) ? y : x));
      assert.equal(Number(highest.version), want.version);
      assert.equal(highest.op, want.op);
    }
    assert.ok(messages.some((m) => m.op === 'delete'));
    const outOfOrder = [...expected.keys()].some((key) => {
      const versions = messages.filter((m) => m.key === key).map((m) => Number(m.version));
      return versions.some((v, i) => i > 0 && v < versions[i - 1]!);
    });
    assert.ok(outOfOrder, 'some key receives an older version after a newer one');
    assert.ok(new Set(messages.map((m) => m.key)).size > 400, 'many keys');
  });
});
