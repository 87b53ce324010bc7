/** An HTTP listener on a fixed loopback port that can be opened and closed (closed = connection refused). */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Handler = (method: string, path: string, headers: Record<string, string>, body: string) => Promise<{ status: number; headers: Record<string, string>; body: string }>;

export class HttpPort {
  private server: Server | null = null;
  private sockets = new Set<import('node:net').Socket>();
  constructor(readonly port: number, private readonly handler: Handler) {}

  /**
   * Reserve a free loopback port for a service that listens only later (a vLLM port opens once its container
   * has started). It is taken below Linux's ephemeral range (32768+), so outgoing connections made meanwhile
   * cannot land on it; only another listener could.
   */
  static async freePort(): Promise<number> {
    for (let i = 0; i < 50; i++) {
      const port = 20000 + Math.floor(Math.random() * 12000);
      if (await HttpPort.claim(port)) return port;
    }
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  }

  private static async canListen(port: number): Promise<boolean> {
    const s = createServer();
    const ok = await new Promise<boolean>((r) => {
      s.once('error', () => r(false));
      s.listen(port, '127.0.0.1', () => r(true));
    });
    if (ok) await new Promise<void>((r) => s.close(() => r()));
    return ok;
  }

  /** The preferred port if it is free on 127.0.0.1, else a free one. */
  static async portOrFree(preferred?: number): Promise<number> {
    if (preferred && (await HttpPort.claim(preferred))) return preferred;
    return HttpPort.freePort();
  }

  /** Ports other labs in this process hold but do not listen on yet. */
  private static readonly reserved = new Set<number>();

  private static async claim(port: number): Promise<boolean> {
    if (HttpPort.reserved.has(port) || !(await HttpPort.canListen(port))) return false;
    HttpPort.reserved.add(port);
    return true;
  }

  /** Give the port back when its lab stops. */
  release(): void {
    HttpPort.reserved.delete(this.port);
  }

  get open(): boolean {
    return this.server !== null;
  }

  async up(): Promise<void> {
    if (this.server) return;
    const server = createServer((req, res) => void this.serve(req, res));
    server.on('connection', (s) => { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)); });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  async down(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = null;
    for (const sock of this.sockets) sock.destroy();
    await new Promise<void>((r) => s.close(() => r()));
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
    try {
      const r = await this.handler(req.method ?? 'GET', req.url ?? '/', headers, Buffer.concat(chunks).toString('utf8'));
      res.writeHead(r.status, r.headers);
      res.end(r.body);
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(e));
    }
  }
}
