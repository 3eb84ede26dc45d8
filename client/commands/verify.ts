/** `outbox-sync verify`: is the target complete? Each key's row against its newest completed message (stores/verify.ts). */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { loadConfig } from '../../config/config';
import { repairMessages } from '../../stores/outbox/state-machine';
import { recordVerifyRun } from '../../stores/outbox/verify-runs';
import { verifyTargets, type KeyProblem } from '../../stores/verify';
import { withStores } from '../command';
import { progressBar } from '../progress';

/** The exit code when the target does not match: not a failure of the command, a finding. */
export const MISMATCH_EXIT_CODE = 3;

export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('compare the target with the newest completed message of every key; exit 3 when it does not match; --repair sends those keys again')
    .option('--entity <entity>', 'only this entity')
    .option('--json', 'print JSON: {"checked":n,"missing":n,"stale":n,"different":n,"keys":[…]}')
    .option('--batch-size <n>', 'keys compared per batch', positiveInt, 1_000)
    .option('--repair', "send each differing key's newest message through the pipeline again, to overwrite the target's row")
    .action(async (opts: { entity?: string; json?: boolean; batchSize: number; repair?: boolean }) => {
      await withStores(loadConfig(), async ({ outbox, targets }) => {
        const startedAt = new Date();
        const bar = progressBar('verifying');
        const toRepair: number[] = [];
        const report = await verifyTargets(outbox, targets, {
          ...(opts.entity ? { entity: opts.entity } : {}),
          batchSize: opts.batchSize,
          ...(opts.repair ? { onProblem: (found: KeyProblem) => toRepair.push(found.messageId) } : {}),
          ...(process.stderr.isTTY ? { onProgress: (done: number, total: number) => bar.update(done, total) } : {}),
        }).finally(() => bar.stop());
        const problems = report.missing + report.stale + report.different;
        if (problems > 0) process.exitCode = MISMATCH_EXIT_CODE;
        const repaired = opts.repair ? (await repairMessages(outbox, toRepair)).length : undefined;
        // The outbox page and the metrics show the last run (stores/outbox/verify-runs.ts).
        await recordVerifyRun(outbox, { startedAt, entity: opts.entity ?? null, ...report, repaired: repaired ?? null });
        if (opts.json) return console.log(JSON.stringify(repaired === undefined ? report : { ...report, repaired }));
        if (problems === 0) return console.log(`checked ${report.checked} key(s): the target matches`);
        console.log(`checked ${report.checked} key(s): ${report.missing} missing, ${report.stale} stale, ${report.different} different`);
        for (const key of report.keys) console.log(`${key.problem.padEnd(9)} ${key.entity} ${key.key} (message ${key.messageId})`);
        if (report.keys.length < problems) console.log(`… and ${problems - report.keys.length} more (--entity narrows the check)`);
        if (repaired !== undefined) console.log(`repair: ${repaired} message(s) sent through the pipeline again; verify passes once they complete`);
      });
    });
}

function positiveInt(text: string): number {
  if (!/^[1-9][0-9]{0,6}$/.test(text)) throw new InvalidArgumentError('must be a whole number from 1 to 9999999');
  return Number(text);
}
