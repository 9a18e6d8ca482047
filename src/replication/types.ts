/** The types of ReplicationEngine's public API (see index.ts). */
import type { LvDescriptor } from '../lvm/index.js'
import type { MirrorEngine } from '../mirror/index.js'
import type { GateControl } from './gate-control.js'
import type { ReplicationType } from './model.js'

export type StepEvent =
  | { readonly kind: 'copied', readonly job: string, readonly lp: number, readonly doneLps: number, readonly totalLps: number }
  | { readonly kind: 'applied', readonly target: string, readonly count: number }
  | { readonly kind: 'chunk', readonly target: string, readonly chunk: number }
  | { readonly kind: 'published', readonly target: string }
  | { readonly kind: 'lwm', readonly target: string, readonly lwm: number }

export interface ReplicationOptions {
  readonly gates?: GateControl
  /** Effective uid of the caller of chlwm (default: process.getuid()). */
  readonly uid?: () => number
  readonly now?: () => number
  /** Bound of the in-memory async journal per target (default 64 MiB). */
  readonly journalBytesMax?: number
  /**
   * Bound of the frozen chunk images an async catch-up holds in memory for source writes that
   * came before the target took them (default 64 MiB); past it the staged attempt is abandoned.
   */
  readonly captureBytesMax?: number
  /** Copy jobs persist their progress every this many partitions (default: 256 MiB worth). */
  readonly checkpointLps?: number
  /** Async propagation interval when replicate gives none (default 1000 ms). */
  readonly defaultIntervalMs?: number
  /** Test and progress hook, awaited after every copied partition / applied change. */
  readonly onStep?: (event: StepEvent) => void | Promise<void>
  /**
   * CLONE of a thin LV: a thin snapshot named `name` of `origin` in its pool (the engine layer's
   * snapshotThinLv). Absent: replicating a thin LV is LSM_ERR_NO_SUPPORT.
   */
  readonly thinClone?: (engine: MirrorEngine, name: string, origin: LvDescriptor) => Promise<LvDescriptor>
  /**
   * Shared VG: whether this process serves `source` read-write (holds its LV lock EX). The
   * replication of a source (its jobs, propagators, copy-on-write, and the verbs that change its
   * replicas) runs only in the process serving it; elsewhere they are refused with
   * LSM_ERR_REPLICA_BUSY and superblocks are read from disk, never cached. Absent: every source
   * runs here.
   */
  readonly servesSource?: (vgName: string, source: LvDescriptor) => boolean
  /**
   * Awaited after replicate created a target (or a thin clone), before it answers: a shared mount
   * takes the new replica's LV lock and serves it.
   */
  readonly afterCreate?: (vgName: string, target: LvDescriptor) => Promise<void>
}

export interface ReplicateRequest {
  readonly vg: string
  readonly lv: string
  readonly name: string
  readonly type: string
  readonly pool?: string
  readonly intervalMs?: number
}

export type ReplicateResult =
  | { readonly status: 'LSM_ERR_OK', readonly volume: { vg: string, lv: string } }
  | { readonly status: 'LSM_ERR_JOB_STARTED', readonly jobId: string, readonly volume: { vg: string, lv: string } }

export type JobState = 'INPROGRESS' | 'COMPLETE' | 'ERROR'

export interface JobStatus {
  readonly id: string
  readonly state: JobState
  readonly percent: number
  readonly kind: ReplicationType
  readonly volume: { vg: string, lv: string }
  readonly error?: string
}

export interface Lag {
  readonly commitCount: number
  readonly lwm: number
  readonly commits: number
  readonly bytes: number
  readonly seconds: number
}

export interface ReplicaStatus {
  readonly vg: string
  readonly lv: string
  readonly kind: ReplicationType
  readonly origin: string
  readonly state: string
  readonly syncState: string
  readonly jobId?: string
  readonly percent?: number
  readonly lwm?: number
  readonly lag?: Lag
}
