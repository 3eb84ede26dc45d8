/**
 * Structured logs on stderr: one JSON object per line for a log pipeline, or a readable line on a
 * terminal. Lines about a message carry its messageId (and, from workers, workflowId and runId). The code
 * logs no message data and no secrets; the redaction below is the second line of defence.
 */
import pino from 'pino';
import pretty from 'pino-pretty';

export type Logger = pino.Logger;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** `auto` is readable on a terminal and JSON otherwise. */
export type LogFormat = 'json' | 'pretty' | 'auto';

export interface LogSettings {
  logLevel: LogLevel;
  logFormat: LogFormat;
}

/** Field names whose values never reach a log line, at the top level or one object down. */
const SECRET_FIELDS = ['data', 'password', 'token', 'authorization', 'apiKey'];

export function createLogger(settings: LogSettings, name: string, destination: NodeJS.WritableStream = process.stderr): Logger {
  const options: pino.LoggerOptions = {
    name,
    level: settings.logLevel,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: SECRET_FIELDS.flatMap((field) => [field, `*.${field}`]), censor: '[redacted]' },
  };
  const readable = settings.logFormat === 'pretty' || (settings.logFormat === 'auto' && Boolean((destination as NodeJS.WriteStream).isTTY));
  if (readable) {
    const colorize = Boolean((destination as NodeJS.WriteStream).isTTY);
    return pino(options, pretty({ destination, sync: true, colorize, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l' }));
  }
  // Synchronous writes to the file descriptor: a line is out before a crash or exit, not in a buffer.
  const fd = (destination as { fd?: number }).fd;
  return pino(options, typeof fd === 'number' ? pino.destination({ dest: fd, sync: true }) : destination);
}
