import { useEffect, useState, type ReactNode } from 'react';
import { Link, useParams } from 'react-router';
import { ApiError, readMessage, retryMessage, type Execution, type HistoryEntry, type MessageDetail } from './api';
import { ConfirmDialog } from './ConfirmDialog';
import { dateTime } from './format';
import { useTitle } from './hooks';
import { Notices } from './Notices';
import { MessageStatusBadges, StatusBadge } from './StatusBadge';
import { Table, type Column } from './Table';

const RETRYABLE = new Set(['failed', 'dead']);

const HISTORY_COLUMNS: readonly Column<HistoryEntry>[] = [
  { header: 'When', className: 'nowrap', cell: (entry) => <When iso={entry.at} /> },
  { header: 'From', cell: (entry) => (entry.from ? <StatusBadge status={entry.from} /> : <span className="muted">created</span>) },
  { header: 'To', cell: (entry) => <StatusBadge status={entry.to} /> },
  { header: 'Attempts', className: 'number', headerClassName: 'number', cell: (entry) => entry.attempts },
  { header: 'Error', className: 'last-error', cell: (entry) => entry.error ?? '—' },
  { header: 'By', className: 'nowrap', cell: (entry) => entry.actor ?? <span className="muted">outbox-sync</span> },
];

const RUN_COLUMNS: readonly Column<Execution>[] = [
  {
    header: 'Run',
    cell: (run) => (
      <>
        <span className="mono">{run.runId}</span>{' '}
        <a href={run.url} target="_blank" rel="noopener noreferrer">
          Open in Temporal
        </a>
      </>
    ),
  },
  { header: 'Status', cell: (run) => <span className={`badge run-${run.status.toLowerCase()}`}>{run.status}</span> },
  { header: 'Started', cell: (run) => <When iso={run.startTime} /> },
  { header: 'Closed', cell: (run) => (run.closeTime ? <When iso={run.closeTime} /> : <span className="muted">running</span>) },
];

export function MessagePage({ canRetry }: { canRetry: boolean }) {
  const { id = '' } = useParams();
  // A fresh view per message: nothing of the last one (data, notices) carries over.
  return <MessageView key={id} rawId={id} canRetry={canRetry} />;
}

