/**
 * The descriptor (VGDA content) and status (VGSA content) types. They live in format/ because
 * the codecs encode them; lvm/model.ts re-exports them for everyone else.
 *
 * Invariants of a `VgDescriptor` (checked by validateDescriptor in lvm/descriptor.ts):
 *  - every PP belongs to at most one (LV, LP, copy);
 *  - every LP of an LV has exactly `lv.copies` copies, on PVs of this VG, `pp < pv.ppCount`;
 *  - strict 'y': the copies of one LP sit on distinct PVs; strict 's' (superstrict): the PVs
 *    used by copy k of the LV are disjoint from the PVs used by every other copy;
 *  - `descriptorCopies` follows the AIX rule over the PVs that are not removed
 *    (1 PV: 2 copies; 2 PVs: 2 + 1; 3 or more: 1 each), in areas 0 and 1 of a PV;
 *  - lvId values are unique and never reused inside a VG (they are inode numbers for FUSE).
 */

/** PV states (AIX numbering of lvm_querypv, a bit set on AIX; here one value). */
export type PvState = 'active' | 'missing' | 'removed'

/** Copy placement rule of an LV's LP copies (`mklv -s`). */
export const STRICTNESS = ['y', 'n', 's'] as const
export type Strictness = typeof STRICTNESS[number]

/** Scheduling policy of mirrored writes and reads (`mklv -d`): parallel, parallel write with
 * sequential read, parallel with round-robin reads, sequential. */
export const SCHEDULES = ['p', 'ps', 'pr', 's'] as const
export type Schedule = typeof SCHEDULES[number]

/** Mirror write consistency policy (`mklv -w`). */
export const MWC_POLICIES = ['active', 'passive', 'off'] as const
export type MwcPolicy = typeof MWC_POLICIES[number]

/** The name rule of VGs and LVs (LVM2's, less its 127-character limit on the whole path). */
export const NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,126}$/
export const NAME_RULE = 'Names are 1-127 characters from [A-Za-z0-9_.+-] and do not start with "-", "." or "+".'

/** One copy of a logical partition: PP number `pp` on the PV at `pvIndex` in `descriptor.pvs`. */
export interface PpRef {
  readonly pvIndex: number
  readonly pp: number
}

/** A JSON value carried opaquely through commits (LV `ext`, reserved for replication). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

export interface PvDescriptor {
  /** 128-bit PV id, 32 lower-case hex digits, written in the PV label at pvcreate. */
  readonly pvId: string
  /** Device path where the PV was last seen (a hint for display and vvg_in; never trusted). */
  readonly lastPath: string
  /** Number of PPs on this PV (fixed when the PV joined the VG). */
  readonly ppCount: number
  /** True once the PV was removed (forced vary-on or setPvState('removed')); its descriptor
   * copies are dropped from the placement and it takes no part in quorum. */
  readonly removed: boolean
}

export interface LvDescriptor {
  /** Unique inside the VG, never reused; assigned from `nextLvId`. */
  readonly lvId: number
  readonly name: string
  /** Copies per LP, 1..3. */
  readonly copies: 1 | 2 | 3
  readonly strict: Strictness
  readonly schedule: Schedule
  readonly mwc: MwcPolicy
  /** Active extents (LTGs) the activity log keeps for this LV (active MWC); absent: the
   * default, 1237. Written only when set, so older descriptors keep their bytes. */
  readonly alExtents?: number
  /** Write-intent bitmap chunk size in bytes (power of two); absent: 64 KiB. */
  readonly bitmapChunkBytes?: number
  /** The last N copies of every LP were added by lvconvert and hold no data yet. Set by the
   * commit that adds them and dropped once a status commit has marked their PPs stale, so a
   * crash between the two cannot leave a new copy trusted (vary-on finishes the job). */
  readonly unsyncedCopies?: number
  /** `lvchange --activate n`: the LV is kept but not served (no file in the mount). Absent
   * (never false) when active, so descriptors of active LVs keep their bytes. */
  readonly inactive?: true
  /** `lvchange --permission r`: served read-only (mode 0444, writes fail with EROFS). Absent
   * (never false) when read-write. */
  readonly readOnly?: true
  /** lps[lp][copy] = where that copy lives. lps.length is the LP count. */
  readonly lps: ReadonlyArray<ReadonlyArray<PpRef>>
  /** Opaque JSON object reserved for replication metadata; carried through every commit. */
  readonly ext: { readonly [key: string]: JsonValue }
}

/** Where a descriptor (VGDA) copy and its status area (VGSA) copy live: area 0 or 1 of a PV. */
export interface CopyPlace {
  readonly pvIndex: number
  readonly area: 0 | 1
}

/** The volume group descriptor: everything a VGDA copy holds. Immutable; every change commits
 * a new object with `seq + 1`. */
export interface VgDescriptor {
  readonly vgId: string
  readonly name: string
  /** Commit sequence number; the highest valid one wins (timestamps are display only). */
  readonly seq: number
  readonly timestampMs: number
  readonly ppSizeBytes: number
  readonly pvs: readonly PvDescriptor[]
  readonly lvs: readonly LvDescriptor[]
  readonly nextLvId: number
  /** Which PV areas hold a descriptor/status copy; quorum is a majority of these. */
  readonly descriptorCopies: readonly CopyPlace[]
  /** `vgcreate --shared`: several processes may vary it on at once under the DLM's VG and LV
   * locks (lvm/shared-vg.ts). Absent (not false) on non-shared VGs. */
  readonly shared?: boolean
}

/** The volume group status area (VGSA) content: small and fixed in shape, written on I/O
 * failure paths. Keyed by PV index of the descriptor it accompanies. */
export interface VgStatus {
  readonly seq: number
  /** Per PV (same index as descriptor.pvs): true when the PV is missing. */
  readonly missing: readonly boolean[]
  /** Per PV: the stale-PP bitmap, bit pp set = that PP's copy is stale (never read it). */
  readonly stale: readonly Uint8Array[]
  /** lvIds whose passive-MWC dirty flag is set (opened for write and not cleanly closed). */
  readonly dirtyLvs: readonly number[]
}

