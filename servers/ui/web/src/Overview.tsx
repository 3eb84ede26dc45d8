import { useState } from 'react';
import { Link } from 'react-router';
import { ALL_STATUSES, readActivity, readStatus, type ActivityMinute, type OutboxStatus } from './api';
import { ActivityTable, LatencyChart, ThroughputChart } from './charts';
import { clockTime, count, duration, statusName } from './format';
import { usePolling, useTitle } from './hooks';

const COUNTS_EVERY_MS = 5_000;
const CHARTS_EVERY_MS = 30_000;

/** Where a status's count links to, for the statuses an operator acts on. */
const LIST_OF: Partial<Record<string, string>> = { failed: '/messages?status=failed', dead: '/messages?status=dead' };

export function Overview() {
  useTitle('Overview');
  const [status, setStatus] = useState<OutboxStatus | null>(null);
  const [updatedAt, setUpdatedAt] = useState<Date | null>(null);
  const [statusError, setStatusError] = useState<string | null>(null);
  const [minutes, setMinutes] = useState<ActivityMinute[] | null>(null);
  const [activityError, setActivityError] = useState<string | null>(null);

  usePolling(async (signal) => {
    try {
      const next = await readStatus(signal);
      setStatus(next);
      setUpdatedAt(new Date());
      setStatusError(null);
    } catch (error) {
      if (!signal.aborted) setStatusError((error as Error).message);
    }
  }, COUNTS_EVERY_MS);

  usePolling(async (signal) => {
    try {
      setMinutes((await readActivity(signal)).minutes);
      setActivityError(null);
    } catch (error) {
      if (!signal.aborted) setActivityError((error as Error).message);
    }
  }, CHARTS_EVERY_MS);

  return (
    <>
      <div className="title-row">
        <h1>Overview</h1>
        <p className="updated" aria-live="off">
          {updatedAt ? `Updated ${clockTime(updatedAt)}` : 'Loading…'}
        </p>
      </div>
      {statusError && (
        <p role="alert" className="error">
          Could not refresh the counts: {statusError}
        </p>
      )}

      <section aria-label="Counts by status" className="counts">
        <dl>
          {ALL_STATUSES.map((name) => (
            <div key={name} className={`count status-${name}`}>
              <dt>{LIST_OF[name] ? <Link to={LIST_OF[name]!}>{statusName(name)}</Link> : statusName(name)}</dt>
              <dd data-testid={`count-${name}`}>{status ? count(status.counts[name]) : '…'}</dd>
            </div>
          ))}
          <div className="count oldest">
            <dt>Oldest pending</dt>
            <dd data-testid="oldest-pending">{status ? (status.counts.pending === 0 ? 'none' : duration(status.oldestPendingSeconds)) : '…'}</dd>
          </div>
          <div className={`count overdue${status?.slaSeconds === null ? ' no-sla' : ''}`}>
            <dt>Overdue</dt>
            <dd data-testid="overdue">{status ? (status.slaSeconds === null ? 'no SLA' : count(status.overdue)) : '…'}</dd>
            {status && status.slaSeconds !== null && <dd className="sla" data-testid="sla">SLA {duration(status.slaSeconds)}</dd>}
          </div>
        </dl>
      </section>

      {activityError && (
        <p role="alert" className="error">
          Could not load the last hour: {activityError}
        </p>
      )}
      <div className="charts">
        <section aria-labelledby="throughput-heading" className="chart">
          <h2 id="throughput-heading">Throughput, last hour</h2>
          {minutes ? (
            <>
              <ThroughputChart minutes={minutes} />
              <ActivityTable minutes={minutes} kind="throughput" />
            </>
          ) : (
            <p className="muted">Loading…</p>
          )}
        </section>
        <section aria-labelledby="latency-heading" className="chart">
          <h2 id="latency-heading">End-to-end latency, last hour</h2>
          {minutes ? (
            <>
              <LatencyChart minutes={minutes} />
              <ActivityTable minutes={minutes} kind="latency" />
            </>
          ) : (
            <p className="muted">Loading…</p>
          )}
        </section>
      </div>
    </>
  );
}
