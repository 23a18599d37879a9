// An admin's change to the control table (`fitbroker acl`): signed with the admin's key, sent
// to every replica, ordered by them, and believed once f+1 replicas answer alike — where in
// the order it was decided, and whether it was applied or refused (one of f+1 is correct).

import type { KeyObject } from 'node:crypto';
import { FitError } from '../core/index.js';
import { controlSignable, type ControlOp, type SignedControl } from '../codec/index.js';
import { tlsIdentityFor, type ClusterConfig } from '../config/index.js';
import { signBytes } from '../protection/index.js';
import { ReplicaLink, believedRefusal } from './link.js';

export interface ControlResult {
  /** The consensus sequence number the change was decided at, the same on every correct replica. */
  decided: number;
  /** Replicas whose answer agreed. */
  replicas: number[];
}

/** A seq that rises with each change this admin makes: microseconds since the epoch. */
const changeSeq = (): number => Date.now() * 1000 + Math.floor(Math.random() * 1000);

export function signControl(admin: string, key: KeyObject, op: ControlOp, seq = changeSeq()): SignedControl {
  return { admin, seq, op, sig: signBytes(key, controlSignable(admin, seq, op)).toString('base64') };
}

export function submitControl(config: ClusterConfig, admin: string, key: KeyObject, op: ControlOp, timeoutMs: number): Promise<ControlResult> {
  const change = signControl(admin, key, op);
  const need = config.f + 1;
  const tls = tlsIdentityFor(config, admin);
  return new Promise((resolve, reject) => {
    const applied = new Map<number, number[]>();
    const refusals = new Map<number, FitError>();
    const links: ReplicaLink[] = [];
    let settled = false;
    const finish = (err: FitError | undefined, result?: ControlResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      for (const l of links) l.stop();
      if (err) reject(err);
      else resolve(result!);
    };
    const timer = setTimeout(() => {
      const answered = [...applied.values()].flat().length + refusals.size;
      finish(
        new FitError(
          'FIT_ERR_QUORUM_TIMEOUT',
          `the change was not confirmed by ${need} replicas within ${timeoutMs / 1000} s (${answered} answered); check that at least ${2 * config.f + 1} replicas are up and connected to each other (fitbroker status --dir ${config.dir}), then run the same command again`,
        ),
      );
    }, timeoutMs);
    for (const r of config.replicas) {
      const link = new ReplicaLink(r, admin, key, config.limits, {
        onReady: () => {
          link.request('control', { change }).then(
            (reply) => {
              const at = Number(reply.decided);
              const list = applied.get(at) ?? [];
              list.push(r.id);
              applied.set(at, list);
              if (list.length >= need) finish(undefined, { decided: at, replicas: list });
            },
            (e: FitError) => {
              refusals.set(r.id, e);
              const believed = believedRefusal(refusals.values(), need);
              if (believed) finish(believed);
            },
          );
        },
        onFrame: () => undefined,
        onDown: (_l, reason) => {
          if (reason && reason.code !== 'FIT_ERR_CONNECTION') refusals.set(r.id, reason);
          const believed = believedRefusal(refusals.values(), need);
          if (believed) finish(believed);
        },
      }, undefined, tls);
      links.push(link);
      link.start();
    }
  });
}
