/**
 * "Nothing is lost": a workload drained by worker and dispatcher processes while workers and dispatchers
 * are SIGKILLed, Temporal, Redis and the databases fail in turn (test/chaos/chaos.ts). The CI size runs in
 * `npm test`; `npm run test:chaos` runs the full size. One run per target: synced_records, and a user's own
 * table in PostgreSQL and in MariaDB. Settings: CHAOS_MESSAGES (size), CHAOS_TARGETS (which of
 * synced,postgres,mysql), CHAOS_SEED (replay a run), CHAOS_FAULTS=0 (only drain the backlog and measure),
 * CHAOS_WORKERS, CHAOS_DISPATCHERS, CHAOS_TARGET_OUTAGE_MS, CHAOS_REDIS_OUTAGE_MS.
 */
import assert from 'node:assert/strict';
import { FAULTS, formatTable, runChaos } from './chaos';
import { CHAOS_TARGETS, type ChaosTargetKind } from './target';

/**
 * The CI size, kept small so that `npm test` stays within its time: every fault still comes, a few hundred
 * messages apart; `npm run test:chaos` runs the full size.
 */
const CI_MESSAGES: Record<ChaosTargetKind, number> = { synced: 1200, postgres: 600, mysql: 600 };
/** How long the target is cut off: shorter at the CI size, where it would otherwise be most of the run. */
const CI_TARGET_OUTAGE_MS = 12_000;
const FULL_TARGET_OUTAGE_MS = 20_000;

/**
 * Redis unreachable for 1.2 ms per message, from 2 s to a minute: a minute at the full size (50,000), 2 s
 * at the CI sizes, so that the three CI runs take only seconds longer for it.
 */
function redisOutageFor(messages: number): number {
  return Math.min(60_000, Math.max(2_000, Math.round(messages * 1.2)));
}

function targetsSetting(): ChaosTargetKind[] {
  const raw = process.env.CHAOS_TARGETS;
  if (raw === undefined || raw === '') return [...CHAOS_TARGETS];
  const names = raw.split(',').map((t) => t.trim());
  for (const name of names) if (!(CHAOS_TARGETS as readonly string[]).includes(name)) throw new Error(`CHAOS_TARGETS must name some of ${CHAOS_TARGETS.join(', ')} (got ${JSON.stringify(name)})`);
  return names as ChaosTargetKind[];
}

function intSetting(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^[0-9]+$/.test(raw)) throw new Error(`${name} must be a non-negative integer (got ${JSON.stringify(raw)})`);
  return Number(raw);
}

describe('chaos: nothing is lost through crashes and outages of every part', function () {
  this.timeout(0);
  const faults = process.env.CHAOS_FAULTS !== '0';

  for (const target of targetsSetting()) {
    const messages = intSetting('CHAOS_MESSAGES', CI_MESSAGES[target]);
    const into = target === 'synced' ? 'synced_records' : `a user's table in ${target === 'postgres' ? 'PostgreSQL' : 'MariaDB'}`;
    const title = faults
      ? `completes all ${messages} messages into ${into}, the target as expected and verify passing, every outcome read from the streams, with no overlapping executions, through worker, dispatcher, Temporal, Redis and database faults`
      : `drains a backlog of ${messages} messages into ${into} with bounded memory`;

    it(title, async () => {
      const seed = intSetting('CHAOS_SEED', Math.floor(Math.random() * 2 ** 31));
      const result = await runChaos({
        target,
        messages,
        seed,
        faults,
        workers: intSetting('CHAOS_WORKERS', 2),
        dispatchers: intSetting('CHAOS_DISPATCHERS', 2),
        targetOutageMs: intSetting('CHAOS_TARGET_OUTAGE_MS', process.env.CHAOS_MESSAGES ? FULL_TARGET_OUTAGE_MS : CI_TARGET_OUTAGE_MS),
        redisOutageMs: intSetting('CHAOS_REDIS_OUTAGE_MS', redisOutageFor(messages)),
        drainTimeoutMs: Math.max(600_000, messages * 200),
        log: (line) => console.log(line),
      });
      console.log(formatTable(result));
      const replay = `(seed ${seed}: CHAOS_SEED=${seed} CHAOS_MESSAGES=${messages} CHAOS_TARGETS=${target})`;
      assert.ok(result.drained, `every message terminal before the deadline ${replay}`);
      assert.equal(result.counts.completed ?? 0, messages, `all completed ${replay}`);
      assert.equal(result.counts.processing ?? 0, 0, `none stuck in processing ${replay}`);
      assert.equal(result.missingFromOutbox, 0, `every accepted message is in the outbox ${replay}`);
      assert.equal(result.targetWrong, 0, `the target equals the expected final state ${replay}`);
      assert.equal(result.overlappingRuns, 0, `no message had two live executions ${replay}`);
      assert.equal(result.openRuns, 0, `no execution left open ${replay}`);
      assert.equal(result.runsBeyondClaims, 0, `no message ran more executions than it was claimed ${replay}`);
      if (faults) assert.equal(result.faults.length, FAULTS.length, `every planned fault was injected ${replay}`);
      assert.equal(result.streams.unseen, 0, `every transition to completed, failed and dead reached the consumer on its stream ${replay}`);
      assert.equal(result.verify.code, 0, `outbox-sync verify passes at the end (${result.verify.error}) ${replay}`);
      assert.equal(result.lost, 0, `messages lost ${replay}`);
    });
  }
});
