/** A small HTTP server for the processes that have no other: GET /metrics in Prometheus text format. */
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { once } from 'node:events';
import type { Config } from '../config/config';
import type { Logger } from './logging';
import { registry, exposition } from './metrics';

export interface MetricsAddress {
  host: string;
  port: number;
}

/** Serves /metrics until closed; `sdkMetricsUrl` adds the Temporal SDK's own worker metrics. */
export async function serveMetrics(address: MetricsAddress, sdkMetricsUrl?: string): Promise<Server> {
  const server = createServer((request, response) => {
    if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
      return;
    }
    exposition(sdkMetricsUrl).then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
    );
  });
  server.listen(address.port, address.host);
  await once(server, 'listening');
  return server;
}

/** Serves /metrics when OUTBOX_SYNC_METRICS_ADDRESS is set; returns the server (or null). */
export async function startMetrics(config: Config, logger: Logger, sdkMetricsUrl?: string): Promise<Server | null> {
  if (!config.metricsAddress) return null;
  const [host, port] = splitAddress(config.metricsAddress);
  const server = await serveMetrics({ host, port }, sdkMetricsUrl);
  logger.info({ address: config.metricsAddress }, 'metrics at /metrics');
  return server;
}

function splitAddress(address: string): [string, number] {
  const at = address.lastIndexOf(':');
  return [address.slice(0, at), Number(address.slice(at + 1))];
}

/** A free loopback port, e.g. for the SDK's metrics exporter, which the worker's /metrics reads from. */
export async function freeLoopbackPort(): Promise<number> {
  const server = createTcpServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}
