/**
 * The ingest API's OpenAPI 3.1 document, as @fastify/swagger generates it from the route schemas
 * (schemas.ts). `GET /v1/openapi.json` serves it; `npm run docs:openapi` runs this file to write it to
 * docs/openapi.json, and test/ingest-openapi.test.ts fails when that file is no longer what the server
 * generates.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { packageRoot } from '../../config/package-root';
import { buildIngestServer } from './ingest-server';

export const OPENAPI_DOC_PATH = join(packageRoot, 'docs', 'openapi.json');

/** The document of a server built with placeholder settings: it depends on the routes alone. */
export async function openApiDocument(): Promise<Record<string, unknown>> {
  // The pool is never used: nothing here connects.
  const outbox = new pg.Pool();
  const app = buildIngestServer({ outbox }, { ingestTokens: [], ingestMaxBodyBytes: 1, maxDataBytes: 1, temporalUiUrl: '', temporalNamespace: '', targets: null });
  try {
    await app.ready();
    return app.swagger() as unknown as Record<string, unknown>;
  } finally {
    await app.close();
    await outbox.end();
  }
}

/** The file's text: the document, two-space indented, with a final newline. */
export function renderOpenApi(document: unknown): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}

if (require.main === module) {
  openApiDocument().then(
    (document) => writeFileSync(OPENAPI_DOC_PATH, renderOpenApi(document)),
    (err: unknown) => {
      console.error(`docs:openapi: ${(err as Error).message}`);
      process.exitCode = 1;
    },
  );
}
