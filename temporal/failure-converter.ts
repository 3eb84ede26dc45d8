/**
 * The failure converter that workers and clients load (by path, as the SDK requires, so that the workflow
 * sandbox's bundle carries it too) when payloads are encrypted. A failure's message and stack trace are
 * plain fields of the history, and a database's words can quote a value ("Duplicate entry 'x'"); with
 * common attributes encoded, both travel as a payload instead, which the codec seals with the rest. The
 * history then says "Encoded failure", and the codec server shows the words to an operator.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
