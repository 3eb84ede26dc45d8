import { OPEN_STATUSES } from './api';
import { statusName } from './format';

/** A status as a word first; the colour only repeats what the word says. */
export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge status-${status}`}>{statusName(status)}</span>;
}

/** Its status, and "Overdue" beside it while the message is still open past its SLA. */
export function MessageStatusBadges({ message }: { message: { status: string; overdueAt: string | null } }) {
  const overdue = message.overdueAt !== null && (OPEN_STATUSES as readonly string[]).includes(message.status);
  return (
    <>
      <StatusBadge status={message.status} />
      {overdue && (
        <>
          {' '}
          <StatusBadge status="overdue" />
        </>
      )}
    </>
  );
}
