// How the page writes times, durations and counts: one place, so every view reads the same.

const two = (n: number) => String(n).padStart(2, '0');

/**
 * Every time on the page is the browser's local time followed by its offset from UTC as ISO 8601 writes
 * it (`+01:00`, `-05:00`, `+00:00`), so that a time read off the page, shared in a ticket or compared with
 * a log line (UTC) is never ambiguous. The offset is the one in force at that moment (summer time too).
 */
export function utcOffset(date: Date): string {
  const east = -date.getTimezoneOffset();
  const minutes = Math.abs(east);
  return `${east < 0 ? '-' : '+'}${two(Math.floor(minutes / 60))}:${two(minutes % 60)}`;
}

/** hh:mm:ss ±hh:mm, 24-hour. */
export function clockTime(date: Date): string {
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())} ${utcOffset(date)}`;
}

/** hh:mm ±hh:mm, for the charts' summaries and tables (one per minute). */
export function minuteLabel(iso: string): string {
  return minuteTick(iso).join(' ');
}

/** The same on two lines, [hh:mm, ±hh:mm], for a chart's axis, where one line would run into the next tick. */
export function minuteTick(iso: string): [string, string] {
  const date = new Date(iso);
  return [`${two(date.getHours())}:${two(date.getMinutes())}`, utcOffset(date)];
}

/** yyyy-mm-dd hh:mm:ss ±hh:mm. */
export function dateTime(iso: string | null): string {
  if (iso === null) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${clockTime(date)}`;
}

/** 45 s, 3 min 20 s, 2 h 5 min, 3 d 4 h. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function milliseconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

/** Plain digits, no grouping: counts are read by scripts and tests as well as people. */
export function count(n: number): string {
  return String(n);
}

/** "1 message", "3 messages". */
export function messages(n: number): string {
  return `${count(n)} ${n === 1 ? 'message' : 'messages'}`;
}

export function statusName(status: string): string {
  return status.charAt(0).toUpperCase() + status.slice(1);
}
