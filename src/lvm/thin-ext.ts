/**
 * How thin pools and thin LVs sit in the VG descriptor (docs/thin.md § "In the descriptor"):
 *  - a thin pool is an ordinary LV (its PPs can be mirrored) whose `ext.thinPool` gives its
 *    chunk size and metadata area size; its bytes are the pool's metadata then data blocks;
 *  - a thin LV owns no PPs (`lps` is empty): `ext.thin` names its pool by lvId (renames keep
 *    it), its thin device id inside the pool's metadata, its virtual size, and for a snapshot
 *    the LV it was taken of.
 */
import { LvmfsError } from '../errors/index.js'
import type { JsonValue, LvDescriptor, VgDescriptor } from './model.js'

export interface ThinPoolExt {
  readonly chunkBytes: number
  readonly metadataBytes: number
  /** Autoextend when data use reaches this percentage (0: never). */
  readonly autoextendThreshold: number
  /** Grow by this percentage of the pool's size each time. */
  readonly autoextendPercent: number
  /** When full, hold a write this long for space (autoextend, lvextend, discards) before ENOSPC. */
  readonly fullQueueSeconds: number
}

export interface ThinLvExt {
  readonly poolLvId: number
  readonly thinId: number
  readonly virtualBytes: number
  /** lvId of the thin LV this one is a snapshot of (absent for a thin LV created empty). */
  readonly originLvId?: number
}

function malformed(lv: LvDescriptor, key: string, field: string): LvmfsError {
  return new LvmfsError('ENGINE_CORRUPT', `logical volume "${lv.name}": bad ext.${key}.${field}`, {
    detail: `The descriptor's ${key} record of "${lv.name}" lacks a valid "${field}".`,
    context: { lv: lv.name, field: `ext.${key}.${field}` },
  })
}

function record(lv: LvDescriptor, key: string): Record<string, JsonValue> | undefined {
  const value = lv.ext[key]
  if (value === undefined) return undefined
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw malformed(lv, key, '(object)')
  return value
}

function count(lv: LvDescriptor, key: string, o: Record<string, JsonValue>, field: string, min = 0): number {
  const value = o[field]
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) throw malformed(lv, key, field)
  return value
}

export function thinPoolOf(lv: LvDescriptor): ThinPoolExt | undefined {
  const o = record(lv, 'thinPool')
  if (o === undefined) return undefined
  return { chunkBytes: count(lv, 'thinPool', o, 'chunkBytes', 1), metadataBytes: count(lv, 'thinPool', o, 'metadataBytes', 1),
    autoextendThreshold: count(lv, 'thinPool', o, 'autoextendThreshold'),
    autoextendPercent: count(lv, 'thinPool', o, 'autoextendPercent'),
    fullQueueSeconds: o['fullQueueSeconds'] === undefined ? 0 : count(lv, 'thinPool', o, 'fullQueueSeconds') }
}

export function thinOf(lv: LvDescriptor): ThinLvExt | undefined {
  const o = record(lv, 'thin')
  if (o === undefined) return undefined
  const origin = o['originLvId']
  return { poolLvId: count(lv, 'thin', o, 'poolLvId'), thinId: count(lv, 'thin', o, 'thinId', 1),
    virtualBytes: count(lv, 'thin', o, 'virtualBytes', 1),
    ...(origin === undefined ? {} : { originLvId: count(lv, 'thin', o, 'originLvId') }) }
}

export function thinPoolExt(ext: ThinPoolExt): Record<string, JsonValue> {
  return { thinPool: { ...ext } }
}

export function thinLvExt(ext: ThinLvExt): Record<string, JsonValue> {
  return { thin: { ...ext } }
}

/** A thin LV: served from its pool, it has no PPs of its own. */
export function isThinLv(lv: LvDescriptor): boolean {
  return lv.ext['thin'] !== undefined
}

export function isThinPool(lv: LvDescriptor): boolean {
  return lv.ext['thinPool'] !== undefined
}

/** Thin LVs of a pool, and snapshots of a thin LV: what depends on `lv` and blocks its removal. */
export function thinDependents(d: VgDescriptor, lv: LvDescriptor): LvDescriptor[] {
  return d.lvs.filter((other) => {
    const thin = other !== lv ? thinOf(other) : undefined
    return thin !== undefined && (thin.poolLvId === lv.lvId || thin.originLvId === lv.lvId)
  })
}

/** Refuses an operation that needs PPs (or moves them) on a thin LV, naming the LV. */
export function refuseThin(lv: LvDescriptor, operation: string): void {
  if (isThinLv(lv)) {
    throw new LvmfsError('ENGINE_USAGE', `"${lv.name}" is a thin LV: ${operation} does not apply to it`, {
      detail: 'A thin LV owns no physical partitions; its blocks live in its thin pool.',
      hint: 'Act on the thin pool LV instead.', context: { lv: lv.name, operation },
    })
  }
}
