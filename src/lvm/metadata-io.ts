/**
 * Reads and writes the metadata structures of one PV: labels, VGDA slots, VGSA slots.
 *
 * Reading a copy area returns the newest slot that decodes (checksums, torn-write stamps,
 * self-location, VG id), plus which slot that is, so the next write can go to the other slot.
 * Every read counts its bytes (`ReadStats`) for the metadata benchmark.
 */
import type { BlockDevice } from '../io/index.js'
import {
  LABEL_COPY_BYTES, VGDA_HEADER_BYTES, decodeVgdaCopy, decodeVgdaHeader, decodeVgsaCopy,
  encodePvLabel, pickPvLabel, vgdaFrameBytes, vgdaSlotOffset, vgsaSlotOffset, type PvLabel,
  type VgdaHeader, type VgsaRecord,
} from '../format/index.js'
import { isLvmfsError } from '../errors/index.js'

export interface ReadStats {
  bytesRead: number
}

export async function readLabel(device: BlockDevice, stats?: ReadStats): Promise<PvLabel> {
  const bytes = new Uint8Array(2 * LABEL_COPY_BYTES)
  await device.read(bytes, 0)
  if (stats) stats.bytesRead += bytes.length
  return pickPvLabel(bytes.subarray(0, LABEL_COPY_BYTES), bytes.subarray(LABEL_COPY_BYTES))
}

/** Writes label copy 0, syncs, then copy 1, syncs: a crash leaves one valid copy. */
export async function writeLabel(device: BlockDevice, label: PvLabel): Promise<void> {
  await device.write(encodePvLabel(label, 0), 0)
  await device.sync()
  await device.write(encodePvLabel(label, 1), LABEL_COPY_BYTES)
  await device.sync()
}

export type CopyProblem = 'empty' | 'checksum' | 'torn' | 'location' | 'version' | 'foreign' | 'io'

export interface VgdaAreaRead {
  readonly best?: { readonly slot: 0 | 1; readonly header: VgdaHeader; readonly body: Uint8Array }
  /** Why each slot that is not `best` was rejected (diagnostics: `vgs` names bad copies). */
  readonly problems: readonly CopyProblem[]
}

function classify(error: unknown): CopyProblem {
  if (!isLvmfsError(error)) throw error
  if (error.code === 'ENGINE_IO') return 'io'
  if (error.code === 'LVM_BADVERSION') return 'version'
  const reason = error.context['reason']
  if (reason === 'magic') return 'empty'
  if (reason === 'location') return 'location'
  if (reason === 'checksum') return 'checksum'
  return 'torn'
}

export async function readVgdaArea(device: BlockDevice, label: PvLabel, vgId: string, area: 0 | 1,
  stats?: ReadStats): Promise<VgdaAreaRead> {
  const problems: CopyProblem[] = []
  const headers: Array<{ slot: 0 | 1; header: VgdaHeader }> = []
  for (const slot of [0, 1] as const) {
    const offset = vgdaSlotOffset(label, area, slot)
    try {
      const bytes = new Uint8Array(VGDA_HEADER_BYTES)
      await device.read(bytes, offset)
      if (stats) stats.bytesRead += bytes.length
      const header = decodeVgdaHeader(bytes, { pvId: label.pvId, area, slot })
      if (header.vgId !== vgId) problems.push('foreign')
      else if (vgdaFrameBytes(header.bodyBytes) > label.vgdaSlotBytes) problems.push('torn')
      else headers.push({ slot, header })
    } catch (error) {
      problems.push(classify(error))
    }
  }
  headers.sort((a, b) => b.header.seq - a.header.seq)
  for (const { slot, header } of headers) {
    try {
      const bytes = new Uint8Array(vgdaFrameBytes(header.bodyBytes))
      await device.read(bytes, vgdaSlotOffset(label, area, slot))
      if (stats) stats.bytesRead += bytes.length
      const copy = decodeVgdaCopy(bytes, { pvId: label.pvId, area, slot })
      return { best: { slot, header: copy.header, body: copy.body }, problems }
    } catch (error) {
      problems.push(classify(error))
    }
  }
  return { problems }
}

export interface VgsaAreaRead {
  readonly best?: { readonly slot: 0 | 1; readonly record: VgsaRecord }
  readonly problems: readonly CopyProblem[]
}

export async function readVgsaArea(device: BlockDevice, label: PvLabel, vgId: string, area: 0 | 1,
  stats?: ReadStats): Promise<VgsaAreaRead> {
  const problems: CopyProblem[] = []
  let best: { slot: 0 | 1; record: VgsaRecord } | undefined
  for (const slot of [0, 1] as const) {
    const offset = vgsaSlotOffset(label, area, slot)
    try {
      let bytes = new Uint8Array(Math.min(4096, label.vgsaSlotBytes))
      await device.read(bytes, offset)
      const size = new DataView(bytes.buffer).getUint32(12, true)
      if (size > bytes.length && size <= label.vgsaSlotBytes) {
        bytes = new Uint8Array(size)
        await device.read(bytes, offset)
      }
      if (stats) stats.bytesRead += bytes.length
      const record = decodeVgsaCopy(bytes, { pvId: label.pvId, area, slot })
      if (record.vgId !== vgId) problems.push('foreign')
      else if (best === undefined || record.seq > best.record.seq) best = { slot, record }
    } catch (error) {
      problems.push(classify(error))
    }
  }
  return best === undefined ? { problems } : { best, problems }
}
