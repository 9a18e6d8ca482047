/**
 * Descriptor body codec (VGDA body, format v1): compact UTF-8 JSON.
 *
 *   { "v": 1, "vgId", "name", "seq", "ts", "ppSizeLog2", "nextLvId",
 *     "pvs":    [ { "pvId", "lastPath", "ppCount", "removed" } ],
 *     "copies": [ [pvIndex, area], ... ],                 descriptor/status copy placement
 *     "lvs":    [ { "lvId", "name", "copies", "strict", "schedule", "mwc", "lps",
 *                   "segs": [ [firstLp, count, pv0, pp0, pv1, pp1, ...] ], "ext": {...},
 *                   "al": N, "bmChunkLog2": N, "unsynced": N,
 *                   "act": "n", "perm": "r" } ],            the last five optional, only when set
 *     "shared": true }                                    optional, only for `vgcreate --shared`
 *
 * LP maps are run-length encoded: one segment covers `count` consecutive LPs whose copy k sits
 * on PV pv_k at PPs pp_k, pp_k + 1, ... Allocation is mostly contiguous, so a 1 TiB LV is a
 * handful of segments. `ext` is an opaque JSON object carried unchanged (replication).
 * Unknown top-level keys are rejected in v1 so that a later format must bump `v`. `shared` is the
 * one optional v1 key: written only when true, so non-shared descriptors keep their bytes and an
 * older lvmfs refuses a shared VG (it would not take the DLM locks) instead of corrupting it.
 */
import {
  MWC_POLICIES, NAME_PATTERN, SCHEDULES, STRICTNESS,
  type CopyPlace, type JsonValue, type LvDescriptor, type PpRef, type PvDescriptor, type VgDescriptor,
} from './descriptor-types.js'
import { badVersion, corrupt, isId } from './bytes.js'
// Kept for importers that reach into this file; the name rule lives with the descriptor types.
export { NAME_PATTERN } from './descriptor-types.js'
import { FORMAT_VERSION } from './layout.js'

/** Bounds of the optional LV fields (the record capacity of an MWC area is checked elsewhere). */
export const MAX_AL_EXTENTS = 65535
export const MIN_BITMAP_CHUNK_LOG2 = 12
export const MAX_BITMAP_CHUNK_LOG2 = 34

function encodeSegments(lps: ReadonlyArray<ReadonlyArray<PpRef>>): number[][] {
  const segs: number[][] = []
  let current: number[] | undefined
  for (let lp = 0; lp < lps.length; lp++) {
    const copies = lps[lp]!
    if (current !== undefined) {
      const count = current[1]!
      const extends_ = copies.every((c, k) =>
        current![2 + 2 * k] === c.pvIndex && current![3 + 2 * k]! + count === c.pp)
      if (extends_) {
        current[1] = count + 1
        continue
      }
    }
    current = [lp, 1, ...copies.flatMap((c) => [c.pvIndex, c.pp])]
    segs.push(current)
  }
  return segs
}

export function encodeDescriptorBody(d: VgDescriptor): Uint8Array {
  const body = {
    v: FORMAT_VERSION, vgId: d.vgId, name: d.name, seq: d.seq, ts: d.timestampMs,
    ppSizeLog2: Math.log2(d.ppSizeBytes), nextLvId: d.nextLvId,
    pvs: d.pvs.map((p) => ({ pvId: p.pvId, lastPath: p.lastPath, ppCount: p.ppCount, removed: p.removed })),
    copies: d.descriptorCopies.map((c) => [c.pvIndex, c.area]),
    lvs: d.lvs.map((lv) => ({ lvId: lv.lvId, name: lv.name, copies: lv.copies, strict: lv.strict,
      schedule: lv.schedule, mwc: lv.mwc, lps: lv.lps.length, segs: encodeSegments(lv.lps), ext: lv.ext,
      ...(lv.alExtents === undefined ? {} : { al: lv.alExtents }),
      ...(lv.bitmapChunkBytes === undefined ? {} : { bmChunkLog2: Math.log2(lv.bitmapChunkBytes) }),
      ...(lv.unsyncedCopies === undefined ? {} : { unsynced: lv.unsyncedCopies }),
      ...(lv.inactive === true ? { act: 'n' } : {}), ...(lv.readOnly === true ? { perm: 'r' } : {}) })),
    ...(d.shared === true ? { shared: true } : {}),
  }
  return new TextEncoder().encode(JSON.stringify(body))
}

