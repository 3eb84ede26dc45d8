// The overview's two charts. Only the Chart.js parts they draw with are registered, so the bundle carries
// nothing else. Each canvas is an image with a one-sentence summary, and its numbers are a table too.
import { useEffect, useMemo, useRef } from 'react';
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
  type ChartConfiguration,
  type ChartType,
} from 'chart.js';
import type { ActivityMinute } from './api';
import { count, milliseconds, minuteLabel, minuteTick } from './format';
import { Table, type Column } from './Table';

Chart.register(BarController, BarElement, LineController, LineElement, PointElement, CategoryScale, LinearScale, Legend, Tooltip);
Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
Chart.defaults.color = '#3d4451';
Chart.defaults.animation = false;

const COLOURS = {
  completed: '#1f7a3a',
  failed: '#b3261e',
  p50: '#1d5fa8',
  p95: '#9a5b00',
  p99: '#6b2fa0',
};

/** A Chart.js chart on a canvas, rebuilt from `config` whenever the data behind it changes. */
function CanvasChart<T extends ChartType>({ config, label }: { config: ChartConfiguration<T>; label: string }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart<T> | null>(null);

  useEffect(() => {
    if (!canvas.current) return;
    chart.current = new Chart(canvas.current, config);
    return () => {
      chart.current?.destroy();
      chart.current = null;
    };
    // The chart is made once; later data goes through update() below.
  }, []);

  useEffect(() => {
    if (!chart.current) return;
    chart.current.data = config.data;
    chart.current.update();
  }, [config.data]);

  return (
    <div className="chart-box">
      <canvas ref={canvas} role="img" aria-label={label}>
        {label}
      </canvas>
    </div>
  );
}

const baseOptions = {
  responsive: true,
  maintainAspectRatio: false,
  interaction: { mode: 'index' as const, intersect: false },
  plugins: { legend: { position: 'bottom' as const } },
};

export function throughputSummary(minutes: ActivityMinute[]): string {
  const completed = minutes.reduce((sum, m) => sum + m.completed, 0);
  const failed = minutes.reduce((sum, m) => sum + m.failed, 0);
  if (completed === 0 && failed === 0) return 'Throughput, last hour: no message completed or failed.';
  const busiest = minutes.reduce((best, m) => (m.completed > best.completed ? m : best), minutes[0]);
  return (
    `Throughput, last hour: ${count(completed)} completed and ${count(failed)} failed; ` +
    `busiest minute ${minuteLabel(busiest.at)} with ${count(busiest.completed)} completed.`
  );
}

export function latencySummary(minutes: ActivityMinute[]): string {
  const measured = minutes.filter((m) => m.latencyMs !== null);
  if (measured.length === 0) return 'End-to-end latency, last hour: no message completed, so no latency to show.';
  const last = measured[measured.length - 1];
  const worst = measured.reduce((best, m) => (m.latencyMs!.p99 > best.latencyMs!.p99 ? m : best), measured[0]);
  return (
    `End-to-end latency, last hour: at ${minuteLabel(last.at)} p50 ${milliseconds(last.latencyMs!.p50)}, ` +
    `p95 ${milliseconds(last.latencyMs!.p95)}, p99 ${milliseconds(last.latencyMs!.p99)}; ` +
    `highest p99 ${milliseconds(worst.latencyMs!.p99)} at ${minuteLabel(worst.at)}.`
  );
}

export function ThroughputChart({ minutes }: { minutes: ActivityMinute[] }) {
  const config = useMemo(() => throughputConfig(minutes), [minutes]);
  return <CanvasChart config={config} label={throughputSummary(minutes)} />;
}

function throughputConfig(minutes: ActivityMinute[]): ChartConfiguration<'bar'> {
  return {
    type: 'bar',
    data: {
      labels: minutes.map((m) => minuteTick(m.at)),
      datasets: [
        { label: 'Completed', data: minutes.map((m) => m.completed), backgroundColor: COLOURS.completed },
        { label: 'Failed or dead', data: minutes.map((m) => m.failed), backgroundColor: COLOURS.failed },
      ],
    },
    options: {
      ...baseOptions,
      scales: {
        x: { stacked: true, ticks: { maxTicksLimit: 12, maxRotation: 0 } },
        y: { stacked: true, beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: 'messages per minute' } },
      },
    },
  };
}

