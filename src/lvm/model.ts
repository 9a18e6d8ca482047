/**
 * The LVM data model shared by lvm/, mirror/, replication/ and the daemon.
 *
 * Vocabulary (AIX): a volume group (VG) is a set of physical volumes (PVs), each cut into
 * equal-sized physical partitions (PPs). A logical volume (LV) is a sequence of logical
 * partitions (LPs); each LP has 1..3 copies, each copy one PP on some PV.
 *
 * Data types live in format/descriptor-types.ts (the codecs encode them).
 */

export type {
  PvState, Strictness, Schedule, MwcPolicy, PpRef, JsonValue, PvDescriptor, LvDescriptor,
  CopyPlace, VgDescriptor, VgStatus,
} from '../format/index.js'
import type { PpRef } from '../format/index.js'

/** A stale-bit change: PP `pp` on PV `pvIndex`. */
export type StaleChange = PpRef

/** Vary-on flags, named as in lvm_varyonvg. */
export interface VaryOnFlags {
  /** LVs cannot be opened; management only. */
  readonly noopenLvs?: boolean
  /** Resync stale partitions after vary-on (done by the mirror engine; see VolumeGroup). */
  readonly autoResync?: boolean
  /** Vary on even if some PVs are MISSING (quorum still needed). */
  readonly misspvVon?: boolean
  /** Vary on even if some member PVs were not named in vvg_in (they become MISSING). */
  readonly missnameVon?: boolean
  /** Vary on without a quorum (needs misspvVon); missing PVs become REMOVED. */
  readonly override?: boolean
}

/** pv_status values of vvg_out, with the AIX numbers. */
export const PV_STATUS = {
  LVM_PVACTIVE: 1,
  LVM_PVMISSING: 2,
  LVM_PVREMOVED: 4,
  LVM_INVPVID: 5,
  LVM_DUPPVID: 6,
  LVM_LVMRECNMTCH: 7,
  LVM_NONAME: 8,
  LVM_NAMIDNMTCH: 9,
  LVM_PVNOTFND: 10,
  LVM_PVNOTINVG: 11,
  LVM_PVINVG: 12,
} as const
export type PvStatusName = keyof typeof PV_STATUS

/** Return values of varyOnVg. Success values are 0 and 51 (AIX); errors are the negative AIX
 * numbers where domain.md gives them (see src/errors/codes-lvm.ts for all of them). */
export type VaryOnRc =
  | 'LVM_SUCCESS' | 'LVM_CHKVVGOUT'
  | 'LVM_ALLOCERR' | 'LVM_INVALID_PARAM' | 'LVM_INVCONFIG' | 'LVM_INV_DEVENT'
  | 'LVM_MAPFOPN' | 'LVM_MAPFRDWR' | 'LVM_MISSINGPV' | 'LVM_MISSPVNAME' | 'LVM_NOQUORUM'
  | 'LVM_NOTCHARDEV' | 'LVM_NOVGDAS'

/** One vvg_in entry: a PV id (optional: taken from the device label when absent) and a name. */
export interface VvgIn {
  readonly pvId?: string
  readonly name: string
}

/** One vvg_out entry. `name` is null for VG members that were not named (LVM_NONAME). */
export interface VvgOut {
  readonly pvId: string
  readonly name: string | null
  readonly status: PvStatusName
}
