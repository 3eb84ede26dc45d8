/** How every client and worker reaches Temporal: address, TLS and API key, and the encrypting data converter. */
import { readFileSync } from 'node:fs';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import type { Config } from '../config/config';
import { dataConverterFor } from './data-converter';

/** Address, TLS (private CA, mTLS client pair, server name) and API key, for the client and the worker alike. */
export function temporalConnectionOptions(config: Config): { address: string; tls?: TLSConfig | boolean; apiKey?: string } {
  const tls: TLSConfig = {
    ...(config.temporalTlsServerName ? { serverNameOverride: config.temporalTlsServerName } : {}),
    ...(config.temporalTlsCaFile ? { serverRootCACertificate: readFileSync(config.temporalTlsCaFile) } : {}),
    ...(config.temporalTlsCertFile ? { clientCertPair: { crt: readFileSync(config.temporalTlsCertFile), key: readFileSync(config.temporalTlsKeyFile) } } : {}),
  };
  const useTls = config.temporalTls || Object.keys(tls).length > 0 || config.temporalApiKey !== '';
  return {
    address: config.temporalAddress,
    ...(useTls ? { tls } : {}),
    ...(config.temporalApiKey ? { apiKey: config.temporalApiKey } : {}),
  };
}

export async function connectTemporal(config: Config, connectTimeoutMs?: number): Promise<{ connection: Connection; client: Client }> {
  const connection = await Connection.connect({
    ...temporalConnectionOptions(config),
    ...(connectTimeoutMs === undefined ? {} : { connectTimeout: connectTimeoutMs }),
  });
  // With OUTBOX_SYNC_CODEC_KEYS set, what the client sends Temporal (workflow inputs) is encrypted.
  const dataConverter = dataConverterFor(config);
  return { connection, client: new Client({ connection, namespace: config.temporalNamespace, ...(dataConverter ? { dataConverter } : {}) }) };
}
