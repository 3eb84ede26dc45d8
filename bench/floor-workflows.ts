/**
 * The engine's floor: workflows that do nothing of ours, so that what they cost is what Temporal (the
 * server and the SDK) costs for one workflow per message. Bundled into the sandbox by bench/floor.ts.
 */
import { proxyLocalActivities, proxySinks, type Sinks } from '@temporalio/workflow';

/** The floor activity: does nothing, as a local activity, as the pipeline's steps first are. */
export interface FloorActivities {
  nothing(): Promise<void>;
}

/** Tells the floor process that a workflow has ended, so that it counts completions without asking the server. */
export interface FloorSinks extends Sinks {
  floor: { ended(): void };
}

const { nothing } = proxyLocalActivities<FloorActivities>({ startToCloseTimeout: '10 seconds' });
const { floor } = proxySinks<FloorSinks>();

/** No steps at all: one workflow task, completed. */
export async function floorEmpty(): Promise<void> {
  floor.ended();
}

/** Two local activities that do nothing: the shape of the pipeline's stage and persist steps. */
export async function floorTwoLocalSteps(): Promise<void> {
  await nothing();
  await nothing();
  floor.ended();
}
