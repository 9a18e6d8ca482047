/**
 * The VolumeGroup interface: what a varied-on VG offers to the mirror engine, replication and
 * the daemon. Implemented by OnlineVg (online-vg.ts).
 *
 * Invariants:
 *  - `descriptor` and `status` are immutable snapshots; every mutation commits a new snapshot
 *    to a majority of descriptor copies and only then replaces them (and emits 'change').
 *  - A mutation that cannot reach a majority of copies writes nothing (when it knows before
 *    writing) or stops after the failed write, forces the VG off (state 'forcedoff', emits
 *    'forceoff') and rejects with LVM_FORCEOFF. After that every call rejects with
 *    LVM_FORCEOFF and the daemon must fail I/O with EIO.
 *  - Mutations are serialised internally (one commit at a time), so callers may issue them
 *    concurrently.
 */
import type { BlockDevice } from '../io/index.js'
import type {
  LvDescriptor, MwcPolicy, PvState, Schedule, StaleChange, Strictness, VgDescriptor, VgStatus,
  JsonValue, PpRef,
} from './model.js'

export type VgState = 'online' | 'forcedoff' | 'offline'

export interface LvCreateOptions {
  readonly name: string
  /** Size in LPs; use `lpCountForBytes` to convert from bytes. */
  readonly lpCount: number
  readonly copies?: 1 | 2 | 3
  readonly strict?: Strictness
  readonly schedule?: Schedule
  readonly mwc?: MwcPolicy
  /** Activity-log size (active MWC), in LTGs; default 1237. */
  readonly alExtents?: number
  /** Write-intent bitmap chunk size, a power of two >= 4 KiB; default 64 KiB. */
  readonly bitmapChunkBytes?: number
  readonly ext?: { readonly [key: string]: JsonValue }
  /** Allocate only on these PV indexes (default: every active PV). */
  readonly pvIndexes?: readonly number[]
}

/** What `lvchange` may change on a mounted LV (lvChange). */
export interface LvChangeOptions {
  readonly mwc?: MwcPolicy
  readonly alExtents?: number
  readonly bitmapChunkBytes?: number
  /** `--activate y|n`: whether the daemon serves the LV. */
  readonly activate?: boolean
  /** `--permission r|rw`: whether the daemon serves it read-only. */
  readonly permission?: 'r' | 'rw'
  /** `lvconvert --strict`: the copy placement rule new partitions follow; the current placement
   * must already satisfy it. */
  readonly strict?: Strictness
}

export interface VgChangeEvent {
  readonly kind: 'descriptor' | 'status'
  readonly descriptor: VgDescriptor
  readonly status: VgStatus
}

export interface VolumeGroup {
  readonly vgId: string
  readonly name: string
  readonly state: VgState
  readonly descriptor: VgDescriptor
  readonly status: VgStatus
  readonly ppSizeBytes: number
  /** vary-on flag noopen_lvs: LVs must not be opened (the daemon refuses with EBUSY). */
  readonly noOpenLvs: boolean
  /** vary-on flag auto_resync: the mirror engine should resync stale PPs after vary-on. */
  readonly autoResync: boolean

  /** State of PV `pvIndex` (removed from descriptor, missing from status, else active). */
  pvState(pvIndex: number): PvState
  /** The open device of an active PV; undefined for missing/removed PVs. */
  device(pvIndex: number): BlockDevice | undefined
  /** Byte offset of PP `pp` on PV `pvIndex`. */
  ppOffsetBytes(pvIndex: number, pp: number): number
  /** The mirror-write-consistency log area of a PV (records defined in format/mwc-log.ts). */
  mwcArea(pvIndex: number): { readonly offsetBytes: number; readonly sizeBytes: number }
  isStale(pvIndex: number, pp: number): boolean
  lvByName(name: string): LvDescriptor | undefined
  lvById(lvId: number): LvDescriptor | undefined
  /** LPs needed for `bytes` (rounded up to whole PPs). */
  lpCountForBytes(bytes: number): number

  lvCreate(options: LvCreateOptions): Promise<LvDescriptor>
  lvExtend(lvName: string, addLps: number): Promise<LvDescriptor>
  lvReduce(lvName: string, removeLps: number): Promise<LvDescriptor>
  /** Exchanges the PPs (and so the stale bits) of LP pairs of one LV, in one commit. */
  lvSwapLps(lvName: string, pairs: ReadonlyArray<readonly [number, number]>): Promise<LvDescriptor>
  lvRemove(lvName: string): Promise<void>
  lvRename(lvName: string, newName: string): Promise<LvDescriptor>
  /** Changes an LV's MWC policy, activity-log size or bitmap chunk (one descriptor commit). */
  lvChange(lvName: string, change: LvChangeOptions): Promise<LvDescriptor>
  /** lvconvert: more copies per LP, on new PPs that start stale (copies-changes.ts). */
  lvAddCopies(lvName: string, copies: number, pvIndexes?: readonly number[]): Promise<LvDescriptor>
  /** lvconvert: fewer copies per LP, keeping fresh copies (and those off `dropFrom`) first. The
   * caller has quiesced the LV's writes: the dropped PPs are free once this resolves. */
  lvDropCopies(lvName: string, copies: number, dropFrom?: readonly number[]): Promise<LvDescriptor>
  /** pvmove: copy `copy` of LP `lp` now lives at `to` (its data already copied there). */
  lvMoveCopy(lvName: string, lp: number, copy: number, to: PpRef): Promise<LvDescriptor>
  /** Replace an LV's opaque ext object (replication metadata). */
  lvSetExt(lvName: string, ext: { readonly [key: string]: JsonValue }): Promise<LvDescriptor>

  /** VGSA updates: small fixed-shape records, committed to a majority before resolving. */
  markStale(changes: readonly StaleChange[]): Promise<void>
  clearStale(changes: readonly StaleChange[]): Promise<void>
  setLvDirty(lvId: number, dirty: boolean): Promise<void>
  /** 'missing'/'active' are status changes; 'removed' and removed→active change the
   * descriptor (copy placement). Returning a PV needs its device to be reachable. */
  setPvState(pvIndex: number, state: PvState): Promise<void>

  /** Adds pvcreate'd devices (by path) to the VG: label rewrite, then a descriptor commit. */
  vgExtend(paths: readonly string[]): Promise<void>
  /** Removes an empty PV (no allocated PP) from the VG; later PV indexes shift down by one. */
  vgReduce(pvIndex: number): Promise<void>
  /** Closes every device and forgets the VG (lvm_varyoffvg). */
  varyOff(): Promise<void>

  /** Called after each committed change (descriptor seq or status seq moved). */
  onChange(listener: (event: VgChangeEvent) => void): () => void
  /**
   * Runs before every descriptor commit, with the descriptor about to be committed; a guard that
   * throws refuses the commit with its error and nothing is written. For holders of resources a
   * change would invalidate (the daemon's block devices of linear LVs).
   */
  addCommitGuard?(guard: (next: VgDescriptor) => Promise<void>): () => void
  /** Called once when quorum is lost and the VG is forced off. */
  onForceOff(listener: (error: Error) => void): () => void
}
