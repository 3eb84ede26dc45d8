import { useState } from 'react';
import { Link } from 'react-router';
import { ALL_STATUSES, readActivity, readLastVerification, readStatus, type ActivityMinute, type OutboxStatus, type VerifyRun } from './api';
import { ActivityTable, LatencyChart, ThroughputChart } from './charts';
import { clockTime, count, dateTime, duration, messages, milliseconds, statusName } from './format';
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
  // undefined until the first answer; null when verify has never run.
  const [lastRun, setLastRun] = useState<VerifyRun | null | undefined>(undefined);
  const [verifyError, setVerifyError] = useState<string | null>(null);

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

  usePolling(async (signal) => {
    try {
      setLastRun((await readLastVerification(signal)).lastRun);
      setVerifyError(null);
    } catch (error) {
      if (!signal.aborted) setVerifyError((error as Error).message);
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

      <section aria-labelledby="verify-heading" className={`verification${lastRun ? (lastRun.passed ? ' passed' : ' failed') : ''}`}>
        <h2 id="verify-heading">Last verification</h2>
        {verifyError && (
          <p role="alert" className="error">
            Could not load the last verification: {verifyError}
          </p>
        )}
        {lastRun === undefined ? <p className="muted">Loading…</p> : <Verification run={lastRun} />}
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

/** What the last `verify` over every entity found, and when it ran. */
function Verification({ run }: { run: VerifyRun | null }) {
  if (run === null) {
    return (
      <p data-testid="verify-result">
        Not run yet: <code>outbox-sync verify</code> compares every key in the target with the outbox, and its result shows here.
      </p>
    );
  }
  const tookMs = Date.parse(run.finishedAt) - Date.parse(run.startedAt);
  const ago = (Date.now() - Date.parse(run.finishedAt)) / 1000;
  return (
    <>
      <p data-testid="verify-result" className="verify-result">
        {run.passed
          ? 'Passed: the target matches the outbox.'
          : `Failed: ${count(run.missing)} missing, ${count(run.stale)} stale, ${count(run.different)} different.`}
        {run.repaired !== null && ` ${messages(run.repaired)} sent through the pipeline again (--repair).`}
      </p>
      <p data-testid="verify-when" className="muted">
        {count(run.checked)} keys checked in {tookMs < 60_000 ? milliseconds(tookMs) : duration(tookMs / 1000)}; ended at {dateTime(run.finishedAt)} ({duration(ago)} ago).
      </p>
    </>
  );
}
