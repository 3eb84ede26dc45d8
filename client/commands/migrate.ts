/** `outbox-sync migrate`: creates or upgrades both database schemas and registers the search attributes in Temporal. */
import type { Command } from 'commander';
import { loadConfig, type Config } from '../../config/config';
import { migrateDatabase } from '../../stores/postgres/migrate';
import { withTargets } from '../command';

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('create or upgrade both database schemas and register the search attributes in Temporal')
    .option('--skip-temporal', 'leave the Temporal namespace alone')
    .action(async (opts: { skipTemporal?: boolean }) => {
      await runMigrate(loadConfig(), { temporal: !opts.skipTemporal, log: (line) => console.log(line) });
    });
}

/** Creates the databases if missing, applies both schemas, and registers the search attributes. */
export async function runMigrate(config: Config, options: { temporal: boolean; log?: (line: string) => void }): Promise<void> {
  const log = options.log ?? (() => undefined);
  for (const [set, url] of [
    ['outbox', config.outboxDatabaseUrl],
    ['target', config.targetDatabaseUrl],
  ] as const) {
    const { created, applied } = await migrateDatabase(url, set);
    if (created) log(`created database ${new URL(url).pathname.slice(1)}`);
    log(applied.length ? `${set}: applied ${applied.join(', ')}` : `${set}: up to date`);
  }
  if (config.targets) {
    // The user's databases exist and hold their tables: migrate adds the bookkeeping table only, then
    // refuses a mapping that does not fit the live tables.
    await withTargets(config, async (targets) => {
      for (const { database, applied } of await targets.migrate()) {
        log(applied.length ? `targets: ${database}: applied ${applied.join(', ')}` : `targets: ${database}: up to date`);
      }
      const report = await targets.requireReady();
      log(`targets: ${report.entities.length} mapped entit${report.entities.length === 1 ? 'y fits its table' : 'ies fit their tables'}`);
    });
  }
  if (!options.temporal) return;
  // The Temporal client's modules load only when Temporal is asked for, so that the other commands start fast.
  const [{ Connection }, { temporalConnectionOptions }, { registerSearchAttributes }] = await Promise.all([
    import('@temporalio/client'),
    import('../../temporal/connection'),
    import('../../temporal/search-attributes-register'),
  ]);
  const connection = await Connection.connect(temporalConnectionOptions(config));
  try {
    const added = await registerSearchAttributes(connection, config.temporalNamespace);
    log(added.length ? `temporal: registered ${added.join(', ')}` : 'temporal: search attributes present');
  } finally {
    await connection.close();
  }
}
