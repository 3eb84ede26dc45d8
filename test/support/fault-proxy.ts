/**
 * A TCP proxy in front of a real server (PostgreSQL, Redis) that a test can cut: `refuse()` drops every
 * open connection and stops listening, so new ones are refused (ECONNREFUSED) until `restore()`. The
 * server itself stays real; only the network between it and our processes fails, as in production.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export class FaultProxy {
  private refusing = false;
  private closed = false;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static start(targetHost: string, targetPort: number): Promise<FaultProxy> {
    return new Promise((resolve, reject) => {
      let proxy: FaultProxy;
      const server = createServer((client) => proxy.accept(client, targetHost, targetPort));
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        proxy = new FaultProxy(server, (server.address() as { port: number }).port);
        resolve(proxy);
      });
    });
  }

  /** Drops every open connection and refuses new ones. */
  refuse(): void {
    if (this.refusing) return;
    this.refusing = true;
    this.server.close();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  /** Listens again on the same port. */
  async restore(): Promise<void> {
    if (!this.refusing || this.closed) return;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.refusing = false;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.refuse();
  }

  private accept(client: Socket, host: string, port: number): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host, port });
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        this.sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