export function LatencyChart({ minutes }: { minutes: ActivityMinute[] }) {
  const config = useMemo(() => latencyConfig(minutes), [minutes]);
  return <CanvasChart config={config} label={latencySummary(minutes)} />;
}

function latencyConfig(minutes: ActivityMinute[]): ChartConfiguration<'line'> {
  const series = (pick: 'p50' | 'p95' | 'p99') => minutes.map((m) => (m.latencyMs ? m.latencyMs[pick] : null));
  // Dashes and point shapes as well as colours tell the lines apart. Every minute gets its point: a
  // minute with no measured neighbour (the only one so far, or one after a quiet spell) has no line to
  // draw, and would otherwise show nothing at all.
  const line = (pick: 'p50' | 'p95' | 'p99', dash: number[], look: string, pointStyle: 'circle' | 'rect' | 'triangle') => ({
    label: look ? `${pick} (${look})` : pick,
    data: series(pick),
    borderColor: COLOURS[pick],
    backgroundColor: COLOURS[pick],
    borderDash: dash,
    borderWidth: 2,
    pointStyle,
    pointRadius: 3,
    pointHoverRadius: 5,
    pointHitRadius: 6,
    spanGaps: false,
  });
  return {
    type: 'line',
    data: {
      labels: minutes.map((m) => minuteTick(m.at)),
      datasets: [line('p50', [], '', 'circle'), line('p95', [6, 4], 'dashed', 'rect'), line('p99', [2, 3], 'dotted', 'triangle')],
    },
    options: {
      ...baseOptions,
      scales: {
        x: { ticks: { maxTicksLimit: 12, maxRotation: 0 } },
        y: {
          beginAtZero: true,
          title: { display: true, text: 'created → completed' },
          ticks: { callback: (value) => milliseconds(Number(value)) },
        },
      },
      plugins: {
        // Legend entries drawn as the lines themselves, so the dashes show there too.
        legend: { position: 'bottom', labels: { usePointStyle: true, pointStyle: 'line', pointStyleWidth: 36 } },
        tooltip: { callbacks: { label: (item) => `${item.dataset.label}: ${milliseconds(Number(item.parsed.y))}` } },
      },
    },
  };
}

const MINUTE: Column<ActivityMinute> = { header: 'Minute', rowHeader: true, cell: (m) => minuteLabel(m.at) };

const THROUGHPUT_COLUMNS: readonly Column<ActivityMinute>[] = [
  MINUTE,
  { header: 'Completed', className: 'number', cell: (m) => count(m.completed) },
  { header: 'Failed or dead', className: 'number', cell: (m) => count(m.failed) },
];

/** Over the minutes that have a latency (the table shows no other). */
const LATENCY_COLUMNS: readonly Column<ActivityMinute>[] = [
  MINUTE,
  ...(['p50', 'p95', 'p99'] as const).map((pick): Column<ActivityMinute> => ({ header: pick, className: 'number', cell: (m) => milliseconds(m.latencyMs![pick]) })),
];

/** The charts' numbers for anyone who cannot see (or would rather read) them. */
export function ActivityTable({ minutes, kind }: { minutes: ActivityMinute[]; kind: 'throughput' | 'latency' }) {
  const latency = kind === 'latency';
  const rows = latency ? minutes.filter((m) => m.latencyMs !== null) : minutes.filter((m) => m.completed > 0 || m.failed > 0);
  return (
    <details className="chart-table">
      <summary>Show as table</summary>
      {rows.length === 0 ? (
        <p>No minute in the last hour has anything to show.</p>
      ) : (
        <Table
          short
          label={latency ? 'Latency table' : 'Throughput table'}
          caption={latency ? 'End-to-end latency per minute (minutes with completed messages)' : 'Messages per minute (minutes with any)'}
          columns={latency ? LATENCY_COLUMNS : THROUGHPUT_COLUMNS}
          rows={rows}
          rowKey={(m) => m.at}
        />
      )}
    </details>
  );
}
