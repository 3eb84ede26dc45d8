import { Connection } from '@temporalio/client';
import type { Config } from '../../config/config';
import { temporalConnectionOptions } from '../../temporal/connection';
import { migrateDatabase } from '../../stores/postgres/migrate';
import { registerSearchAttributes } from '../../temporal/search-attributes-register';

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
  if (!options.temporal) return;
  const connection = await Connection.connect(temporalConnectionOptions(config));
  try {
    const added = await registerSearchAttributes(connection, config.temporalNamespace);
    log(added.length ? `temporal: registered ${added.join(', ')}` : 'temporal: search attributes present');
  } finally {
    await connection.close();
  }
}
