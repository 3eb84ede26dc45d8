/** The data converter every Temporal client and worker uses: encrypting when OUTBOX_SYNC_CODEC_KEYS is set. */
import type { DataConverter } from '@temporalio/common';
import type { Config } from '../config/config';
import { AesGcmCodec } from './payload-codec';

/** The failure converter module that seals failures' messages too (temporal/failure-converter.ts). */
export const ENCODED_FAILURES_PATH = require.resolve('./failure-converter');

/**
 * With keys configured, AES-GCM for every payload and failures' messages moved into payloads; undefined
 * (the SDK's default, plain JSON) without.
 */
export function dataConverterFor(config: Pick<Config, 'codecKeys'>): DataConverter | undefined {
  return config.codecKeys.length > 0 ? { payloadCodecs: [new AesGcmCodec(config.codecKeys)], failureConverterPath: ENCODED_FAILURES_PATH } : undefined;
}

export { AesGcmCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA } from './payload-codec';
