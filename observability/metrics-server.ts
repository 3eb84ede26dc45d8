/** A small HTTP server for the processes that have no other: GET /metrics in Prometheus text format. */
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
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
