/**
 * A TCP proxy in front of a real server (PostgreSQL, Redis) that a test can cut: `refuse()` drops every
 * open connection and stops listening, so new ones are refused (ECONNREFUSED) until `restore()`; `hang()`
 * accepts new connections and never answers them, as a server that is alive but stuck. The server itself
 * stays real; only the network between it and our processes fails, as in production.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export class FaultProxy {
  private refusing = false;
  private hanging = false;
  private closed = false;
  private readonly sockets = new Set<Socket>();
  /** Connections accepted while hanging: open, never forwarded, never answered. */
  private readonly held = new Set<Socket>();

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

  /** Connections held open without an answer since `hang()`: one per client waiting on the stuck server. */
  get heldConnections(): number {
    return this.held.size;
  }

  /** Drops every open connection (held ones too) and refuses new ones. */
  refuse(): void {
    this.hanging = false;
    this.dropAll();
    if (this.refusing) return;
    this.refusing = true;
    this.server.close();
  }

  /**
   * Drops every open connection and, from now on, accepts new ones but never forwards or answers a byte:
   * a client waits until its own timeout. `refuse()` or `restore()` drops the held connections.
   */
  async hang(): Promise<void> {
    this.hanging = true;
    this.dropAll();
    await this.listen();
  }

  /** Forwards again (listening again on the same port if it was refusing); held connections are dropped. */
  async restore(): Promise<void> {
    if (this.closed) return;
    this.hanging = false;
    for (const socket of this.held) socket.destroy();
    this.held.clear();
    await this.listen();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.refuse();
  }

  private async listen(): Promise<void> {
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

  private dropAll(): void {
    for (const socket of [...this.sockets, ...this.held]) socket.destroy();
    this.sockets.clear();
    this.held.clear();
  }

  private accept(client: Socket, host: string, port: number): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    if (this.hanging) {
      this.held.add(client);
      client.on('error', () => undefined);
      client.on('close', () => this.held.delete(client));
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
