/** `outbox-sync targets check`: the mapping file against the live tables, and what goes where. */
import type { Command } from 'commander';
import { loadConfig, type Config } from '../../config/config';
import { DEFAULT_PLACEMENT, describeAddress, TargetsError } from '../../stores/target/mapping';
import type { TargetsReport } from '../../stores/target/targets';
import { withTargets } from '../command';

export function registerTargets(program: Command): void {
  const targets = program.command('targets').description("the user's own tables that entities are synced into (OUTBOX_SYNC_TARGETS)");
  targets
    .command('check')
    .description('check the mapping file against the live tables, and print where each entity goes')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { json?: boolean }) => {
      const config = loadConfig();
      const report = await withTargets(config, (t) => t.check());
      if (opts.json) console.log(JSON.stringify(report));
      else printReport(config, report);
      if (!report.ok) {
        const problems = [...report.databases, ...report.entities].filter((item) => item.problem).length;
        throw new TargetsError(`OUTBOX_SYNC_TARGETS: ${problems} problem${problems === 1 ? '' : 's'}; nothing was changed`);
      }
    });
}

function printReport(config: Config, report: TargetsReport): void {
  if (!config.targets) {
    console.log(`OUTBOX_SYNC_TARGETS is not set: every entity goes to ${DEFAULT_PLACEMENT.table} in ${describeAddress(config.targetDatabaseUrl)}`);
    return;
  }
  for (const database of report.databases) {
    const state = database.problem ? `PROBLEM: ${database.problem}` : 'answers, bookkeeping table present';
    console.log(`database ${database.name} (${database.engine}, ${database.address}): ${state}`);
  }
  for (const entity of report.entities) {
    console.log(`entity ${entity.entity} → ${entity.database} table ${entity.table}`);
    if (entity.problem) {
      console.log(`  PROBLEM: ${entity.problem}`);
      continue;
    }
    console.log(`  key: ${entity.keyColumns!.join(', ')}`);
    console.log(`  writes: ${entity.columns!.length ? entity.columns!.join(', ') : '(the key only)'}`);
    console.log(`  on delete: ${entity.softDelete ? `sets ${entity.softDelete} to the delete's time` : 'removes the row'}`);
  }
  console.log(`every other entity → ${DEFAULT_PLACEMENT.table} in ${describeAddress(config.targetDatabaseUrl)}`);
}
