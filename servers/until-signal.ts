/** Resolves on the first SIGINT or SIGTERM, with the signal; the process then shuts down in order. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const handler = (signal: NodeJS.Signals) => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
      resolve(signal);
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
}

/** A signal came while the process was still waiting: it ends without having started. */
export class StartStopped extends Error {
  override name = 'StartStopped';
  constructor(readonly signal: NodeJS.Signals) {
    super(`stopped by ${signal} before starting`);
  }
}

/** Aborts on the first SIGINT or SIGTERM; `requested` resolves with that signal. */
export interface StopRequest {
  signal: AbortSignal;
  requested: Promise<NodeJS.Signals>;
}

export function stopOnSignal(): StopRequest {
  const controller = new AbortController();
  const requested = untilSignal().then((signal) => {
    controller.abort(new StartStopped(signal));
    return signal;
  });
  return { signal: controller.signal, requested };
}
