/**
 * Where each entity's messages land: the table the mapping file gives it, in one of the user's databases
 * (one pool per database), or `synced_records` in TARGET_DATABASE_URL when it has no mapping. A write that
 * the data makes impossible is a TargetRejected (permanent, that message alone); anything else (a database
 * down, a lock timeout) is thrown as it is, for the activity's retries. A database that is down holds up
 * only the entities mapped to it.
 */
import type pg from 'pg';
import { isPermanentDatabaseError } from '../postgres/errors';
import type { RowWrite, TargetEngine, TargetProblem } from './engine';
import { planEntity, rowWrite, type EntityPlan } from './entity-plan';
import { describeAddress, placementOf, TargetsError, type Placement, type TargetDatabase, type TargetsMapping } from './mapping';
import { MysqlEngine } from './mysql-engine';
import { PostgresEngine } from './postgres-engine';
import { plainReason } from '../unreachable';
import { compareRecords, upsertRecord } from './synced-records';
import { parseData, ValueError } from './values';

/** One message's write, with its data as the outbox holds it (JSON text, numbers exact). */
export interface TargetWrite {
  entity: string;
  key: string;
  version: string;
  messageId: number;
  op: 'upsert' | 'delete';
  /** null for a delete. */
  dataText: string | null;
  /** When the delete happened (the message's creation time), for a soft delete. */
  deletedAt: Date;
  /** A repair (verify --repair): replaces an equal version too, never a newer one. */
  overwrite?: boolean;
}

/** The newest completed message of a key, as `verify` holds it against the target. */
export interface CompletedVersion {
  messageId: number;
  entity: string;
  key: string;
  op: 'upsert' | 'delete';
  version: string;
  /** The data as the outbox holds it (numbers exact); null for a delete. */
  dataText: string | null;
  /** A soft delete wrote this time. */
  createdAt: Date;
}

/** A write the target cannot take because of the data; the reason names the entity, table and column. */
export class TargetRejected extends Error {
  override name = 'TargetRejected';
}

export interface EntityCheck {
  entity: string;
  database: string;
  table: string;
  /** The columns written, besides the key; absent when the check failed. */
  columns?: string[];
  keyColumns?: string[];
  softDelete?: string | null;
  problem?: string;
  /** The problem is only that its database does not answer now. */
  unreachable?: boolean;
}

export interface DatabaseCheck {
  name: string;
  engine: string;
  address: string;
  problem?: string;
  unreachable?: boolean;
}

export interface TargetsReport {
  databases: DatabaseCheck[];
  entities: EntityCheck[];
  ok: boolean;
}

export class Targets {
  private readonly engines = new Map<string, TargetEngine>();
  private readonly plans = new Map<string, Promise<EntityPlan>>();

  constructor(
    private readonly syncedRecords: pg.Pool,
    readonly mapping: TargetsMapping | null,
    poolSize = 10,
  ) {
    for (const database of mapping?.databases.values() ?? []) {
      this.engines.set(database.name, database.engine === 'postgres' ? new PostgresEngine(database.url, poolSize) : new MysqlEngine(database.url, poolSize));
    }
  }

  placeOf(entity: string): Placement {
    return placementOf(this.mapping, entity);
  }

  /** Whether a delete of this entity sets a column rather than removing the row. */
  softDeletes(entity: string): boolean {
    return this.mapping?.entities.get(entity)?.onDelete.kind === 'softDelete';
  }

  /** Writes one version, guarded; true if it is now the key's version, false if a newer one was there. */
  async write(write: TargetWrite): Promise<boolean> {
    const mapped = this.mapping?.entities.get(write.entity);
    const place = this.placeOf(write.entity);
    const where = `entity "${write.entity}" → ${place.database} table ${place.table}`;
    if (!mapped) {
      try {
        return await upsertRecord(this.syncedRecords, {
          entity: write.entity,
          key: write.key,
          version: write.version,
          dataJson: write.dataText,
          deleted: write.op === 'delete',
          messageId: write.messageId,
          overwrite: write.overwrite === true,
        });
      } catch (err) {
        if (isPermanentDatabaseError(err)) throw new TargetRejected(`${where}: ${(err as Error).message}`);
        throw err;
      }
    }
    const plan = await this.planFor(write.entity);
    const engine = this.engines.get(mapped.database)!;
    try {
      const row = rowWrite(plan, {
        ...write,
        data: write.dataText === null ? null : parseData(write.dataText),
        deletedAt: write.deletedAt.toISOString(),
      });
      return await engine.write({ ...row, overwrite: write.overwrite === true });
    } catch (err) {
      if (err instanceof ValueError) throw new TargetRejected(`${where}: ${err.message}`);
      if (engine.isPermanent(err)) {
        const column = engine.columnOf(err);
        throw new TargetRejected(`${where}${column ? `, column ${column}` : ''}: the database refused the row: ${(err as Error).message}`);
      }
      throw err;
    }
  }

