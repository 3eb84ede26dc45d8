/**
 * The benchmark: it runs end to end at a tiny size and reports its figures, and its correctness check
 * refuses a run whose messages did not all complete or whose target does not match.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findProblems, type HeldRecord, type SentMessage } from '../bench/check';
import { packageRoot } from '../config/package-root';
import { getStack } from './support/stack';

const sent: SentMessage[] = [
  { id: 1, entity: 'order', key: 'a', op: 'upsert', version: '1', data: { v: 1 }, status: 'completed' },
  { id: 2, entity: 'order', key: 'a', op: 'upsert', version: '2', data: { v: 2 }, status: 'completed' },
  { id: 3, entity: 'order', key: 'b', op: 'upsert', version: '3', data: { v: 3 }, status: 'completed' },
  { id: 4, entity: 'order', key: 'b', op: 'delete', version: '4', data: null, status: 'completed' },
];
const held: HeldRecord[] = [
  { entity: 'order', key: 'a', version: '2', data: { v: 2 }, deleted: false, messageId: 2 },
  { entity: 'order', key: 'b', version: '4', data: null, deleted: true, messageId: 4 },
];

describe('the benchmark', () => {
  it('accepts a run whose messages all completed and whose target holds the newest version of every key', () => {
    assert.deepEqual(findProblems(sent, held), []);
  });

  it('refuses a run whose target holds an older version, other data, or misses a key', () => {
    const older = [{ ...held[0]!, version: '1', messageId: 1, data: { v: 1 } }, held[1]!];
    assert.match(findProblems(sent, older).join('\n'), /order\/a: holds version 1, expected 2/);
    const otherData = [{ ...held[0]!, data: { v: 'x' } }, held[1]!];
    assert.match(findProblems(sent, otherData).join('\n'), /order\/a: holds other data/);
    assert.match(findProblems(sent, [held[0]!]).join('\n'), /order\/b: missing from the target/);
    const undeleted = [held[0]!, { ...held[1]!, deleted: false }];
    assert.match(findProblems(sent, undeleted).join('\n'), /order\/b: present, expected deleted/);
  });

  it('refuses a run with a message that did not complete', () => {
    const stuck = sent.map((m) => (m.id === 3 ? { ...m, status: 'dead' } : m));
    assert.match(findProblems(stuck, held).join('\n'), /1 of 4 messages did not complete \(3:dead\)/);
  });

  // The floor once: its four processes cost seconds each, and they are the same whatever the pipeline's mode.
  for (const [shared, target, floor] of [
    [false, 'synced', true],
    [true, 'synced', false],
    [false, 'postgres', false],
    [false, 'mysql', false],
  ] as const) {
    const setup = `${shared ? 'the worker and the dispatcher in one dev process (eager start)' : 'the worker and the dispatcher as two processes'}${target === 'synced' ? '' : `, into a user's table in ${target}`}${floor ? ', and the floor' : ''}`;
    it(`runs end to end at a tiny size with ${setup}, reports every figure as JSON on its last line and writes the result file`, async function () {
      this.timeout(floor ? 120_000 : 60_000);
      const out = mkdtempSync(join(tmpdir(), 'outbox-sync-bench-test-'));
      try {
        const args = ['--messages', '40', '--steady-seconds', '2', '--json', '--out', out, '--temporal-address', getStack().temporalAddress, '--target', target];
        args.push('--floor-workflows', floor ? '20' : '0');
        if (shared) args.push('--shared-process');
        const stdout = await new Promise<string>((resolve, reject) =>
          execFile(process.execPath, [join(packageRoot, 'dist', 'bench', 'run.js'), ...args], { maxBuffer: 10 * 2 ** 20 }, (err, output, stderr) =>
            err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(output),
          ),
        );
        const lines = stdout.trim().split('\n');
        const result = JSON.parse(lines[lines.length - 1]!);
        assert.equal(result.ok, true);
        assert.equal(result.drain.messages, 40);
        // The run's own check read every key back from where it went: a wrong or empty table refuses the run.
        assert.match(result.settings.target, target === 'synced' ? /^synced_records$/ : target === 'postgres' ? /^PostgreSQL tables bench_bench, bench_bench_relay$/ : /^MariaDB\/MySQL tables/);
        assert.ok(result.drain.rate > 0 && result.baseline.rate > 0, 'drain and baseline rates measured');
        assert.deepEqual(result.steady.map((s: { fraction: number }) => s.fraction), [0.25, 0.5, 0.75]);
        for (const s of result.steady) {
          assert.ok(s.sent > 0 && s.latencyMs.p99 >= s.latencyMs.p50, `steady ${s.fraction}`);
          // Both parts of every message's latency were read from its status history, and neither can exceed the whole.
          const { toClaimed, claimedToCompleted } = s.stagesMs;
          assert.ok(toClaimed.p50 >= 0 && claimedToCompleted.p50 > 0 && toClaimed.p99 <= s.latencyMs.max && claimedToCompleted.p99 <= s.latencyMs.max, JSON.stringify(s));
        }
        assert.ok(result.peakRssMiB.worker > 0 && result.drain.cpuPer1000.worker >= 0, 'cost measured');
        assert.equal(result.peakRssMiB.dispatcher === null, shared, 'the dispatcher measured on its own only as a process of its own');
        assert.equal(result.settings.mallocArenaMax, '2', 'the worker started through the launcher, with two malloc arenas');
        assert.match(stdout, /\| pipeline \/ baseline \|/);
        // Every message closed one run (20 warm-up, the drain, the steady ones), and each was deleted; the server given by address is not ours to measure.
        const steadySent = result.steady.reduce((n: number, s: { sent: number }) => n + s.sent, 0);
        assert.equal(result.deletes.runs, 20 + 40 + steadySent);
        assert.equal(result.deletes.temporalCpuMs, null);
        assert.match(stdout, new RegExp(`\\| retention deletes: ${result.deletes.runs} closed runs \\| [0-9.]+ s; Temporal CPU n/a ms per run \\|`));
        if (floor) {
          // Each variant ran its 20 workflows to their end on the same server; the server given by address is not ours to measure.
          assert.deepEqual(
            result.floor.runs.map((f: { workflow: string; eager: boolean }) => `${f.workflow}${f.eager ? ' eager' : ''}`),
            ['floorEmpty', 'floorTwoLocalSteps', 'floorEmpty eager', 'floorTwoLocalSteps eager'],
          );
          for (const f of result.floor.runs) assert.ok(f.workflows === 20 && f.rate > 0 && f.processCpuMs > 0 && f.temporalCpuMs === null, JSON.stringify(f));
          const nonEagerTwoSteps = result.floor.runs[1];
          assert.equal(result.floorRatio, Math.round((result.drain.rate / nonEagerTwoSteps.rate) * 100) / 100, 'the drain held against its own mode (non-eager) floor');
          assert.match(stdout, /\| drain \/ its floor \(two local activities, non-eager\) \| \*\*\d+ %\*\* \|/);
        } else {
          assert.equal(result.floor, null);
          assert.equal(result.floorRatio, null);
        }
        assert.equal(readdirSync(out).filter((f) => f.endsWith('.json')).length, 1);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    });
  }
});
