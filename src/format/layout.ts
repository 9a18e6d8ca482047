/**
 * Where things live on a PV (format v1). All offsets are bytes from the start of the device.
 *
 *   [0, 4 KiB)           PV label, copy 0
 *   [4 KiB, 8 KiB)       PV label, copy 1
 *   [8 KiB, 64 KiB)      reserved (zero)
 *   vgdaOffset           4 VGDA slots: area 0 slot 0, area 0 slot 1, area 1 slot 0, area 1 slot 1
 *   vgsaOffset           4 VGSA slots, same order
 *   mwcOffset            mirror-write-consistency log (records in format/mwc-log.ts)
 *   dataOffset           PP 0, PP 1, ... (1 MiB aligned), ppCount * ppSize bytes
 *
 * A PV holds 0, 1 or 2 descriptor copies (areas 0 and 1); each copy has two slots written
 * alternately, so a crash while writing one slot leaves the other slot intact.
 */
import { alignUp } from './bytes.js'

export const FORMAT_VERSION = 1
export const LABEL_COPY_BYTES = 4096
export const LABEL_COPIES = 2
export const METADATA_START_BYTES = 64 * 1024
export const DATA_ALIGN_BYTES = 1024 * 1024
export const DEFAULT_VGDA_SLOT_BYTES = 512 * 1024
export const DEFAULT_VGSA_SLOT_BYTES = 64 * 1024
export const DEFAULT_MWC_BYTES = 256 * 1024
export const AREAS_PER_PV = 2
export const SLOTS_PER_AREA = 2
export const MIN_PP_SIZE_LOG2 = 16
export const MAX_PP_SIZE_LOG2 = 34

export interface PvLayout {
  readonly vgdaOffsetBytes: number
  readonly vgdaSlotBytes: number
  readonly vgsaOffsetBytes: number
  readonly vgsaSlotBytes: number
  readonly mwcOffsetBytes: number
  readonly mwcSizeBytes: number
  readonly dataOffsetBytes: number
}

export interface LayoutOptions {
  readonly vgdaSlotBytes?: number
  readonly vgsaSlotBytes?: number
  readonly mwcSizeBytes?: number
}

export function computeLayout(options: LayoutOptions = {}): PvLayout {
  const vgdaSlotBytes = options.vgdaSlotBytes ?? DEFAULT_VGDA_SLOT_BYTES
  const vgsaSlotBytes = options.vgsaSlotBytes ?? DEFAULT_VGSA_SLOT_BYTES
  const mwcSizeBytes = options.mwcSizeBytes ?? DEFAULT_MWC_BYTES
  const vgdaOffsetBytes = METADATA_START_BYTES
  const vgsaOffsetBytes = vgdaOffsetBytes + AREAS_PER_PV * SLOTS_PER_AREA * vgdaSlotBytes
  const mwcOffsetBytes = vgsaOffsetBytes + AREAS_PER_PV * SLOTS_PER_AREA * vgsaSlotBytes
  const dataOffsetBytes = alignUp(mwcOffsetBytes + mwcSizeBytes, DATA_ALIGN_BYTES)
  return { vgdaOffsetBytes, vgdaSlotBytes, vgsaOffsetBytes, vgsaSlotBytes, mwcOffsetBytes,
    mwcSizeBytes, dataOffsetBytes }
}

export function slotIndex(area: number, slot: number): number {
  return area * SLOTS_PER_AREA + slot
}

export function vgdaSlotOffset(layout: PvLayout, area: number, slot: number): number {
  return layout.vgdaOffsetBytes + slotIndex(area, slot) * layout.vgdaSlotBytes
}

export function vgsaSlotOffset(layout: PvLayout, area: number, slot: number): number {
  return layout.vgsaOffsetBytes + slotIndex(area, slot) * layout.vgsaSlotBytes
}
