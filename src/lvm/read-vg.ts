/**
 * Steps 3-4 of vary-on, read-only: read every descriptor and status copy on the member
 * devices, pick the descriptor (quorum.ts) and the status, and report what is stale.
 */
import { LvmfsError } from '../errors/index.js'
import { decodeDescriptorBody, type VgsaRecord } from '../format/index.js'
import { readVgdaArea, readVgsaArea, type CopyProblem, type ReadStats } from './metadata-io.js'
import type { VgDescriptor } from './model.js'
import { isMajority, placeKey } from './placement.js'
import type { Probe } from './probe.js'
import { selectCopy, type CopyReading, type Selection } from './quorum.js'

export interface AreaState {
  readonly pvId: string
  readonly area: 0 | 1
  readonly vgda: { readonly seq: number; readonly crc: number; readonly slot: 0 | 1 } | null
  readonly vgsa: { readonly record: VgsaRecord; readonly slot: 0 | 1 } | null
  readonly problems: readonly CopyProblem[]
}

export type VgRead =
  | { readonly kind: 'novgdas' | 'fork'; readonly areas: readonly AreaState[]; readonly error: LvmfsError }
  | { readonly kind: 'chosen'; readonly areas: readonly AreaState[]; readonly descriptor: VgDescriptor;
      readonly crc: number; readonly vgdaQuorum: boolean; readonly vgsaQuorum: boolean;
      readonly maxSeq: number; readonly maxStatusSeq: number; readonly records: readonly VgsaRecord[];
      readonly present: number; readonly total: number; readonly selection: Selection }

export async function readVgCopies(vgId: string, members: readonly Probe[], stats?: ReadStats): Promise<VgRead> {
  const areas: AreaState[] = []
  const parsed = new Map<string, VgDescriptor | null>()
  const reads = await Promise.all(members.flatMap((probe) => {
    const { device, label } = probe
    if (device === undefined || label === undefined) return []
    return [0, 1].map(async (area) => ({ label, area: area as 0 | 1,
      vgda: await readVgdaArea(device, label, vgId, area as 0 | 1, stats),
      vgsa: await readVgsaArea(device, label, vgId, area as 0 | 1, stats) }))
  }))
  for (const { label, area, vgda, vgsa } of reads) {
    let copy: AreaState['vgda'] = null
    if (vgda.best) {
      const key = `${vgda.best.header.seq}:${vgda.best.header.bodyCrc}`
      if (!parsed.has(key)) parsed.set(key, parseBody(vgda.best.body, vgId, vgda.best.header.seq))
      if (parsed.get(key) !== null) {
        copy = { seq: vgda.best.header.seq, crc: vgda.best.header.bodyCrc, slot: vgda.best.slot }
      }
    }
    areas.push({ pvId: label.pvId, area, vgda: copy, vgsa: vgsa.best ?? null,
      problems: [...vgda.problems, ...vgsa.problems] })
  }
  const readings: CopyReading[] = areas.map((a) => ({ pvId: a.pvId, area: a.area,
    copy: a.vgda === null ? null : { seq: a.vgda.seq, crc: a.vgda.crc } }))
  const placementOf = (seq: number, crc: number): Array<{ pvId: string; area: number }> => {
    const d = parsed.get(`${seq}:${crc}`)!
    return d.descriptorCopies.map((c) => ({ pvId: d.pvs[c.pvIndex]!.pvId, area: c.area }))
  }
  const selection = selectCopy(readings, placementOf)
  if (selection.kind === 'novgdas') {
    return { kind: 'novgdas', areas, error: new LvmfsError('LVM_NOVGDAS', `no valid descriptor copy of VG ${vgId}`) }
  }
  if (selection.kind === 'fork') {
    return { kind: 'fork', areas, error: new LvmfsError('LVM_VGFORK',
      `descriptor copies of VG ${vgId} disagree at seq ${selection.seq} and none holds a majority`, {
        hint: 'Vary on with the PVs of one side only and --force, then re-add the others.',
        context: { seq: selection.seq } }) }
  }
  const descriptor = parsed.get(`${selection.seq}:${selection.crc}`)!
  const places = new Set(placementOf(selection.seq, selection.crc).map((p) => placeKey(p.pvId, p.area)))
  const inPlace = areas.filter((a) => places.has(placeKey(a.pvId, a.area)) && a.vgsa !== null)
  const maxStatusSeq = Math.max(0, ...areas.flatMap((a) => (a.vgsa === null ? [] : [a.vgsa.record.seq])))
  const newest = Math.max(0, ...inPlace.map((a) => a.vgsa!.record.seq))
  const records = inPlace.filter((a) => a.vgsa!.record.seq === newest).map((a) => a.vgsa!.record)
  return { kind: 'chosen', areas, descriptor, crc: selection.crc, vgdaQuorum: selection.quorum,
    vgsaQuorum: isMajority(inPlace.length, places.size), maxSeq: selection.maxSeq, maxStatusSeq, records,
    present: selection.present, total: selection.total, selection }
}

function parseBody(body: Uint8Array, vgId: string, seq: number): VgDescriptor | null {
  try {
    const d = decodeDescriptorBody(body)
    return d.vgId === vgId && d.seq === seq ? d : null
  } catch {
    return null
  }
}
