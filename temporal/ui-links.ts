/** Addresses in the Temporal Web UI, built in one place from TEMPORAL_UI_URL and the namespace. */
import type { Config } from '../config/config';

type UiSettings = Pick<Config, 'temporalUiUrl' | 'temporalNamespace'>;

/** The namespace's list of workflows, optionally filtered by a visibility query. */
export function workflowsUrl(config: UiSettings, query?: string): string {
  const list = `${config.temporalUiUrl}/namespaces/${encodeURIComponent(config.temporalNamespace)}/workflows`;
  return query === undefined ? list : `${list}?query=${encodeURIComponent(query)}`;
}

/** One workflow id (its latest run). */
export function workflowUrl(config: UiSettings, workflowId: string): string {
  return `${workflowsUrl(config)}/${encodeURIComponent(workflowId)}`;
}

/** One run of a workflow: its event history. */
export function runUrl(config: UiSettings, workflowId: string, runId: string): string {
  return `${workflowUrl(config, workflowId)}/${encodeURIComponent(runId)}/history`;
}
