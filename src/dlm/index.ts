/**
 * lvmfs lock manager: a VMS/Tru64-style DLM with recovery domains. Full semantics, the broker wire
 * protocol and figures: docs/dlm.md; status codes: docs/errors/dlm.md.
 *
 * Client API (what the mount / daemon uses; both backends, see connect.ts):
 *
 *   const dlm = await connectDlm({ namespace: 'lvmfs' })          // broker, started on demand
 *   // or connectDlm({ backend: 'etcd', etcd: 'http://10.0.0.1:2379', ttlSeconds: 5 })
 *   const rd = await dlm.attach(`rd:${vgId}`)                       // attach recovery domain
 *   dlm.onRecoveryNeeded((rd, name) => ...)                         // a PW/EX holder died
 *   const vg = await dlm.lock(`VG:${vgId}`, 'PR', { rd, noQueue, timeoutMs, signal })
 *   if (!vg.valueBlockValid) {                                      // success with a flag, not an error
 *     const { handle } = await dlm.collect(rd)                      // DLM_EALREADY if someone else is at it
 *     ...re-read the descriptor from disk...
 *     await dlm.validate(rd, handle)        // { status: 'DLM_SUCCESS' | 'DLM_MORE_TO_RECOVER' }
 *   }
 *   vg.onBlocking((mode) => ...)                                    // someone waits for `mode`
 *   await vg.convert('EX')                                          // up: waits (or DLM_NOTQUEUED with noQueue)
 *   await vg.convert('PR', { valueBlock: seqBytes })                // down from PW/EX writes the value block
 *   await vg.unlock({ valueBlock })                                 // from PW/EX may write it
 *   await dlm.detach(rd); await dlm.close()
 *
 * Errors are LvmfsError with a DLM_* code. Modules:
 *  - `LockManager` (lock-manager.ts): the pure in-memory state machine the broker runs;
 *  - `Broker` (broker.ts): `lvmfs lockd`, a root-only Unix socket, length-prefixed JSON;
 *  - `DlmClient` (client.ts): broker client with on-demand start and re-assertion on restart;
 *  - `EtcdDlmClient` (etcd-client.ts): the same API on etcd leases and transactions.
 */
export { LOCK_MODES, isLockMode, modesCompatible, isDownConversion, type LockMode } from './modes.js'
export { LockManager, resourceKey, type EventSink, type ManagerOptions } from './lock-manager.js'
export { DlmClient, DlmLock, describeBroker, type DlmClientOptions, type LockOptions, type ConvertLockOptions }
  from './client.js'
export { EtcdDlmClient, type EtcdDlmClientOptions } from './etcd-client.js'
export { connectDlm, type DlmConnectOptions, type DlmSession } from './connect.js'
export { Broker, DEFAULT_SOCKET_PATH, socketPathFromEnv, type BrokerOptions } from './broker.js'
export type {
  ClientId, CollectResult, ConvertOptions, DlmEvent, DlmLimits, Grant, LockId, LockRequest, LockResult,
  RdId, ReassertRequest, ValidateResult,
} from './types.js'
export type { ManagerSnapshot, ResourceView, DomainView, LockView } from './snapshot.js'
