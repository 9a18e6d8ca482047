/**
 * LV operations as pure descriptor transforms: each takes the current descriptor and returns
 * the next one (or throws a typed error, having changed nothing). OnlineVg runs them inside its
 * serial chain and commits the result, so every check here sees the descriptor it replaces.
 */
import { LvmfsError, alreadyExists, invalidParam, notFound, usageError } from '../errors/index.js'
import {
  MAX_AL_EXTENTS, MIN_BITMAP_CHUNK_LOG2, MWC_POLICIES, NAME_PATTERN, NAME_RULE, SCHEDULES, STRICTNESS,
  PINNED_OVERSHOOT_LTGS, alExtentsCapacity,
} from '../format/index.js'
import { allocateLps } from './allocator.js'
import { isThinPool, refuseThin, thinDependents } from './thin-ext.js'
import type { JsonValue, LvDescriptor, VgDescriptor } from './model.js'
import type { LvChangeOptions, LvCreateOptions } from './volume-group.js'

/** What the transforms need to know about the VG beyond its descriptor. */
export interface PvContext {
  /** PVs new partitions may go on (ACTIVE ones). */
  readonly activePvIndexes: readonly number[]
  /** Size of the activity-log area of an ACTIVE PV. */
  mwcAreaBytes(pvIndex: number): number
}

export interface LvTransform {
  readonly descriptor: VgDescriptor
  readonly lv: LvDescriptor
}

export function requireLv(d: VgDescriptor, name: string): LvDescriptor {
  const lv = d.lvs.find((candidate) => candidate.name === name)
  if (lv === undefined) throw notFound('logical volume', name, d.name, { vg: d.name, lv: name })
  return lv
}

function replaced(d: VgDescriptor, old: LvDescriptor, next: LvDescriptor): LvTransform {
  return { descriptor: { ...d, lvs: d.lvs.map((lv) => (lv === old ? next : lv)) }, lv: next }
}

export function createLv(d: VgDescriptor, options: LvCreateOptions, pvs: PvContext): LvTransform {
  const copies = options.copies ?? 1
  validateCreate(options, copies, options.ext?.['thin'] !== undefined)
  if (d.lvs.some((lv) => lv.name === options.name)) throw alreadyExists('logical volume', options.name, d.name)
  const allowed = options.pvIndexes === undefined ? pvs.activePvIndexes
    : options.pvIndexes.filter((i) => pvs.activePvIndexes.includes(i))
  const strict = options.strict ?? 'y'
  const lps = allocateLps(d, { lpCount: options.lpCount, copies, strict, allowedPvs: [...allowed] })
  const lv: LvDescriptor = { lvId: d.nextLvId, name: options.name, copies, strict,
    schedule: options.schedule ?? 'p', mwc: options.mwc ?? (copies > 1 ? 'active' : 'off'), lps,
    ext: options.ext ?? {},
    ...(options.alExtents === undefined ? {} : { alExtents: options.alExtents }),
    ...(options.bitmapChunkBytes === undefined ? {} : { bitmapChunkBytes: options.bitmapChunkBytes }) }
  validateLogOptions(lv, d.ppSizeBytes, pvs)
  return { descriptor: { ...d, lvs: [...d.lvs, lv], nextLvId: d.nextLvId + 1 }, lv }
}

export function extendLv(d: VgDescriptor, name: string, addLps: number, pvs: PvContext): LvTransform {
  const lv = requireLv(d, name)
  refuseThin(lv, 'lvextend')
  if (!Number.isSafeInteger(addLps) || addLps < 1) throw usageError(`invalid extension of "${name}": ${addLps} LPs`)
  const more = allocateLps(d, { lpCount: addLps, copies: lv.copies, strict: lv.strict,
    allowedPvs: [...pvs.activePvIndexes], existing: lv.lps })
  return replaced(d, lv, { ...lv, lps: [...lv.lps, ...more] })
}

export function reduceLv(d: VgDescriptor, name: string, removeLps: number): LvTransform {
  const lv = requireLv(d, name)
  refuseThin(lv, 'lvreduce')
  if (isThinPool(lv)) {
    throw usageError(`"${name}" is a thin pool: it cannot be reduced`, 'Its data blocks may sit anywhere in it; lvmfs never shrinks a pool.')
  }
  if (!Number.isSafeInteger(removeLps) || removeLps < 1 || removeLps >= lv.lps.length) {
    throw usageError(`invalid reduction of "${name}": ${removeLps} of ${lv.lps.length} LPs`,
      'An LV keeps at least one LP; use lvremove to delete it.')
  }
  return replaced(d, lv, { ...lv, lps: lv.lps.slice(0, lv.lps.length - removeLps) })
}

