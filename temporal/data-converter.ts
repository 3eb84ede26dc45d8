/** The data converter every Temporal client and worker uses: encrypting when OUTBOX_SYNC_CODEC_KEYS is set. */
import type { DataConverter } from '@temporalio/common';
import type { Config } from '../config/config';
import { AesGcmCodec } from './payload-codec';

/** `{ payloadCodecs: [AES-GCM] }` with keys configured; undefined (the SDK's default, plain JSON) without. */
export function dataConverterFor(config: Pick<Config, 'codecKeys'>): DataConverter | undefined {
  return config.codecKeys.length > 0 ? { payloadCodecs: [new AesGcmCodec(config.codecKeys)] } : undefined;
}

export { AesGcmCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA } from './payload-codec';
