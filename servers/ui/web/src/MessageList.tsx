import { useEffect, useMemo, useState, type FormEvent } from 'react';
import { Link, useSearchParams } from 'react-router';
import { DEFAULT_STATUS, listMessages, retryMatching, type MessageFilter, type MessageRow } from './api';
import { ConfirmDialog } from './ConfirmDialog';
import { count, dateTime, messages } from './format';
import { useTitle } from './hooks';
import { Notices } from './Notices';
import { MessageStatusBadges } from './StatusBadge';
import { Table, type Column } from './Table';

const STATUS_CHOICES = [
  { value: DEFAULT_STATUS, label: 'Failed and dead' },
  { value: 'failed', label: 'Failed' },
  { value: 'dead', label: 'Dead' },
];

const TEXT_FIELDS = [
  { name: 'entity', label: 'Entity' },
  { name: 'key', label: 'Key' },
  { name: 'source', label: 'Source' },
  { name: 'error', label: 'Error contains' },
] as const;

/** The filter in the URL (so a filtered view can be shared); anything missing means "any". */
function filterFrom(params: URLSearchParams): MessageFilter {
  const status = params.get('status') ?? DEFAULT_STATUS;
  return {
    status: STATUS_CHOICES.some((choice) => choice.value === status) ? status : DEFAULT_STATUS,
    entity: params.get('entity') ?? '',
    key: params.get('key') ?? '',
    source: params.get('source') ?? '',
    error: params.get('error') ?? '',
  };
}

function paramsFrom(filter: MessageFilter): Record<string, string> {
  const params: Record<string, string> = {};
  if (filter.status !== DEFAULT_STATUS) params.status = filter.status;
  for (const { name } of TEXT_FIELDS) {
    const value = filter[name].trim();
    if (value !== '') params[name] = value;
  }
  return params;
}

function describe(filter: MessageFilter, { midSentence = false } = {}): string {
  const label = STATUS_CHOICES.find((choice) => choice.value === filter.status)?.label ?? 'Failed and dead';
  const which = midSentence ? label.toLowerCase() : label;
  const parts = TEXT_FIELDS.filter(({ name }) => filter[name] !== '').map(({ name, label }) => `${label.toLowerCase()} ${JSON.stringify(filter[name])}`);
  return `${which} messages${parts.length ? ` with ${parts.join(', ')}` : ''}`;
}

