import assert from 'node:assert/strict';
import { InvalidMessageError, checkData, validateBatch, validateMessage } from '../stores/outbox/validate';
import { messageJsonText, parseMessageJson } from '../stores/outbox/message-json';

/** Runs `refuse`, expects an InvalidMessageError with a one-line message, and returns it. */
function refusal(refuse: () => unknown): InvalidMessageError {
  let caught: unknown;
  try {
    refuse();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof InvalidMessageError, `expected an InvalidMessageError, got ${String(caught)}`);
  assert.doesNotMatch(caught.message, /[\r\n]/, 'the reason is one line');
  return caught;
}

/** Asserts that `input` is refused for `field`, with a reason matching `reason`. */
function assertRefused(input: unknown, field: string, reason: RegExp, options: { maxDataBytes?: number } = {}): void {
  const err = refusal(() => validateMessage(input, options));
  assert.equal(err.field, field);
  assert.match(err.reason, reason);
  assert.equal(err.message, field ? `${field}: ${err.reason}` : err.reason);
}

/** An object nested `levels` deep: {a: {a: … {}}}, the outer object being level 1. */
function nested(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = {};
  for (let level = 1; level < levels; level++) value = { a: value };
  return value;
}

describe('message validation (validateMessage, validateBatch, checkData)', () => {
  describe('a valid message', () => {
    it('is an upsert by default, with a null version, a null source and a null idempotency key when they are absent', () => {
      assert.deepEqual(validateMessage({ entity: 'order', key: '42', data: { total: 9.5, items: ['a'] } }), {
        entity: 'order',
        key: '42',
        op: 'upsert',
        version: null,
        data: { total: 9.5, items: ['a'] },
        idempotencyKey: null,
        source: null,
      });
    });

    it('turns a version given as a number into a decimal string', () => {
      assert.equal(validateMessage({ entity: 'order', key: '42', version: 7, data: {} }).version, '7');
    });

    it('keeps a version given as a decimal string, up to the largest PostgreSQL bigint', () => {
      assert.equal(validateMessage({ entity: 'order', key: '42', version: '0', data: {} }).version, '0');
      assert.equal(
        validateMessage({ entity: 'order', key: '42', version: '9223372036854775807', data: {} }).version,
        '9223372036854775807',
      );
    });

    it('accepts a delete without data, its data being null', () => {
      assert.deepEqual(validateMessage({ entity: 'order', key: '42', op: 'delete', version: 3 }), {
        entity: 'order',
        key: '42',
        op: 'delete',
        version: '3',
        data: null,
        idempotencyKey: null,
        source: null,
      });
    });

    it('keeps the idempotency key and the source when they are given', () => {
      const message = validateMessage({ entity: 'order', key: '42', data: {}, idempotencyKey: 'req-1', source: 'shop' });
      assert.equal(message.idempotencyKey, 'req-1');
      assert.equal(message.source, 'shop');
    });

    it('accepts data nested exactly as deep as the limit of 32 levels', () => {
      assert.deepEqual(validateMessage({ entity: 'order', key: '42', data: nested(32) }).data, nested(32));
    });
  });

  describe('a refused message names the field that is wrong', () => {
    it('refuses a message without an entity', () => {
      assertRefused({ key: '42', data: {} }, 'entity', /is required/);
    });

    it('refuses an empty key', () => {
      assertRefused({ entity: 'order', key: '', data: {} }, 'key', /must not be empty/);
    });

    it('refuses a key that is a number rather than a string', () => {
      assertRefused({ entity: 'order', key: 42, data: {} }, 'key', /must be a string/);
    });

    it('refuses an entity longer than 200 characters', () => {
      assertRefused({ entity: 'x'.repeat(201), key: '42', data: {} }, 'entity', /at most 200 characters/);
    });

    it('refuses a key holding control characters', () => {
      assertRefused({ entity: 'order', key: 'line\nbreak', data: {} }, 'key', /control characters/);
    });

    it('refuses an entity holding a lone surrogate', () => {
      assertRefused({ entity: 'order\uD800', key: '42', data: {} }, 'entity', /lone surrogates/);
    });

    it('refuses an unknown field, naming it', () => {
      const err = refusal(() => validateMessage({ entity: 'order', key: '42', data: {}, colour: 'red' }));
      assert.equal(err.field, 'colour');
      assert.equal(err.message, 'colour: is not a field of a message');
    });

    it('refuses the op "merge"', () => {
      assertRefused({ entity: 'order', key: '42', op: 'merge', data: {} }, 'op', /"upsert" or "delete"/);
    });

    it('refuses the version -1', () => {
      assertRefused({ entity: 'order', key: '42', version: -1, data: {} }, 'version', /integer from 0 to 9223372036854775807/);
    });

    it('refuses the version 1.5', () => {
      assertRefused({ entity: 'order', key: '42', version: 1.5, data: {} }, 'version', /integer from 0 to 9223372036854775807/);
    });

    it('refuses the version "9223372036854775808", one past the largest bigint', () => {
      assertRefused({ entity: 'order', key: '42', version: '9223372036854775808', data: {} }, 'version', /integer from 0 to 9223372036854775807/);
    });

    it('refuses the version "007", which has leading zeros', () => {
      assertRefused({ entity: 'order', key: '42', version: '007', data: {} }, 'version', /integer from 0 to 9223372036854775807/);
    });

    it('refuses an upsert without data', () => {
      assertRefused({ entity: 'order', key: '42' }, 'data', /required for an upsert/);
    });

    it('refuses data that is an array', () => {
      assertRefused({ entity: 'order', key: '42', data: [1, 2] }, 'data', /must be a JSON object/);
    });

    it('refuses data that is a string', () => {
      assertRefused({ entity: 'order', key: '42', data: '{"a":1}' }, 'data', /must be a JSON object/);
    });

    it('refuses data on a delete', () => {
      assertRefused({ entity: 'order', key: '42', op: 'delete', data: { a: 1 } }, 'data', /omitted for a delete/);
    });

    it('refuses data nested 40 levels deep', () => {
      assertRefused({ entity: 'order', key: '42', data: nested(40) }, 'data', /deeper than 32 levels/);
    });

    it('refuses data with a NUL character inside a nested string', () => {
      assertRefused({ entity: 'order', key: '42', data: { a: { b: ['ok', 'x\u0000y'] } } }, 'data', /NUL character/);
    });

    it('refuses data holding NaN, which a library caller can pass but JSON cannot carry', () => {
      assertRefused({ entity: 'order', key: '42', data: { total: NaN } }, 'data', /finite numbers/);
    });

    it('refuses data larger than the size limit, saying how large it is', () => {
      // {"a":"xxxxxxxxxx"} is 18 bytes.
      assertRefused({ entity: 'order', key: '42', data: { a: 'x'.repeat(10) } }, 'data', /^is 18 bytes, more than the limit of 17$/, { maxDataBytes: 17 });
      assert.equal(validateMessage({ entity: 'order', key: '42', data: { a: 'x'.repeat(10) } }, { maxDataBytes: 18 }).data!.a, 'x'.repeat(10));
    });

    it('refuses an empty idempotency key', () => {
      assertRefused({ entity: 'order', key: '42', data: {}, idempotencyKey: '' }, 'idempotencyKey', /must not be empty/);
    });

    it('refuses a message that is not an object', () => {
      assertRefused('order 42', '', /must be a JSON object/);
    });
  });

  describe('a batch', () => {
    it('validates every message and keeps their order', () => {
      const batch = validateBatch([
        { entity: 'order', key: '1', data: { n: 1 } },
        { entity: 'order', key: '2', op: 'delete' },
      ]);
      assert.deepEqual(
        batch.map((m) => [m.key, m.op]),
        [
          ['1', 'upsert'],
          ['2', 'delete'],
        ],
      );
    });

    it('refuses a batch that is not an array', () => {
      const err = refusal(() => validateBatch({ entity: 'order', key: '1', data: {} }));
      assert.equal(err.field, '');
      assert.match(err.message, /must be a JSON array/);
    });

    it('refuses an empty batch', () => {
      const err = refusal(() => validateBatch([]));
      assert.equal(err.field, '');
      assert.match(err.message, /at least one message/);
    });

    it('refuses a batch larger than its maximum', () => {
      const message = { entity: 'order', key: '1', data: {} };
      const err = refusal(() => validateBatch([message, message, message], { maxBatch: 2 }));
      assert.equal(err.field, '');
      assert.match(err.message, /at most 2 messages \(got 3\)/);
    });

    it('names the position of its first bad message, counting from 0', () => {
      const err = refusal(() =>
        validateBatch([
          { entity: 'order', key: '1', data: {} },
          { entity: 'order', key: '2', data: {} },
          { entity: 'order', key: 3, data: {} },
        ]),
      );
      assert.ok(err.field.startsWith('[2]'), err.field);
      assert.equal(err.field, '[2].key');
      assert.equal(err.message, '[2].key: must be a string');
    });

    it('names the position when the bad part of a message is its data', () => {
      const err = refusal(() => validateBatch([{ entity: 'order', key: '1', data: {} }, { entity: 'order', key: '2', data: [] }]));
      assert.equal(err.field, '[1].data');
    });
  });

  describe('checkData on its own', () => {
    it('accepts a JSON object for an upsert and nothing for a delete', () => {
      checkData('upsert', { a: [1, 'two', null, true, { b: 2.5 }] }, 1000);
      checkData('delete', null, 1000);
      checkData('delete', undefined, 1000);
    });

    it('names the field it is given', () => {
      const err = refusal(() => checkData('upsert', { when: new Date(0) }, 1000, 'payload'));
      assert.equal(err.field, 'payload');
      assert.match(err.reason, /only JSON values/);
    });

    it('refuses a NUL character in the name of a property', () => {
      const err = refusal(() => checkData('upsert', { 'a\u0000b': 1 }, 1000));
      assert.equal(err.field, 'data');
      assert.match(err.reason, /NUL character/);
    });
  });
});

