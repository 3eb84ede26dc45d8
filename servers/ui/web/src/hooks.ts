import { useEffect, useRef } from 'react';

/** The browser tab says which view this is. */
export function useTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · outbox-sync`;
  }, [title]);
}

/**
 * Calls `load` now and every `everyMs` after, each with a signal that is aborted when the view goes away
 * (so a late answer never lands on a view that has moved on). A slow answer is not overlapped by the next call.
 */
export function usePolling(load: (signal: AbortSignal) => Promise<void>, everyMs: number): void {
  const latest = useRef(load);
  latest.current = load;
  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      await latest.current(controller.signal).catch(() => {});
      if (!controller.signal.aborted) timer = setTimeout(tick, everyMs);
    };
    void tick();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [everyMs]);
}
