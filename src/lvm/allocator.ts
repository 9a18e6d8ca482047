/**
 * PP allocation for new LPs (lvcreate, lvextend). Pure: descriptor in, LP copies out.
 *
 * Method: copy by copy, LP by LP. For each LP copy it prefers the PP right after the previous
 * LP's copy on the same PV (keeps LVs contiguous, so descriptors stay a few segments), else
 * the allowed PV with the most free PPs (ties: lowest index), lowest free PP there.
 * Constraints: only `allowedPvs` (active PVs); strict 'y' and 's' never put two copies of one
 * LP on the same PV; strict 's' also keeps the PVs of copy k apart from the PVs of every
 * other copy of the LV (existing LPs included). Failure is LVM_NOFREEPPS, with no change.
 */
import { LvmfsError } from '../errors/index.js'
import type { PpRef, Strictness, VgDescriptor } from './model.js'
import { allocationMaps } from './descriptor.js'

export interface AllocationRequest {
  readonly lpCount: number
  readonly copies: number
  readonly strict: Strictness
  readonly allowedPvs: readonly number[]
  /** The LV's existing LPs (for lvextend): contiguity and superstrict sets. */
  readonly existing?: ReadonlyArray<ReadonlyArray<PpRef>>
}

/** Which PPs are in use on each PV, and how many are free. */
function freeMaps(d: VgDescriptor): { used: Uint8Array[]; free: number[] } {
  const used = allocationMaps(d)
  return { used, free: used.map((map) => map.reduce((n, bit) => n + (bit === 0 ? 1 : 0), 0)) }
}

function take(used: Uint8Array[], free: number[], ref: PpRef): void {
  used[ref.pvIndex]![ref.pp] = 1
  free[ref.pvIndex]!--
}

export function allocateLps(d: VgDescriptor, request: AllocationRequest): PpRef[][] {
  const { used, free } = freeMaps(d)
  const existing = request.existing ?? []
  const pvsOfCopy = Array.from({ length: request.copies }, (_, k) =>
    new Set(existing.map((copies) => copies[k]!.pvIndex)))
  const out: PpRef[][] = Array.from({ length: request.lpCount }, () => [])
  for (let k = 0; k < request.copies; k++) {
    let previous = existing.at(-1)?.[k]
    for (let lp = 0; lp < request.lpCount; lp++) {
      const taken = out[lp]!.map((ref) => ref.pvIndex)
      const ref = pickPp({ used, free, previous, taken, k, pvsOfCopy, request })
      if (ref === undefined) {
        throw new LvmfsError('LVM_NOFREEPPS', 'not enough free physical partitions', {
          detail: `Need ${request.lpCount} LPs x ${request.copies} copies (strict ${request.strict}) ` +
            `on ${request.allowedPvs.length} active PVs; ran out at copy ${k + 1}, LP ${lp + 1}.`,
          hint: 'Add a PV with vgextend, reduce the size, or use fewer copies or --strict n.',
          context: { lpCount: request.lpCount, copies: request.copies, freePps: free.reduce((a, b) => a + b, 0) },
        })
      }
      take(used, free, ref)
      pvsOfCopy[k]!.add(ref.pvIndex)
      out[lp]!.push(ref)
      previous = ref
    }
  }
  return out
}

/**
 * PPs for `extra` more copies of every LP of an existing LV (lvconvert --copies): copy k of LP n
 * avoids the PVs of LP n's other copies (strict y and s) and, for strict s, the PVs of every
 * other copy of the LV. Returns the new copies of each LP, in LP order.
 */