type Obj = Record<string, unknown>

function obj(value: unknown, field: string): Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw corrupt(field, 'an object', typeof value)
  return value as Obj
}
function int(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw corrupt(field, `an integer in [${min}, ${max}]`, String(value))
  }
  return value
}
function str(value: unknown, field: string): string {
  if (typeof value !== 'string') throw corrupt(field, 'a string', typeof value)
  return value
}
function oneOf<T extends string>(value: unknown, field: string, allowed: readonly string[]): T {
  if (typeof value !== 'string' || !allowed.includes(value)) throw corrupt(field, allowed.join('|'), String(value))
  return value as T
}
/** An optional key whose one legal value is `only` (its absence is the default). */
function onlyValue(value: unknown, field: string, only: string): true {
  if (value !== only) throw corrupt(field, `"${only}" or absent`, String(value))
  return true
}
function arr(value: unknown, field: string): unknown[] {
  if (!Array.isArray(value)) throw corrupt(field, 'an array', typeof value)
  return value
}

function decodeLv(raw: unknown, i: number, pvCount: number): LvDescriptor {
  const o = obj(raw, `lvs[${i}]`)
  const f = (name: string): string => `lvs[${i}].${name}`
  const copies = int(o['copies'], f('copies'), 1, 3) as 1 | 2 | 3
  const lpCount = int(o['lps'], f('lps'), 0, 2 ** 31)
  const lps: PpRef[][] = []
  for (const [s, segRaw] of arr(o['segs'], f('segs')).entries()) {
    const seg = arr(segRaw, f(`segs[${s}]`))
    if (seg.length !== 2 + 2 * copies) throw corrupt(f(`segs[${s}]`), `${2 + 2 * copies} numbers`, String(seg.length))
    const first = int(seg[0], f(`segs[${s}][0]`), 0, 2 ** 31)
    const count = int(seg[1], f(`segs[${s}][1]`), 1, 2 ** 31)
    if (first !== lps.length) throw corrupt(f(`segs[${s}] first LP`), String(lps.length), String(first))
    if (first + count > lpCount) throw corrupt(f(`segs[${s}] count`), `<= ${lpCount - first}`, String(count))
    const bases = Array.from({ length: copies }, (_, k) => ({
      pvIndex: int(seg[2 + 2 * k], f(`segs[${s}] pv`), 0, pvCount - 1),
      pp: int(seg[3 + 2 * k], f(`segs[${s}] pp`), 0, 2 ** 32),
    }))
    for (let n = 0; n < count; n++) lps.push(bases.map((b) => ({ pvIndex: b.pvIndex, pp: b.pp + n })))
  }
  if (lps.length !== lpCount) throw corrupt(f('segs'), `${lpCount} LPs`, String(lps.length))
  const name = str(o['name'], f('name'))
  if (!NAME_PATTERN.test(name)) throw corrupt(f('name'), 'a valid LV name', name)
  return {
    lvId: int(o['lvId'], f('lvId'), 1, 2 ** 32 - 1), name, copies,
    strict: oneOf(o['strict'], f('strict'), STRICTNESS),
    schedule: oneOf(o['schedule'], f('schedule'), SCHEDULES),
    mwc: oneOf(o['mwc'], f('mwc'), MWC_POLICIES),
    lps, ext: obj(o['ext'], f('ext')) as { [key: string]: JsonValue },
    ...(o['al'] === undefined ? {} : { alExtents: int(o['al'], f('al'), 1, MAX_AL_EXTENTS) }),
    ...(o['bmChunkLog2'] === undefined ? {} : {
      bitmapChunkBytes: 2 ** int(o['bmChunkLog2'], f('bmChunkLog2'), MIN_BITMAP_CHUNK_LOG2, MAX_BITMAP_CHUNK_LOG2) }),
    ...(o['unsynced'] === undefined ? {} : { unsyncedCopies: int(o['unsynced'], f('unsynced'), 1, copies - 1) }),
    ...(o['act'] === undefined ? {} : { inactive: onlyValue(o['act'], f('act'), 'n') }),
    ...(o['perm'] === undefined ? {} : { readOnly: onlyValue(o['perm'], f('perm'), 'r') }),
  }
}

