/**
 * Payload encryption for what Temporal stores: workflow and activity inputs and results. Each payload is
 * serialized whole (metadata and data) and sealed with AES-256-GCM under the first configured key; the
 * key id travels in the metadata, so after a rotation payloads sealed under an older key still open as
 * long as that key stays configured.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ApplicationFailure, type Payload, type PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';

const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface CodecKey {
  id: string;
  /** 32 bytes. */
  key: Buffer;
}

export class AesGcmCodec implements PayloadCodec {
  private readonly keys: Map<string, Buffer>;
  private readonly current: CodecKey;

  /** `keys[0]` encrypts; every key decrypts what was sealed under its id. */
  constructor(keys: readonly CodecKey[]) {
    if (keys.length === 0) throw new Error('the payload codec needs at least one key');
    for (const { id, key } of keys) if (key.length !== 32) throw new Error(`codec key "${id}" must be 32 bytes`);
    this.current = keys[0]!;
    this.keys = new Map(keys.map((k) => [k.id, k.key]));
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.seal(payload));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.open(payload));
  }

  private seal(payload: Payload): Payload {
    const plain = temporal.api.common.v1.Payload.encode(payload).finish();
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.current.key, iv);
    // The key id is authenticated too: a payload cannot be passed off as sealed under another key.
    cipher.setAAD(Buffer.from(this.current.id));
    const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    return {
      metadata: { encoding: Buffer.from(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: Buffer.from(this.current.id) },
      data: sealed,
    };
  }

  private open(payload: Payload): Payload {
    if (Buffer.from(payload.metadata?.encoding ?? []).toString() !== ENCRYPTED_ENCODING) return payload;
    const keyId = Buffer.from(payload.metadata?.[KEY_ID_METADATA] ?? []).toString();
    const key = this.keys.get(keyId);
    // Non-retryable: no retry finds a key that is not configured.
    if (!key) throw ApplicationFailure.nonRetryable(`payload encrypted under key id "${keyId}", which is not configured in OUTBOX_SYNC_CODEC_KEYS`, 'UnknownCodecKey');
    const sealed = Buffer.from(payload.data ?? []);
    if (sealed.length < IV_BYTES + TAG_BYTES) throw ApplicationFailure.nonRetryable('encrypted payload is too short', 'BadEncryptedPayload');
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(keyId));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw ApplicationFailure.nonRetryable(`encrypted payload does not authenticate under key "${keyId}"`, 'BadEncryptedPayload');
    }
    return temporal.api.common.v1.Payload.decode(plain);
  }
}
