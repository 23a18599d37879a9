// `status`: asks every replica for its view of itself. Each answer is one replica's word,
// shown side by side; nothing here is voted, so a lying replica can only lie about itself.

import type { KeyObject } from 'node:crypto';
import type { FitError } from '../core/index.js';
import { tlsIdentityFor, type ClusterConfig } from '../config/index.js';
import { ReplicaLink } from './link.js';

export interface ReplicaStatus {
  replica: number;
  endpoint: string;
  reachable: boolean;
  status?: Record<string, unknown>;
  error?: string;
}

export async function queryStatus(config: ClusterConfig, clientId: string, key: KeyObject, timeoutMs: number): Promise<ReplicaStatus[]> {
  const tls = tlsIdentityFor(config, clientId);
  return Promise.all(
    config.replicas.map(
      (r) =>
        new Promise<ReplicaStatus>((resolve) => {
          const endpoint = `${r.host}:${r.port}`;
          let lastError: FitError | undefined;
          const done = (s: ReplicaStatus): void => {
            clearTimeout(timer);
            link.stop();
            resolve(s);
          };
          const link: ReplicaLink = new ReplicaLink(r, clientId, key, config.limits, {
            onReady: () => {
              link.request('status').then(
                (reply) => done({ replica: r.id, endpoint, reachable: true, status: reply.status as Record<string, unknown> }),
                (e: FitError) => done({ replica: r.id, endpoint, reachable: false, error: e.message }),
              );
            },
            onFrame: () => undefined,
            onDown: (_l, reason) => {
              lastError = reason;
            },
          }, undefined, tls);
          const timer = setTimeout(() => done({ replica: r.id, endpoint, reachable: false, error: lastError?.message ?? `no answer within ${timeoutMs} ms` }), timeoutMs);
          link.start();
        }),
    ),
  );
}
