import { statusName } from './format';

/** A status as a word first; the colour only repeats what the word says. */
export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge status-${status}`}>{statusName(status)}</span>;
}
