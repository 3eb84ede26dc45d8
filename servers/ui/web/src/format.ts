// How the page writes times, durations and counts: one place, so every view reads the same.

const two = (n: number) => String(n).padStart(2, '0');

/** hh:mm:ss in the browser's time zone, 24-hour. */
export function clockTime(date: Date): string {
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
}

/** hh:mm, for chart labels (one per minute). */
export function minuteLabel(iso: string): string {
  const date = new Date(iso);
  return `${two(date.getHours())}:${two(date.getMinutes())}`;
}

/** yyyy-mm-dd hh:mm:ss in the browser's time zone. */
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