describe('message JSON with exact integers (parseMessageJson, messageJsonText)', () => {
  it('gives integers past 2^53 as BigInt, and everything else as JSON.parse does', () => {
    const parsed = parseMessageJson('{"id": 9007199254740993, "small": 42, "ratio": 0.1, "phone": "0049123456789012345", "list": [-9223372036854775808]}');
    assert.deepEqual(parsed, { id: 9007199254740993n, small: 42, ratio: 0.1, phone: '0049123456789012345', list: [-9223372036854775808n] });
    const plain = '{"a": 1, "b": [2.5, "x"]}';
    assert.deepEqual(parseMessageJson(plain), JSON.parse(plain));
    assert.throws(() => parseMessageJson('{"n": 12345678901234567890, "n": 1}'), /Duplicate key 'n'/);
  });

  it('writes BigInt back as the exact integer, and accepts it as data and as a version', () => {
    const message = validateMessage({ entity: 'order', key: '1', version: 9223372036854775807n, data: { n: 12345678901234567891n } });
    assert.equal(message.version, '9223372036854775807');
    assert.equal(messageJsonText(message.data), '{"n":12345678901234567891}');
    assert.equal(messageJsonText({ a: 1 }), '{"a":1}');
    assert.throws(() => validateMessage({ entity: 'order', key: '1', version: 2n ** 63n }), /version: must be an integer from 0 to/);
  });
});
