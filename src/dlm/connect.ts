/**
 * One entry point for both backends: the broker (`lvmfs lockd`, one host) and etcd (several
 * hosts). The mount selects with `--lock-backend broker|etcd --etcd URL`.
 */
import { DlmClient, type DlmClientOptions, type DlmLock, type LockOptions } from './client.js'
import { EtcdDlmClient } from './etcd-client.js'
import type { LockMode } from './modes.js'

/** What lvmfs processes use, whichever backend is behind it. */
export interface DlmSession {
  readonly namespace: string
  attach(name: string): Promise<number>
  lock(resource: string, mode: LockMode, options?: LockOptions): Promise<DlmLock>
  collect(rd: number, flags?: number): Promise<{ handle: number, resources: string[] }>
  validate(rd: number, handle: number, flags?: number): Promise<{ status: string, validated: string[] }>
  detach(rd: number): Promise<void>
  onRecoveryNeeded(handler: (rd: number, domain: string) => void): void
  close(): Promise<void>
}

export type DlmConnectOptions =
  | ({ readonly backend?: 'broker' } & DlmClientOptions)
  | { readonly backend: 'etcd', readonly etcd: string | string[], readonly namespace?: string,
    readonly ttlSeconds?: number }

export async function connectDlm(options: DlmConnectOptions = {}): Promise<DlmSession> {
  if (options.backend === 'etcd') {
    return await EtcdDlmClient.connect({
      hosts: options.etcd,
      ...(options.namespace === undefined ? {} : { namespace: options.namespace }),
      ...(options.ttlSeconds === undefined ? {} : { ttlSeconds: options.ttlSeconds }),
    })
  }
  return await DlmClient.connect(options)
}