  /**
   * Whether each key's row is what its newest completed message made it (stores/verify.ts): null where it
   * is, or where a newer version is there already; else the problem. One query for the keys of
   * synced_records, and one per mapped entity in the list (each engine compares a batch in one query).
   */
  async compare(messages: readonly CompletedVersion[]): Promise<(TargetProblem | null)[]> {
    const problems = new Array<TargetProblem | null>(messages.length).fill(null);
    const unmapped: number[] = [];
    const byEntity = new Map<string, number[]>();
    for (const [i, message] of messages.entries()) {
      if (!this.mapping?.entities.has(message.entity)) unmapped.push(i);
      else if (byEntity.has(message.entity)) byEntity.get(message.entity)!.push(i);
      else byEntity.set(message.entity, [i]);
    }
    const recordProblems = await compareRecords(this.syncedRecords, unmapped.map((i) => messages[i]!));
    unmapped.forEach((i, n) => (problems[i] = recordProblems[n]!));
    for (const [entity, indexes] of byEntity) {
      const plan = await this.planFor(entity);
      const rows: RowWrite[] = [];
      const compared: number[] = [];
      for (const i of indexes) {
        const message = messages[i]!;
        try {
          rows.push(rowWrite(plan, { ...message, data: message.dataText === null ? null : parseData(message.dataText), deletedAt: message.createdAt.toISOString() }));
          compared.push(i);
        } catch (err) {
          // A completed message that no longer fits: the mapping or the table changed since it was written.
          if (!(err instanceof ValueError)) throw err;
          problems[i] = 'different';
        }
      }
      const json = new Set(plan.written.filter((w) => w.column.kind === 'json').map((w) => w.column.name));
      const found = await this.engines.get(this.mapping!.entities.get(entity)!.database)!.compare(rows, json);
      compared.forEach((i, n) => (problems[i] = found[n]!));
    }
    return problems;
  }

  /** The plan of a mapped entity, read from the live schema once; a failed read is tried again next time. */
  private planFor(entity: string): Promise<EntityPlan> {
    let plan = this.plans.get(entity);
    if (!plan) {
      const mapping = this.mapping!.entities.get(entity)!;
      const engine = this.engines.get(mapping.database)!;
      plan = engine.describeTable(mapping.table).then((schema) => planEntity(mapping, schema, `database "${mapping.database}"`));
      plan.catch(() => this.plans.delete(entity));
      this.plans.set(entity, plan);
    }
    return plan;
  }

  /** Checks every database and entity against the live schema, without stopping at the first problem. */
  async check(): Promise<TargetsReport> {
    const databases: DatabaseCheck[] = [];
    const down = new Map<string, boolean>();
    for (const database of this.mapping?.databases.values() ?? []) {
      const found = await this.checkDatabase(database);
      if (found) down.set(database.name, found.unreachable);
      databases.push({ name: database.name, engine: database.engine, address: describeAddress(database.url), ...found });
    }
    const entities: EntityCheck[] = [];
    for (const mapping of this.mapping?.entities.values() ?? []) {
      const base = { entity: mapping.entity, database: mapping.database, table: mapping.table };
      if (down.has(mapping.database)) {
        entities.push({ ...base, problem: `database "${mapping.database}" is not ready`, unreachable: down.get(mapping.database)! });
        continue;
      }
      try {
        const plan = await this.planFor(mapping.entity);
        entities.push({
          ...base,
          keyColumns: plan.keyColumns.map((c) => c.name),
          columns: plan.written.map((w) => `${w.column.name} ← data.${w.path.join('.')}`),
          softDelete: plan.softDelete?.name ?? null,
        });
      } catch (err) {
        entities.push({ ...base, problem: (err as Error).message });
      }
    }
    return { databases, entities, ok: databases.every((d) => !d.problem) && entities.every((e) => !e.problem) };
  }

  private async checkDatabase(database: TargetDatabase): Promise<{ problem: string; unreachable: boolean } | undefined> {
    const engine = this.engines.get(database.name)!;
    const where = `database "${database.name}" (${database.env ? `${database.env}, ` : ''}${describeAddress(database.url)})`;
    try {
      await engine.ping();
      if (!(await engine.hasVersionsTable())) return { problem: `${where} has no outbox_sync_versions table yet; run outbox-sync migrate`, unreachable: false };
    } catch (err) {
      return { problem: `${where} does not answer: ${plainReason(err)}`, unreachable: true };
    }
    return undefined;
  }

  /**
   * Throws TargetsError with the first problem check() finds. With `unreachableIsFine`, a database that does
   * not answer is passed over (a worker goes on: that database's messages wait and retry); a mismatch is not.
   */
  async requireReady(options: { unreachableIsFine?: boolean } = {}): Promise<TargetsReport> {
    const report = await this.check();
    const counts = (item: { problem?: string; unreachable?: boolean }) => item.problem && !(options.unreachableIsFine && item.unreachable);
    const problem = report.databases.find(counts)?.problem ?? report.entities.find(counts)?.problem;
    if (problem) throw new TargetsError(`OUTBOX_SYNC_TARGETS: ${problem}`);
    return report;
  }

  /** Creates or upgrades the bookkeeping table in every mapped database; says what it did per database. */
  async migrate(): Promise<{ database: string; applied: string[] }[]> {
    const done: { database: string; applied: string[] }[] = [];
    for (const database of this.mapping?.databases.values() ?? []) {
      const engine = this.engines.get(database.name)!;
      try {
        done.push({ database: database.name, applied: await engine.migrate() });
      } catch (err) {
        throw new TargetsError(`OUTBOX_SYNC_TARGETS: database "${database.name}" (${describeAddress(database.url)}): cannot migrate: ${plainReason(err)}`);
      }
    }
    return done;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.engines.values()].map((engine) => engine.close()));
  }
}