function MessageView({ rawId, canRetry }: { rawId: string; canRetry: boolean }) {
  const id = /^[1-9]\d*$/.test(rawId) ? Number(rawId) : null;
  useTitle(`Message #${rawId}`);
  const [detail, setDetail] = useState<MessageDetail | null>(null);
  const [loadError, setLoadError] = useState<string | null>(id === null ? `“${rawId}” is not a message id` : null);
  const [retryError, setRetryError] = useState<string | null>(null);
  const [notice, setNotice] = useState('');
  const [confirming, setConfirming] = useState(false);
  const [reloads, setReloads] = useState(0);

  useEffect(() => {
    if (id === null) return;
    const controller = new AbortController();
    readMessage(id, controller.signal)
      .then((next) => {
        setDetail(next);
        setLoadError(null);
      })
      .catch((failure) => {
        if (controller.signal.aborted) return;
        if (failure instanceof ApiError && failure.status === 404) setDetail(null);
        setLoadError((failure as Error).message);
      });
    return () => controller.abort();
  }, [id, reloads]);

  const retry = async () => {
    setConfirming(false);
    if (id === null) return;
    setRetryError(null);
    setNotice('');
    try {
      await retryMessage(id);
      setNotice(`Message #${id} sent back to pending`);
    } catch (failure) {
      setRetryError((failure as Error).message);
    }
    // Show the message as it is now, whether the retry moved it or something else had already.
    setReloads((n) => n + 1);
  };

  const error = retryError ?? loadError;
  const message = detail?.message;
  return (
    <>
      <p className="breadcrumb">
        <Link to="/messages">← Failed and dead messages</Link>
      </p>
      <div className="title-row">
        <h1>Message #{rawId}</h1>
        {canRetry && message && RETRYABLE.has(message.status) && (
          <button type="button" className="danger" onClick={() => setConfirming(true)}>
            Retry this message
          </button>
        )}
      </div>
      <Notices notice={notice} error={error} />
      {!detail && !error && <p className="muted">Loading…</p>}

      {detail && message && (
        <>
          <dl className="fields">
            <Field name="Status">
              <MessageStatusBadges message={message} />
            </Field>
            <Field name="Entity">{message.entity}</Field>
            <Field name="Key">
              <span className="mono">{message.key}</span>
            </Field>
            <Field name="Source">{message.source ?? '—'}</Field>
            <Field name="Op">{message.op}</Field>
            <Field name="Version">
              <span className="mono">{message.version}</span>
            </Field>
            <Field name="Attempts">{message.attempts}</Field>
            <Field name="Idempotency key">{message.idempotencyKey ? <span className="mono">{message.idempotencyKey}</span> : '—'}</Field>
            <Field name="Created">
              <When iso={message.createdAt} />
            </Field>
            <Field name="Updated">
              <When iso={message.updatedAt} />
            </Field>
            <Field name={nextLabel(message.status)}>
              <When iso={message.status === 'completed' || message.status === 'dead' ? null : message.availableAt} />
            </Field>
            <Field name="Completed">
              <When iso={message.completedAt} />
            </Field>
            <Field name="Overdue at">
              <When iso={message.overdueAt} />
            </Field>
            <Field name="Target">
              {message.target.database} table <span className="mono">{message.target.table}</span>
            </Field>
            <Field name="Workflow id" full>
              {message.workflowId ? (
                <>
                  <span className="mono">{message.workflowId}</span>
                  {message.temporalUrl && (
                    <>
                      {' '}
                      <a href={message.temporalUrl} target="_blank" rel="noopener noreferrer">
                        Open in Temporal
                      </a>
                    </>
                  )}
                </>
              ) : (
                '—'
              )}
            </Field>
            <Field name="Last error" full>
              {message.lastError ? (
                <>
                  {message.lastErrorKind && <span className="kind">{message.lastErrorKind}: </span>}
                  <span className="pre-line">{message.lastError}</span>
                </>
              ) : (
                '—'
              )}
            </Field>
            <Field name="Data" wide>
              {message.data === null ? (
                message.op === 'delete' ? '— (a delete carries no data)' : '—'
              ) : (
                <pre className="data" tabIndex={0} aria-label="Data as JSON">
                  {JSON.stringify(message.data, null, 2)}
                </pre>
              )}
            </Field>
          </dl>

          <section aria-labelledby="history-heading">
            <h2 id="history-heading">Status history</h2>
            <Table
              label="History table"
              caption={`Status changes of message #${message.id}, oldest first`}
              captionHidden
              columns={HISTORY_COLUMNS}
              rows={detail.history}
              rowKey={(_, index) => index}
            />
          </section>

          <section aria-labelledby="executions-heading">
            <h2 id="executions-heading">Executions</h2>
            {detail.executionsError ? (
              <p className="warning">{detail.executionsError}</p>
            ) : detail.executions.length === 0 ? (
              <p className="muted">No workflow run for this message yet.</p>
            ) : (
              <Table
                label="Runs table"
                caption={`Workflow runs of message #${message.id}, newest first`}
                captionHidden
                columns={RUN_COLUMNS}
                rows={detail.executions}
                rowKey={(run) => run.runId}
              />
            )}
          </section>
        </>
      )}

      <ConfirmDialog open={confirming} title={`Retry message #${rawId}?`} confirmLabel="Retry" onConfirm={retry} onCancel={() => setConfirming(false)}>
        <p>It goes back to pending and runs again, with its attempts reset. The retry is recorded in its history under your name.</p>
      </ConfirmDialog>
    </>
  );
}

function Field({ name, children, wide = false, full = false }: { name: string; children: ReactNode; wide?: boolean; full?: boolean }) {
  return (
    <div className={wide ? 'field full wide' : full ? 'field full' : 'field'}>
      <dt>{name}</dt>
      <dd>{children}</dd>
    </div>
  );
}

/**
 * What the outbox's available_at means depends on the status: when a pending message may be claimed,
 * when a processing one's lease ends, when a failed one runs again; a completed or dead one has no next run.
 */
function nextLabel(status: string): string {
  return status === 'processing' ? 'Lease ends' : status === 'pending' ? 'Available from' : 'Next run';
}

function When({ iso }: { iso: string | null }) {
  if (iso === null) return <>—</>;
  return <time dateTime={iso}>{dateTime(iso)}</time>;
}