/** Exchanges the physical partitions of LP pairs (stale bits belong to PPs and move with them). */
export function swapLps(d: VgDescriptor, name: string, pairs: ReadonlyArray<readonly [number, number]>): LvTransform {
  const lv = requireLv(d, name)
  const lps = [...lv.lps]
  const seen = new Set<number>()
  for (const [a, b] of pairs) {
    if (a === b) throw usageError(`LP ${a} of "${name}" cannot be exchanged with itself`)
    for (const lp of [a, b]) {
      if (!Number.isSafeInteger(lp) || lp < 0 || lp >= lps.length) {
        throw usageError(`invalid LP ${lp} of "${name}" (it has ${lps.length})`)
      }
      if (seen.has(lp)) throw usageError(`LP ${lp} of "${name}" appears in more than one exchange`)
      seen.add(lp)
    }
    const first = lps[a]!
    lps[a] = lps[b]!
    lps[b] = first
  }
  return replaced(d, lv, { ...lv, lps })
}

export function removeLv(d: VgDescriptor, name: string): VgDescriptor {
  const lv = requireLv(d, name)
  const dependents = thinDependents(d, lv)
  if (dependents.length > 0) {
    throw new LvmfsError('THIN_HAS_SNAPSHOTS', `logical volume "${name}" has thin LVs depending on it`, {
      detail: `${dependents.map((x) => x.name).join(', ')} ${dependents.length === 1 ? 'uses' : 'use'} it.`,
      hint: 'Remove them first.', context: { lv: name, dependents: dependents.map((x) => x.name) } })
  }
  return { ...d, lvs: d.lvs.filter((x) => x !== lv) }
}

export function renameLv(d: VgDescriptor, name: string, newName: string): LvTransform {
  const lv = requireLv(d, name)
  if (!NAME_PATTERN.test(newName)) throw usageError(`invalid LV name "${newName}"`, NAME_RULE)
  if (d.lvs.some((other) => other.name === newName)) throw alreadyExists('logical volume', newName, d.name)
  return replaced(d, lv, { ...lv, name: newName })
}

export function changeLv(d: VgDescriptor, name: string, change: LvChangeOptions, pvs: PvContext): LvTransform {
  const lv = requireLv(d, name)
  if (change.mwc !== undefined && !MWC_POLICIES.includes(change.mwc)) throw usageError(`invalid mwc "${change.mwc}"`)
  if (change.mwc === undefined && change.alExtents === undefined && change.bitmapChunkBytes === undefined &&
      change.activate === undefined && change.permission === undefined && change.strict === undefined) {
    throw usageError(`nothing to change on "${name}"`,
      'Give --mwc, --al-extents, --bitmap-chunk, --activate, --permission or --strict.')
  }
  if (change.strict !== undefined) checkStrictness(lv, change.strict)
  if (change.activate !== undefined && typeof change.activate !== 'boolean') {
    throw invalidParam('activate', change.activate, `invalid activation for "${name}"`, 'y or n.')
  }
  if (change.permission !== undefined && change.permission !== 'r' && change.permission !== 'rw') {
    throw invalidParam('permission', change.permission, `invalid permission for "${name}"`, 'r or rw.')
  }
  const next: LvDescriptor = withFlags({ ...lv, ...(change.mwc === undefined ? {} : { mwc: change.mwc }),
    ...(change.strict === undefined ? {} : { strict: change.strict }),
    ...(change.alExtents === undefined ? {} : { alExtents: change.alExtents }),
    ...(change.bitmapChunkBytes === undefined ? {} : { bitmapChunkBytes: change.bitmapChunkBytes }) },
  change.activate === undefined ? lv.inactive !== true : change.activate,
  change.permission === undefined ? lv.readOnly === true : change.permission === 'r')
  validateLogOptions(next, d.ppSizeBytes, pvs)
  return replaced(d, lv, next)
}

/** A stricter rule must already hold for the partitions the LV has (lvconvert moves none). */
function checkStrictness(lv: LvDescriptor, strict: LvDescriptor['strict']): void {
  if (!STRICTNESS.includes(strict)) {
    throw invalidParam('strict', strict, `invalid strict "${String(strict)}" for "${lv.name}"`, 'y, n or s.')
  }
  if (strict === 'n') return
  const shared = lv.lps.findIndex((refs) => new Set(refs.map((ref) => ref.pvIndex)).size < refs.length)
  if (shared >= 0) {
    throw invalidParam('strict', strict, `LP ${shared} of "${lv.name}" has two copies on one PV`,
      'Strict placement keeps the copies of a partition on different PVs; pvmove one of them first.', { lp: shared })
  }
  if (strict !== 's') return
  const pvsOf = (k: number): Set<number> => new Set(lv.lps.map((refs) => refs[k]!.pvIndex))
  for (let k = 0; k < lv.copies; k++) {
    for (let other = k + 1; other < lv.copies; other++) {
      const both = [...pvsOf(k)].filter((pvIndex) => pvsOf(other).has(pvIndex))
      if (both.length > 0) {
        throw invalidParam('strict', strict, `copies ${k + 1} and ${other + 1} of "${lv.name}" share PV ${both[0]}`,
          'Superstrict placement gives each copy its own PVs; pvmove the partitions apart first.', { pvIndex: both[0] })
      }
    }
  }
}

