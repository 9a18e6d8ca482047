/**
 * pvs / pvdisplay fields: one row per labelled device, plus one per member PV of a VG that no
 * scanned device carries (missing or removed: LVM2 lists those too).
 */
import type { PvLabel } from '../../format/index.js'
import type { PvState, PvStatusName, VgDescriptor, VgStatus, VvgOut } from '../../lvm/index.js'
import type { FieldTable } from './format.js'
import { isStale } from './fields-lv.js'

export interface PvRow {
  readonly path: string
  readonly pvId: string
  readonly vg: string
  /** active/missing/removed as the VG records it; undefined outside a VG. */
  readonly state?: PvState
  /** What vary-on found for this device (vvg_out), LVM_DUPPVID for a copied label. */
  readonly status: string
  readonly ppSizeBytes: number
  readonly ppCount: number
  readonly allocatedPps: number
  readonly stalePps: number
  readonly deviceSizeBytes: number
}

export interface PvVg {
  readonly name: string
  readonly vgId: string
  readonly descriptor?: VgDescriptor
  readonly status?: VgStatus
  readonly vvgOut: readonly VvgOut[]
  /** The daemon's view of each PV's state when the VG is served here. */
  readonly pvState?: (pvIndex: number) => PvState
}

export interface LabelledDevice {
  readonly path: string
  readonly label?: PvLabel
}

function stateOf(vg: PvVg, pvIndex: number): PvState {
  if (vg.pvState !== undefined) return vg.pvState(pvIndex)
  const pv = vg.descriptor!.pvs[pvIndex]!
  return pv.removed ? 'removed' : vg.status?.missing[pvIndex] === true ? 'missing' : 'active'
}

function usage(d: VgDescriptor, status: VgStatus | undefined, pvIndex: number): { allocated: number; stale: number } {
  let allocated = 0
  let stale = 0
  for (const lv of d.lvs) {
    for (const copies of lv.lps) {
      for (const ref of copies) {
        if (ref.pvIndex !== pvIndex) continue
        allocated++
        if (isStale(status, ref.pvIndex, ref.pp)) stale++
      }
    }
  }
  return { allocated, stale }
}

export function pvRows(devices: readonly LabelledDevice[], vgs: readonly PvVg[]): PvRow[] {
  const counts = new Map<string, number>()
  for (const d of devices) if (d.label) counts.set(d.label.pvId, (counts.get(d.label.pvId) ?? 0) + 1)
  const seen = new Set<string>()
  const rows: PvRow[] = devices.filter((d) => d.label !== undefined).map((d) => {
    const label = d.label!
    seen.add(label.pvId)
    const vg = vgs.find((v) => v.vgId === label.vgId)
    const pvIndex = vg?.descriptor?.pvs.findIndex((p) => p.pvId === label.pvId) ?? -1
    const out = vg?.vvgOut.find((o) => o.name === d.path)
    const status: string = (counts.get(label.pvId) ?? 0) > 1 ? 'LVM_DUPPVID'
      : out?.status ?? (vg ? 'unknown' : 'no VG')
    const { allocated, stale } = pvIndex < 0 ? { allocated: 0, stale: 0 }
      : usage(vg!.descriptor!, vg!.status, pvIndex)
    return { path: d.path, pvId: label.pvId, vg: vg?.name ?? '',
      ...(pvIndex < 0 ? {} : { state: stateOf(vg!, pvIndex) }), status,
      ppSizeBytes: label.ppSizeLog2 ? 2 ** label.ppSizeLog2 : 0,
      ppCount: pvIndex < 0 ? label.ppCount : vg!.descriptor!.pvs[pvIndex]!.ppCount,
      allocatedPps: allocated, stalePps: stale, deviceSizeBytes: label.deviceSizeBytes }
  })
  for (const vg of vgs) {
    vg.descriptor?.pvs.forEach((pv, pvIndex) => {
      if (seen.has(pv.pvId)) return
      const { allocated, stale } = usage(vg.descriptor!, vg.status, pvIndex)
      const out = vg.vvgOut.find((o) => o.pvId === pv.pvId)
      const status: PvStatusName = out?.status ?? 'LVM_PVMISSING'
      rows.push({ path: pv.lastPath, pvId: pv.pvId, vg: vg.name, state: stateOf(vg, pvIndex), status,
        ppSizeBytes: vg.descriptor!.ppSizeBytes, ppCount: pv.ppCount, allocatedPps: allocated, stalePps: stale,
        deviceSizeBytes: pv.ppCount * vg.descriptor!.ppSizeBytes })
    })
  }
  return rows
}

/** Outside a VG the whole device is the PV's size (LVM2 shows an orphan's device size). */
const sizeOf = (r: PvRow): number => (r.vg === '' || r.ppSizeBytes === 0 ? r.deviceSizeBytes
  : r.ppCount * r.ppSizeBytes)
const freeOf = (r: PvRow): number => (r.vg === '' ? sizeOf(r) : (r.ppCount - r.allocatedPps) * r.ppSizeBytes)

/** LVM2's pv_attr: (a)llocatable, e(x)ported, (m)issing. */
export function pvAttr(r: PvRow): string {
  return `${r.state === 'active' ? 'a' : '-'}-${r.state === 'missing' ? 'm' : '-'}`
}

export const PV_FIELDS: FieldTable<PvRow> = [
  { name: 'pv_name', aliases: ['name', 'pv'], heading: 'PV', kind: 'string', get: (r) => r.path },
  { name: 'vg_name', aliases: ['vg'], heading: 'VG', kind: 'string', get: (r) => r.vg },
  { name: 'pv_attr', aliases: ['attr'], heading: 'Attr', kind: 'string', get: pvAttr },
  { name: 'pv_state', aliases: ['state'], heading: 'State', kind: 'string', get: (r) => r.state },
  { name: 'pv_status', aliases: ['status'], heading: 'Status', kind: 'string', get: (r) => r.status },
  { name: 'pv_size', aliases: ['size', 'psize'], heading: 'PSize', kind: 'size', get: sizeOf },
  { name: 'pv_free', aliases: ['free', 'pfree'], heading: 'PFree', kind: 'size', get: freeOf },
  { name: 'pv_used', aliases: ['used'], heading: 'Used', kind: 'size', get: (r) => sizeOf(r) - freeOf(r) },
  { name: 'dev_size', aliases: ['devsize'], heading: 'DevSize', kind: 'size', get: (r) => r.deviceSizeBytes },
  { name: 'pv_pe_count', aliases: ['pe_count', 'pv_pp_count'], heading: 'PE', kind: 'number',
    get: (r) => r.ppCount },
  { name: 'pv_pe_alloc_count', aliases: ['pe_alloc_count', 'pv_pp_alloc_count'], heading: 'Alloc', kind: 'number',
    get: (r) => r.allocatedPps },
  { name: 'pv_pe_size', aliases: ['pe_size'], heading: 'PPSize', kind: 'size', get: (r) => r.ppSizeBytes },
  { name: 'stale', aliases: ['pv_stale', 'stale_pps'], heading: 'Stale', kind: 'number', get: (r) => r.stalePps },
  { name: 'pv_uuid', aliases: ['pv_id', 'uuid'], heading: 'PV UUID', kind: 'string', get: (r) => r.pvId },
]

export const PV_DEFAULT = ['pv_name', 'vg_name', 'pv_attr', 'pv_state', 'pv_status', 'pv_size', 'pv_free',
  'pv_pe_count', 'pv_pe_alloc_count', 'pv_uuid']
export const PV_SORT = ['pv_name']