function decodePv(raw: unknown, i: number): PvDescriptor {
  const o = obj(raw, `pvs[${i}]`)
  if (!isId(o['pvId'])) throw corrupt(`pvs[${i}].pvId`, '32 hex digits', String(o['pvId']))
  if (typeof o['removed'] !== 'boolean') throw corrupt(`pvs[${i}].removed`, 'a boolean', typeof o['removed'])
  return { pvId: o['pvId'], lastPath: str(o['lastPath'], `pvs[${i}].lastPath`),
    ppCount: int(o['ppCount'], `pvs[${i}].ppCount`, 0, 2 ** 32 - 1), removed: o['removed'] }
}

const TOP_KEYS = ['v', 'vgId', 'name', 'seq', 'ts', 'ppSizeLog2', 'nextLvId', 'pvs', 'copies', 'lvs', 'shared']

/** Decodes a body; throws ENGINE_CORRUPT naming the field, or LVM_BADVERSION. */
export function decodeDescriptorBody(bytes: Uint8Array): VgDescriptor {
  let raw: unknown
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch {
    throw corrupt('descriptor body', 'UTF-8 JSON', 'unparseable bytes')
  }
  const o = obj(raw, 'descriptor body')
  const version = int(o['v'], 'v', 0, 2 ** 31)
  if (version !== FORMAT_VERSION) throw badVersion('descriptor body', version, FORMAT_VERSION)
  for (const key of Object.keys(o)) if (!TOP_KEYS.includes(key)) throw corrupt('descriptor key', 'a v1 key', key)
  if (!isId(o['vgId'])) throw corrupt('vgId', '32 hex digits', String(o['vgId']))
  const pvs = arr(o['pvs'], 'pvs').map((p, i) => decodePv(p, i))
  const descriptorCopies: CopyPlace[] = arr(o['copies'], 'copies').map((c, i) => {
    const pair = arr(c, `copies[${i}]`)
    return { pvIndex: int(pair[0], `copies[${i}][0]`, 0, pvs.length - 1),
      area: int(pair[1], `copies[${i}][1]`, 0, 1) as 0 | 1 }
  })
  const name = str(o['name'], 'name')
  if (!NAME_PATTERN.test(name)) throw corrupt('name', 'a valid VG name', name)
  if (o['shared'] !== undefined && o['shared'] !== true) throw corrupt('shared', 'true or absent', String(o['shared']))
  return {
    vgId: o['vgId'], name, seq: int(o['seq'], 'seq', 0, Number.MAX_SAFE_INTEGER),
    timestampMs: int(o['ts'], 'ts', 0, Number.MAX_SAFE_INTEGER),
    ppSizeBytes: 2 ** int(o['ppSizeLog2'], 'ppSizeLog2', 16, 34),
    nextLvId: int(o['nextLvId'], 'nextLvId', 1, 2 ** 32),
    pvs, descriptorCopies,
    lvs: arr(o['lvs'], 'lvs').map((lv, i) => decodeLv(lv, i, pvs.length)),
    ...(o['shared'] === true ? { shared: true } : {}),
  }
}