export function allocateExtraCopies(d: VgDescriptor, lps: ReadonlyArray<ReadonlyArray<PpRef>>, extra: number,
  strict: Strictness, allowedPvs: readonly number[]): PpRef[][] {
  const { used, free } = freeMaps(d)
  const have = lps[0]?.length ?? 0
  const copies = have + extra
  const request: AllocationRequest = { lpCount: lps.length, copies, strict, allowedPvs }
  const pvsOfCopy = Array.from({ length: copies }, (_, k) => new Set(lps.flatMap((refs) =>
    refs[k] === undefined ? [] : [refs[k].pvIndex])))
  const out: PpRef[][] = lps.map(() => [])
  for (let k = have; k < copies; k++) {
    let previous: PpRef | undefined
    for (let lp = 0; lp < lps.length; lp++) {
      const taken = [...lps[lp]!, ...out[lp]!].map((ref) => ref.pvIndex)
      const ref = pickPp({ used, free, previous, taken, k, pvsOfCopy, request })
      if (ref === undefined) {
        throw new LvmfsError('LVM_NOFREEPPS', 'not enough free physical partitions for the new copy', {
          detail: `Copy ${k + 1} of ${lps.length} LPs (strict ${strict}) on ${allowedPvs.length} active PVs ran ` +
            `out at LP ${lp + 1}.`,
          hint: 'Add a PV with vgextend, or use --strict n.',
          context: { lpCount: lps.length, copies, freePps: free.reduce((a, b) => a + b, 0) } })
      }
      take(used, free, ref)
      pvsOfCopy[k]!.add(ref.pvIndex)
      out[lp]!.push(ref)
      previous = ref
    }
  }
  return out
}

/** A free PP for copy `copy` of LP `lp` of `lv` (pvmove) on one of `onPvs`, never on a PV of
 * the LP's other copies (strict y and s) nor on the copy's current PV; next to the previous
 * LP's copy when that is free, so moved LVs stay contiguous. */
export function allocateMovedCopy(d: VgDescriptor, lv: { readonly lps: ReadonlyArray<ReadonlyArray<PpRef>>;
  readonly strict: Strictness }, lp: number, copy: number, onPvs: readonly number[]): PpRef {
  const { used, free } = freeMaps(d)
  const refs = lv.lps[lp]!
  const current = refs[copy]!
  const allowedPvs = onPvs.filter((pvIndex) => pvIndex !== current.pvIndex)
  const request: AllocationRequest = { lpCount: 1, copies: refs.length, strict: lv.strict, allowedPvs }
  const pvsOfCopy = Array.from({ length: refs.length }, (_, k) => new Set(lv.lps.flatMap((other) =>
    other[k] === undefined || other[k] === current ? [] : [other[k].pvIndex])))
  const taken = refs.flatMap((ref, k) => (k === copy ? [] : [ref.pvIndex]))
  const ref = pickPp({ used, free, previous: lv.lps[lp - 1]?.[copy], taken, k: copy, pvsOfCopy, request })
  if (ref === undefined) {
    throw new LvmfsError('LVM_NOFREEPPS', `no free physical partition for copy ${copy + 1} of LP ${lp}`, {
      detail: `Looked on ${allowedPvs.length} PV(s) (strict ${lv.strict}).`,
      hint: 'Add a PV with vgextend, or name other destination PVs.', context: { lp, copy } })
  }
  return ref
}

interface PickState {
  used: Uint8Array[]
  free: number[]
  previous: PpRef | undefined
  taken: number[]
  k: number
  pvsOfCopy: Array<Set<number>>
  request: AllocationRequest
}

function pvAllowed(pvIndex: number, s: PickState): boolean {
  if (!s.request.allowedPvs.includes(pvIndex) || s.free[pvIndex]! <= 0) return false
  if (s.request.strict !== 'n' && s.taken.includes(pvIndex)) return false
  if (s.request.strict === 's') {
    for (let other = 0; other < s.pvsOfCopy.length; other++) {
      if (other !== s.k && s.pvsOfCopy[other]!.has(pvIndex)) return false
    }
  }
  return true
}

function pickPp(s: PickState): PpRef | undefined {
  const prev = s.previous
  if (prev !== undefined && pvAllowed(prev.pvIndex, s) && s.used[prev.pvIndex]![prev.pp + 1] === 0) {
    return { pvIndex: prev.pvIndex, pp: prev.pp + 1 }
  }
  let best: number | undefined
  for (const pvIndex of s.request.allowedPvs) {
    if (!pvAllowed(pvIndex, s)) continue
    // Stay on the PV already used by this copy when possible, else the emptiest PV.
    const preferSame = prev !== undefined && pvIndex === prev.pvIndex
    if (best === undefined || preferSame || (s.free[pvIndex]! > s.free[best]! && best !== prev?.pvIndex)) {
      best = pvIndex
    }
  }
  if (best === undefined) return undefined
  const pp = s.used[best]!.indexOf(0)
  return pp < 0 ? undefined : { pvIndex: best, pp }
}
