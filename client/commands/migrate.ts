/** `outbox-sync migrate`: creates or upgrades both database schemas and registers the search attributes in Temporal. */
import type { Command } from 'commander';
import { loadConfig, type Config } from '../../config/config';
import { migrateDatabase } from '../../stores/postgres/migrate';
import { parseDuration, UsageError, withTargets } from '../command';

const DAY_MS = 86_400_000;

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('create or upgrade both database schemas and register the search attributes in Temporal')
    .option('--skip-temporal', 'leave the Temporal namespace alone')
    .option('--create-namespace', 'create TEMPORAL_NAMESPACE when the cluster lacks it (an admin may prefer to)')
    .option('--namespace-retention <duration>', 'how long a created namespace keeps closed executions', '7d')
    .action(async (opts: { skipTemporal?: boolean; createNamespace?: boolean; namespaceRetention: string }) => {
      const retentionMs = parseDuration(opts.namespaceRetention, '--namespace-retention');
      if (retentionMs < DAY_MS) throw new UsageError(`--namespace-retention: "${opts.namespaceRetention}" is shorter than Temporal's minimum of 1d`);
      await runMigrate(loadConfig(), {
        temporal: !opts.skipTemporal,
        ...(opts.createNamespace ? { createNamespace: { retentionMs } } : {}),
        log: (line) => console.log(line),
      });
    });
}

/** Creates the databases if missing, applies both schemas, and registers the search attributes. */
export async function runMigrate(
  config: Config,
  options: { temporal: boolean; createNamespace?: { retentionMs: number }; log?: (line: string) => void },
): Promise<void> {
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
  const [{ Connection }, { temporalConnectionOptions }, { registerSearchAttributes }, namespaces, { temporalUnreachable }] = await Promise.all([
    import('@temporalio/client'),
    import('../../temporal/connection'),
    import('../../temporal/search-attributes-register'),
    import('../../temporal/namespace'),
    import('../../temporal/unreachable'),
  ]);
  const { address } = temporalConnectionOptions(config);
  const connection = await Connection.connect(temporalConnectionOptions(config)).catch(async (err: unknown) => {
    throw await temporalUnreachable(err, address);
  });
  try {
    const namespace = config.temporalNamespace;
    let created = false;
    if (!(await namespaces.namespaceExists(connection, namespace))) {
      if (!options.createNamespace) {
        throw new Error(`TEMPORAL_NAMESPACE: namespace "${namespace}" does not exist at ${address}; create it (outbox-sync migrate --create-namespace), or have the cluster's admin create it`);
      }
      created = await namespaces.createNamespace(connection, namespace, options.createNamespace.retentionMs);
      const days = options.createNamespace.retentionMs / DAY_MS;
      log(created ? `temporal: created namespace ${namespace} (retention ${Number(days.toFixed(2))} d)` : `temporal: namespace ${namespace} present (created meanwhile)`);
    }
    // A namespace just made is "not found" to the services until their namespace cache has it.
    const added = await (created ? namespaces.onceKnown(() => registerSearchAttributes(connection, namespace)) : registerSearchAttributes(connection, namespace));
    log(added.length ? `temporal: registered ${added.join(', ')} in ${namespace}` : `temporal: search attributes present in ${namespace}`);
  } finally {
    await connection.close();
  }
}
