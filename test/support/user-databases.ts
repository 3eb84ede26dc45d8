/**
 * A user's own databases for one test: a PostgreSQL database and a MariaDB/MySQL database of its own, made
 * empty, filled with the test's tables by plain SQL (as a user would, never by migrate), and dropped after.
 */
import mysql from 'mysql2/promise';
import pg from 'pg';
import { pgSettings } from '../../stores/postgres/connect';
import { adminQuery, databaseUrl, dropDatabase, getStack } from './stack';

export const TEST_MYSQL_URL = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306';

export interface UserTables {
  /** SQL run in the user's PostgreSQL database before migrate (several statements). */
  postgres?: string;
  /** SQL run in the user's MariaDB database before migrate (several statements). */
  mysql?: string;
}

export class UserDatabases {
  private constructor(
    readonly name: string,
    readonly postgresUrl: string,
    readonly mysqlUrl: string,
  ) {}

  static async create(name: string, tables: UserTables): Promise<UserDatabases> {
    await adminQuery(`CREATE DATABASE ${name}_user`);
    const admin = await mysql.createConnection({ uri: TEST_MYSQL_URL, multipleStatements: true });
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${name}; CREATE DATABASE ${name} CHARACTER SET utf8mb4`);
    } finally {
      await admin.end();
    }
    const databases = new UserDatabases(name, databaseUrl(getStack().postgresUrl, `${name}_user`), `${TEST_MYSQL_URL.replace(/\/$/, '')}/${name}`);
    if (tables.postgres) await databases.postgres(tables.postgres);
    if (tables.mysql) await databases.mysql(tables.mysql);
    return databases;
  }

  /** Runs SQL in the user's PostgreSQL database, as the user would (not through outbox-sync). */
  async postgres<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
    const client = new pg.Client(pgSettings(this.postgresUrl));
    await client.connect();
    try {
      return (await client.query<T>(sql, params)).rows;
    } finally {
      await client.end();
    }
  }

  /** Runs SQL in the user's MariaDB database; times and big numbers come back as text. */
  async mysql<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    const connection = await mysql.createConnection({ uri: this.mysqlUrl, multipleStatements: true, dateStrings: true, supportBigNumbers: true, bigNumberStrings: true, timezone: 'Z' });
    try {
      const [rows] = await connection.query(sql, params);
      return rows as T[];
    } finally {
      await connection.end();
    }
  }

  async drop(): Promise<void> {
    await dropDatabase(getStack().postgresUrl, `${this.name}_user`);
    const admin = await mysql.createConnection({ uri: TEST_MYSQL_URL });
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${this.name}`);
    } finally {
      await admin.end();
    }
  }
}
