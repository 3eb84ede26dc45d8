/** The namespace `migrate` works in: whether it exists, and creating it when an operator asks for that. */
import { status } from '@grpc/grpc-js';
import { isGrpcServiceError, type Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';

export async function namespaceExists(connection: Connection, namespace: string): Promise<boolean> {
  try {
    await connection.workflowService.describeNamespace({ namespace });
    return true;
  } catch (err) {
    if (isGrpcServiceError(err) && err.code === status.NOT_FOUND) return false;
    throw err;
  }
}

/** Registers the namespace with the given retention; false when it was there already (made by someone else meanwhile too). */
export async function createNamespace(connection: Connection, namespace: string, retentionMs: number): Promise<boolean> {
  try {
    await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs(retentionMs) });
    return true;
  } catch (err) {
    if (isGrpcServiceError(err) && err.code === status.ALREADY_EXISTS) return false;
    throw err;
  }
}

/**
 * Runs `work` until the cluster's services know a namespace just created: they learn of it from their
 * namespace cache, refreshed every few seconds, and answer "not found" until then.
 */
export async function onceKnown<T>(work: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await work();
    } catch (err) {
      if (!(isGrpcServiceError(err) && err.code === status.NOT_FOUND) || Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}
