/**
 * Descriptor transforms that change where an LV's copies live: lvconvert adding or dropping
 * copies, pvmove moving one copy of one LP. Pure, like lv-transforms.ts; OnlineVg commits them.
 *
 * Why new copies are marked in the descriptor (`unsyncedCopies`): stale bits live in the status
 * area and only for allocated PPs, so the descriptor commit that allocates a new copy cannot
 * carry its stale bits. The marker makes that commit safe alone: until a status commit has
 * made the new PPs stale and a third commit has dropped the marker, every reader (vary-on
 * after a crash included) treats the marked copies as stale.
 */
import { LvmfsError, usageError } from '../errors/index.js'
import { allocateExtraCopies, allocateMovedCopy } from './allocator.js'
import { requireLv, type LvTransform, type PvContext } from './lv-transforms.js'
import type { LvDescriptor, PpRef, VgDescriptor } from './model.js'

const MAX_COPIES = 3

/** Whether a copy holds good data now (PV active, PP not stale). */
export type FreshCopy = (ref: PpRef) => boolean

export interface AddedCopies extends LvTransform {
  /** The new PPs, every one to be marked stale. */
  readonly added: readonly PpRef[]
}

function checkCount(lv: LvDescriptor, copies: number, grow: boolean): void {
  if (!Number.isSafeInteger(copies) || copies < 1 || copies > MAX_COPIES) {
    throw usageError(`invalid copies ${copies} for "${lv.name}"`, `An LV has 1 to ${MAX_COPIES} copies.`,
      { field: 'copies', value: copies })
  }
  if (grow ? copies <= lv.copies : copies >= lv.copies) {
    throw usageError(`"${lv.name}" already has ${lv.copies} ${lv.copies === 1 ? 'copy' : 'copies'}`,
      `Ask for ${grow ? 'more' : 'fewer'} than ${lv.copies}.`, { field: 'copies', value: copies })
  }
}

/** Default MWC follows the copy count, as at lvcreate: active for a mirror, off for one copy. */
function mwcFor(lv: LvDescriptor, copies: number): LvDescriptor['mwc'] {
  if (copies > 1 && lv.copies === 1 && lv.mwc === 'off') return 'active'
  if (copies === 1 && lv.mwc === 'active') return 'off'
  return lv.mwc
}

export function addCopies(d: VgDescriptor, name: string, copies: number, pvs: PvContext,
  onPvs?: readonly number[]): AddedCopies {
  const lv = requireLv(d, name)
  checkCount(lv, copies, true)
  if (lv.unsyncedCopies !== undefined) {
    throw new LvmfsError('LVM_INRESYNC', `copies of "${name}" added earlier are not yet marked stale`, {
      hint: 'Vary the volume group on again; it finishes that step.', context: { lv: name } })
  }
  const allowed = onPvs === undefined ? pvs.activePvIndexes : onPvs.filter((i) => pvs.activePvIndexes.includes(i))
  const extra = allocateExtraCopies(d, lv.lps, copies - lv.copies, lv.strict, allowed)
  const next: LvDescriptor = { ...lv, copies: copies as LvDescriptor['copies'], mwc: mwcFor(lv, copies),
    lps: lv.lps.map((refs, lp) => [...refs, ...extra[lp]!]), unsyncedCopies: copies - lv.copies }
  return { descriptor: replaced(d, lv, next), lv: next, added: extra.flat() }
}

/**
 * Keeps `copies` copies of every LP. Dropped first: copies on `dropFrom` PVs, then copies that
 * are not fresh, then the highest copy index; but every LP keeps a fresh copy, even one on a
 * `dropFrom` PV. An LP with no fresh copy at all is refused (LVM_INVLPRED: nothing good to keep).
 */
export function dropCopies(d: VgDescriptor, name: string, copies: number, fresh: FreshCopy,
  dropFrom: readonly number[] = []): LvTransform {
  const lv = requireLv(d, name)
  checkCount(lv, copies, false)
  const lps = lv.lps.map((refs, lp) => {
    if (!refs.some(fresh)) {
      throw new LvmfsError('LVM_INVLPRED', `LP ${lp} of "${name}" has no fresh copy to keep`, {
        hint: 'Bring its PVs back or resync it first.', context: { lv: name, lp } })
    }
    const rank = (ref: PpRef, index: number): number =>
      (dropFrom.includes(ref.pvIndex) ? 0 : 4) + (fresh(ref) ? 2 : 0) + (index < copies ? 1 : 0)
    const ranked = refs.map((ref, index) => ({ ref, index, score: rank(ref, index) }))
      .sort((a, b) => b.score - a.score || a.index - b.index)
    const keep = ranked.slice(0, copies)
    // A fresh copy on a --pv PV outranks none of the others, but the LP must keep one.
    if (!keep.some((k) => fresh(k.ref))) keep[keep.length - 1] = ranked.find((k) => fresh(k.ref))!
    return keep.sort((a, b) => a.index - b.index).map((k) => k.ref)
  })
  const { unsyncedCopies: _dropped, ...rest } = lv
  const next: LvDescriptor = { ...rest, copies: copies as LvDescriptor['copies'], mwc: mwcFor(lv, copies), lps }
  return { descriptor: replaced(d, lv, next), lv: next }
}

/** Copy `copy` of LP `lp` now lives at `to`. */
export function moveCopy(d: VgDescriptor, name: string, lp: number, copy: number, to: PpRef): LvTransform {
  const lv = requireLv(d, name)
  const refs = lv.lps[lp]
  if (refs?.[copy] === undefined) throw usageError(`no copy ${copy} of LP ${lp} in "${name}"`)
  const next: LvDescriptor = { ...lv, lps: lv.lps.map((r, i) => (i === lp ? r.map((ref, k) => (k === copy ? to : ref))
    : r)) }
  return { descriptor: replaced(d, lv, next), lv: next }
}

/** A free PP for copy `copy` of LP `lp` on one of `onPvs`, away from the LP's other copies. */
export function moveTarget(d: VgDescriptor, lv: LvDescriptor, lp: number, copy: number,
  onPvs: readonly number[]): PpRef {
  return allocateMovedCopy(d, lv, lp, copy, onPvs)
}

/** The copies of `lv` the marker says hold no data yet. */
export function unsyncedRefs(lv: LvDescriptor): PpRef[] {
  const n = lv.unsyncedCopies ?? 0
  return n === 0 ? [] : lv.lps.flatMap((refs) => refs.slice(refs.length - n))
}

export function withoutUnsyncedMarker(d: VgDescriptor): VgDescriptor {
  return { ...d, lvs: d.lvs.map((lv) => {
    if (lv.unsyncedCopies === undefined) return lv
    const { unsyncedCopies: _settled, ...rest } = lv
    return rest
  }) }
}

function replaced(d: VgDescriptor, old: LvDescriptor, next: LvDescriptor): VgDescriptor {
  return { ...d, lvs: d.lvs.map((lv) => (lv === old ? next : lv)) }
}
