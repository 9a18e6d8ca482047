/**
 * vgs / vgdisplay fields: one row per VG as a read-only vary-on sees it (or as the daemon
 * serving it holds it), with the quorum of descriptor copies and the VG's state.
 */
import type { VgDescriptor, VvgOut } from '../../lvm/index.js'
import type { FieldTable } from './format.js'

export interface VgRow {
  readonly name: string
  readonly vgId: string
  /** The read-only vary-on's return code (LVM_SUCCESS, LVM_CHKVVGOUT, LVM_NOQUORUM...). */
  readonly rc: string
  readonly descriptor?: VgDescriptor
  readonly vvgOut: readonly VvgOut[]
  /** Descriptor copies found valid / placement size. */
  readonly copies?: { readonly present: number; readonly total: number }
  /** The code of the error that kept the VG from being read, if any. */
  readonly error?: string
  readonly active: boolean
}

export function totalPps(r: VgRow): number {
  return r.descriptor?.pvs.reduce((n, p) => n + p.ppCount, 0) ?? 0
}

export function allocatedPps(r: VgRow): number {
  return r.descriptor?.lvs.reduce((n, lv) => n + lv.lps.length * lv.copies, 0) ?? 0
}

export function missingPvs(r: VgRow): number {
  return r.vvgOut.filter((o) => o.status === 'LVM_PVMISSING' || o.status === 'LVM_NONAME').length
}

export function duplicatePvs(r: VgRow): number {
  return r.vvgOut.filter((o) => o.status === 'LVM_DUPPVID').length
}

export function vgState(r: VgRow): string {
  return r.error ?? (duplicatePvs(r) > 0 ? 'duplicate-pv-id' : missingPvs(r) > 0 ? 'partial' : 'ok')
}

/** LVM2's vg_attr: (w)riteable, resi(z)eable, e(x)ported, (p)artial, allocation (n)ormal,
 * (s)hared (LVM2's clustered/shared column). */
export function vgAttr(r: VgRow): string {
  return `wz-${missingPvs(r) > 0 ? 'p' : '-'}n${r.descriptor?.shared === true ? 's' : '-'}`
}

const ppSize = (r: VgRow): number => r.descriptor?.ppSizeBytes ?? 0

export const VG_FIELDS: FieldTable<VgRow> = [
  { name: 'vg_name', aliases: ['name', 'vg'], heading: 'VG', kind: 'string', get: (r) => r.name },
  { name: 'vg_attr', aliases: ['attr'], heading: 'Attr', kind: 'string', get: vgAttr },
  { name: 'pv_count', aliases: ['#pv'], heading: '#PV', kind: 'number', get: (r) => r.descriptor?.pvs.length ?? 0 },
  { name: 'lv_count', aliases: ['#lv'], heading: '#LV', kind: 'number', get: (r) => r.descriptor?.lvs.length ?? 0 },
  { name: 'vg_missing_pv_count', aliases: ['missing_pv_count', '#missing'], heading: '#Missing', kind: 'number',
    get: missingPvs },
  { name: 'vg_size', aliases: ['size', 'vsize'], heading: 'VSize', kind: 'size', get: (r) => totalPps(r) * ppSize(r) },
  { name: 'vg_free', aliases: ['free', 'vfree'], heading: 'VFree', kind: 'size',
    get: (r) => (totalPps(r) - allocatedPps(r)) * ppSize(r) },
  { name: 'vg_extent_size', aliases: ['extent_size', 'pp_size'], heading: 'Ext', kind: 'size', get: ppSize },
  { name: 'vg_extent_count', aliases: ['extent_count', 'pp_count'], heading: '#Ext', kind: 'number', get: totalPps },
  { name: 'vg_alloc_count', aliases: ['alloc_count'], heading: 'Alloc', kind: 'number', get: allocatedPps },
  { name: 'vg_free_count', aliases: ['free_count'], heading: 'Free', kind: 'number',
    get: (r) => totalPps(r) - allocatedPps(r) },
  { name: 'vg_seqno', aliases: ['seqno', 'seq'], heading: 'Seq', kind: 'number', get: (r) => r.descriptor?.seq },
  { name: 'quorum', aliases: ['vg_quorum', 'copies'], heading: 'Quorum', kind: 'string',
    get: (r) => (r.copies === undefined ? undefined : `${r.copies.present}/${r.copies.total}`) },
  { name: 'vg_state', aliases: ['state'], heading: 'State', kind: 'string', get: vgState },
  { name: 'vg_shared', aliases: ['shared'], heading: 'Shared', kind: 'string',
    get: (r) => (r.descriptor?.shared === true ? 'shared' : '') },
  { name: 'vg_uuid', aliases: ['vg_id', 'uuid'], heading: 'VG UUID', kind: 'string', get: (r) => r.vgId },
]

export const VG_DEFAULT = ['vg_name', 'pv_count', 'lv_count', 'vg_attr', 'vg_size', 'vg_free', 'vg_extent_size',
  'vg_extent_count', 'vg_free_count', 'vg_missing_pv_count', 'vg_seqno', 'quorum', 'vg_state']
export const VG_SORT = ['vg_name']
