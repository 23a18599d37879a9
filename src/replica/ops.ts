// A replica's operations endpoint (docs/operations.md): plain HTTP on its own port, for
// Prometheus, load balancers and orchestrators. GET /metrics (Prometheus text), /healthz
// (liveness) and /readyz (readiness). It is read-only and says nothing that `fitbroker status`
// does not already tell an authenticated admin, apart from process metrics; it must never take
// a request that changes anything, and never hold up the replica: a scrape reads counters.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** Why a replica is not ready; what /readyz answers, and what the fitbroker_ready gauge shows. */
export interface Readiness {
  ready: boolean;
  /** One sentence per condition not met, for a person reading the 503's body. */
  missing: string[];
  listening: boolean;
  draining: boolean;
  /** With the ordering protocol (n >= 3f+1): the other replicas this one's links reach, and how many it needs (2f). */
  peers?: { connected: number[]; needed: number };
}

export interface ReadinessInput {
  /** The client port accepts connections. */
  listening: boolean;
  /** close() has begun: the replica takes no new work. */
  draining: boolean;
  f: number;
  /** Absent when the ordering protocol does not run (n < 3f+1): no replica links are needed. */
  peersConnected: number[] | undefined;
}

/**
 * Ready means "send clients here": the replica accepts client connections, is not shutting
 * down, and, when it runs the ordering protocol, reaches at least 2f other replicas, so that
 * with itself a quorum of 2f+1 can order events and control changes. A leader change or a
 * replica catching up does not make it unready: those are the cluster's business, and taking
 * every replica out of a load balancer during a leader change would turn a pause into an outage.
 */
export function readiness(i: ReadinessInput): Readiness {
  const missing: string[] = [];
  // A replica shutting down has closed its port too: one reason is enough.
  if (!i.listening && !i.draining) missing.push('not listening for clients yet');
  if (i.draining) missing.push('shutting down (SIGTERM): finishing what is pending, taking no new work');
  let peers: Readiness['peers'];
  if (i.peersConnected !== undefined) {
    const needed = 2 * i.f;
    peers = { connected: i.peersConnected, needed };
    if (i.peersConnected.length < needed) {
      missing.push(`linked to ${i.peersConnected.length} other replica(s) [${i.peersConnected.join(',')}], needs ${needed} (2f) to order: start the others, or check the network between them`);
    }
  }
  return { ready: missing.length === 0, missing, listening: i.listening, draining: i.draining, ...(peers ? { peers } : {}) };
}

export interface OpsHandlers {
  metrics(): Promise<string>;
  metricsContentType: string;
  health(): Record<string, unknown>;
  readiness(): Readiness;
}

/** The HTTP server behind /metrics, /healthz and /readyz. */
export class OpsServer {
  private readonly server: Server;

  constructor(private readonly h: OpsHandlers) {
    this.server = createServer((req, res) => this.route(req, res));
    // A scraper or probe that keeps its connection open must not hold up a shutdown.
    this.server.keepAliveTimeout = 5_000;
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const addr = this.server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return json(res, 405, { error: `method ${req.method} not allowed; this endpoint is read-only (GET /metrics, /healthz, /readyz)` });
    }
    switch (path) {
      case '/metrics':
        this.h.metrics().then(
          (text) => {
            res.writeHead(200, { 'Content-Type': this.h.metricsContentType });
            res.end(req.method === 'HEAD' ? undefined : text);
          },
          (e: unknown) => json(res, 500, { error: `collecting metrics failed: ${(e as Error)?.message ?? String(e)}` }),
        );
        return;
      case '/healthz':
        // Answering at all is the proof: the process runs and its event loop turns.
        return json(res, 200, { status: 'ok', ...this.h.health() });
      case '/readyz': {
        const r = this.h.readiness();
        return json(res, r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', ...r });
      }
      default:
        return json(res, 404, { error: `no such path ${path}; this endpoint serves /metrics, /healthz and /readyz` });
    }
  }
}

function json(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(text);
}