/** The LV with its activation and permission keys present only when not the default, so an LV
 * changed back keeps the bytes it had before. */
function withFlags(lv: LvDescriptor, active: boolean, readOnly: boolean): LvDescriptor {
  const { inactive: _inactive, readOnly: _readOnly, ...rest } = lv
  return { ...rest, ...(active ? {} : { inactive: true }), ...(readOnly ? { readOnly: true } : {}) }
}

export function setLvExt(d: VgDescriptor, name: string, ext: { readonly [key: string]: JsonValue }): LvTransform {
  const lv = requireLv(d, name)
  if (typeof ext !== 'object' || ext === null || Array.isArray(ext)) throw usageError('ext must be a JSON object')
  return replaced(d, lv, { ...lv, ext: JSON.parse(JSON.stringify(ext)) as typeof ext })
}

/** al-extents within what one activity-log record on the LV's ACTIVE PVs can list; the bitmap
 * chunk a power of two that divides the PP. */
function validateLogOptions(lv: LvDescriptor, ppSizeBytes: number, pvs: PvContext): void {
  if (lv.alExtents !== undefined) {
    const onActive = [...new Set(lv.lps.flatMap((copies) => copies.map((copy) => copy.pvIndex)))]
      .filter((pvIndex) => pvs.activePvIndexes.includes(pvIndex))
    const capacity = Math.min(MAX_AL_EXTENTS, ...onActive.map((pvIndex) =>
      alExtentsCapacity(pvs.mwcAreaBytes(pvIndex)) - 2 * PINNED_OVERSHOOT_LTGS))
    if (!Number.isSafeInteger(lv.alExtents) || lv.alExtents < 1 || lv.alExtents > capacity) {
      throw invalidParam('alExtents', lv.alExtents, `invalid al-extents ${lv.alExtents} for "${lv.name}"`,
        `The activity log of this LV's PVs holds 1 to ${capacity} extents.`, { max: capacity })
    }
  }
  const chunk = lv.bitmapChunkBytes
  if (chunk !== undefined && (!Number.isSafeInteger(chunk) || chunk < 2 ** MIN_BITMAP_CHUNK_LOG2 ||
      !Number.isInteger(Math.log2(chunk)) || chunk > ppSizeBytes)) {
    throw invalidParam('bitmapChunkBytes', chunk, `invalid bitmap chunk ${chunk} for "${lv.name}"`,
      `A power of two from ${2 ** MIN_BITMAP_CHUNK_LOG2} bytes up to the PP size (${ppSizeBytes}).`)
  }
}

function validateCreate(options: LvCreateOptions, copies: number, thin: boolean): void {
  if (typeof options.name !== 'string' || !NAME_PATTERN.test(options.name)) {
    throw usageError(`invalid LV name "${String(options.name)}"`, NAME_RULE)
  }
  // A thin LV owns no PPs: its blocks live in its pool (thin-ext.ts).
  if (thin && options.lpCount !== 0) throw usageError('a thin LV owns no LPs')
  if (!thin && (!Number.isSafeInteger(options.lpCount) || options.lpCount < 1 || options.lpCount > 2 ** 31)) {
    throw usageError(`invalid LV size: ${options.lpCount} LPs`, 'An LV has at least one LP.')
  }
  if (copies === 0 || !Number.isSafeInteger(copies) || copies < 0) throw usageError(`invalid copies: ${copies}`)
  if (copies > 3) throw new LvmfsError('LVM_NOALLOCLP', `an LV has at most 3 copies, not ${copies}`)
  if (options.strict !== undefined && !STRICTNESS.includes(options.strict)) {
    throw usageError(`invalid strict "${options.strict}"`)
  }
  if (options.schedule !== undefined && !SCHEDULES.includes(options.schedule)) {
    throw usageError(`invalid schedule "${options.schedule}"`)
  }
  if (options.mwc !== undefined && !MWC_POLICIES.includes(options.mwc)) throw usageError(`invalid mwc "${options.mwc}"`)
}
