/**
 * Message JSON with its integers kept exact. JSON.parse reads every number as a double, so an integer past
 * 2^53 (an id, a bigint column's value) would be rounded before it is ever stored. Text with a run of 16
 * or more digits is parsed again with lossless-json, which gives such integers as BigInt; every other
 * number, and all other text, stays as JSON.parse gives it (the fast path). BigInt is written back exactly.
 */
import { isInteger, parse, stringify } from 'lossless-json';

const MAY_HOLD_UNSAFE_INTEGER = /\d{16}/;

/**
 * `parsed` (JSON.parse's or Fastify's result for `text`) with its unsafe integers replaced by BigInt.
 * Throws a SyntaxError-like Error for JSON that JSON.parse took but lossless-json refuses (a key given
 * twice with two values).
 */
export function withExactIntegers(text: string, parsed: unknown): unknown {
  return MAY_HOLD_UNSAFE_INTEGER.test(text) ? parse(text, null, numberOrBigInt) : parsed;
}

/** JSON.parse, integers past 2^53 as BigInt. */
export function parseMessageJson(text: string): unknown {
  return withExactIntegers(text, JSON.parse(text));
}

/** JSON text of message data, BigInt written as the exact integer. */
export function messageJsonText(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (err) {
    // "Do not know how to serialize a BigInt": the slower writer that knows.
    if (err instanceof TypeError) return stringify(value)!;
    throw err;
  }
}

function numberOrBigInt(digits: string): number | bigint {
  const value = Number(digits);
  return Number.isSafeInteger(value) || !isInteger(digits) ? value : BigInt(digits);
}