const MESSAGE_COLUMNS: readonly Column<MessageRow>[] = [
  { header: 'Message', rowHeader: true, cell: (row) => <Link to={`/messages/${row.id}`}>#{row.id}</Link> },
  { header: 'Status', cell: (row) => <MessageStatusBadges message={row} /> },
  { header: 'Entity', cell: (row) => row.entity },
  { header: 'Key', className: 'mono key', cell: (row) => row.key },
  { header: 'Source', cell: (row) => row.source ?? '—' },
  { header: 'Attempts', className: 'number', headerClassName: 'number', cell: (row) => row.attempts },
  {
    header: 'Last error',
    className: 'last-error',
    cell: (row) =>
      row.lastError ? (
        <span className="clamp" title={row.lastError}>
          {row.lastErrorKind && <span className="kind">{row.lastErrorKind}: </span>}
          {row.lastError}
        </span>
      ) : (
        '—'
      ),
  },
  { header: 'Updated', cell: (row) => <time dateTime={row.updatedAt}>{dateTime(row.updatedAt)}</time> },
  {
    header: 'Temporal',
    cell: (row) =>
      row.temporalUrl ? (
        <a href={row.temporalUrl} target="_blank" rel="noopener noreferrer">
          Open in Temporal
        </a>
      ) : (
        '—'
      ),
  },
];

interface Listing {
  rows: MessageRow[];
  next: string | null;
  total: number;
}

export function MessageList({ canRetry }: { canRetry: boolean }) {
  useTitle('Failed and dead');
  const [params, setParams] = useSearchParams();
  const query = params.toString();
  // The URL is the source of truth: back/forward and shared links land here too.
  const filter = useMemo(() => filterFrom(new URLSearchParams(query)), [query]);
  const [draft, setDraft] = useState<MessageFilter>(filter);
  const [listing, setListing] = useState<Listing | null>(null);
  const [loading, setLoading] = useState(true);
  const [loadingMore, setLoadingMore] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState('');
  const [confirming, setConfirming] = useState(false);
  const [reloads, setReloads] = useState(0);

  useEffect(() => setDraft(filter), [filter]);

  useEffect(() => {
    const controller = new AbortController();
    setError(null);
    setLoading(true);
    listMessages(filter, null, controller.signal)
      .then((page) => {
        setListing({ rows: page.messages, next: page.next, total: page.total });
        setLoading(false);
      })
      .catch((failure) => {
        if (controller.signal.aborted) return;
        setError((failure as Error).message);
        setLoading(false);
      });
    return () => controller.abort();
  }, [filter, reloads]);

  /** A new filter goes into the URL (and loads from there); the same filter again loads the list afresh. */
  const show = (next: MessageFilter) => {
    setNotice('');
    setDraft(next);
    const nextParams = new URLSearchParams(paramsFrom(next));
    if (nextParams.toString() === query) setReloads((n) => n + 1);
    else setParams(nextParams);
  };

  const apply = (event: FormEvent) => {
    event.preventDefault();
    show(draft);
  };

  const clear = () => show(filterFrom(new URLSearchParams()));

  const loadMore = async () => {
    if (!listing?.next) return;
    setLoadingMore(true);
    try {
      const page = await listMessages(filter, listing.next);
      // Only onto the listing it continues: a new filter meanwhile has replaced it.
      setListing((current) => (current === listing ? { rows: [...listing.rows, ...page.messages], next: page.next, total: page.total } : current));
    } catch (failure) {
      setError((failure as Error).message);
    } finally {
      setLoadingMore(false);
    }
  };

  const retryAll = async () => {
    setConfirming(false);
    setError(null);
    try {
      const { retried } = await retryMatching(filter);
      setNotice(`${messages(retried)} sent back to pending`);
      setReloads((n) => n + 1);
    } catch (failure) {
      setError((failure as Error).message);
    }
  };

  const total = listing?.total ?? 0;

  return (
    <>
      <h1>Failed and dead messages</h1>

      <form role="search" aria-label="Filter messages" className="filters" onSubmit={apply}>
        <div className="field">
          <label htmlFor="filter-status">Status</label>
          <select id="filter-status" value={draft.status} onChange={(event) => setDraft({ ...draft, status: event.target.value })}>
            {STATUS_CHOICES.map((choice) => (
              <option key={choice.value} value={choice.value}>
                {choice.label}
              </option>
            ))}
          </select>
        </div>
        {TEXT_FIELDS.map(({ name, label }) => (
          <div className="field" key={name}>
            <label htmlFor={`filter-${name}`}>{label}</label>
            <input
              id={`filter-${name}`}
              type="search"
              autoComplete="off"
              spellCheck={false}
              value={draft[name]}
              onChange={(event) => setDraft({ ...draft, [name]: event.target.value })}
            />
          </div>
        ))}
        <div className="field buttons">
          <button type="submit">Apply filters</button>
          <button type="button" className="secondary" onClick={clear}>
            Clear
          </button>
        </div>
      </form>

      <div className="list-bar">
        <p data-testid="match-count" className="match-count">
          {listing && !loading ? `${messages(total)} ${total === 1 ? 'matches' : 'match'}` : 'Loading…'}
        </p>
        {canRetry && listing && !loading && total > 0 && (
          <button type="button" className="danger" onClick={() => setConfirming(true)}>
            Retry all {count(total)}
          </button>
        )}
      </div>
      <Notices notice={notice} error={error} />

      {listing && (
        <Table
          label="Message table"
          busy={loading}
          className="messages"
          caption={`${describe(filter)}, newest first`}
          captionId="messages-caption"
          columns={MESSAGE_COLUMNS}
          rows={listing.rows}
          rowKey={(row) => row.id}
          empty="No message matches this filter."
        />
      )}
      {listing?.next && (
        <p>
          <button type="button" className="secondary" onClick={loadMore} disabled={loadingMore}>
            {loadingMore ? 'Loading…' : 'Load more'}
          </button>
        </p>
      )}

      <ConfirmDialog
        open={confirming}
        title={`Retry ${messages(total)}?`}
        confirmLabel="Retry"
        onConfirm={retryAll}
        onCancel={() => setConfirming(false)}
      >
        <p>
          Every message that matches the filter now ({describe(filter, { midSentence: true })}) goes back to pending and runs again, with its attempts reset.
          Each message’s history records the retry under your name.
        </p>
      </ConfirmDialog>
    </>
  );
}
