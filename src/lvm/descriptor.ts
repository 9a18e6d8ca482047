/**
 * Descriptor checks and small pure edits. `descriptorProblems` is the semantic validation run
 * on every descriptor adopted at vary-on (a problem there gives LVM_INVCONFIG) and asserted
 * before every commit (a problem there is a bug).
 */
import type { LvDescriptor, VgDescriptor } from './model.js'
import { assert } from '../util/index.js'

export function descriptorProblems(d: VgDescriptor): string[] {
  const problems: string[] = []
  const owner = d.pvs.map((pv) => new Int32Array(pv.ppCount).fill(-1))
  const names = new Set<string>()
  const ids = new Set<number>()
  const pvIds = new Set(d.pvs.map((pv) => pv.pvId))
  if (pvIds.size !== d.pvs.length) problems.push('two PV entries share a pvId')
  for (const lv of d.lvs) {
    if (names.has(lv.name)) problems.push(`LV name "${lv.name}" is used twice`)
    if (ids.has(lv.lvId)) problems.push(`lvId ${lv.lvId} is used twice`)
    if (lv.lvId >= d.nextLvId) problems.push(`lvId ${lv.lvId} is not below nextLvId ${d.nextLvId}`)
    names.add(lv.name)
    ids.add(lv.lvId)
    problems.push(...lvProblems(d, lv, owner))
  }
  for (const place of d.descriptorCopies) {
    if (d.pvs[place.pvIndex]?.removed !== false) {
      problems.push(`descriptor copy on PV ${place.pvIndex}, which is removed or absent`)
    }
  }
  const places = new Set(d.descriptorCopies.map((p) => `${p.pvIndex}:${p.area}`))
  if (places.size !== d.descriptorCopies.length) problems.push('descriptor copy placed twice')
  return problems
}

function lvProblems(d: VgDescriptor, lv: LvDescriptor, owner: Int32Array[]): string[] {
  const problems: string[] = []
  const pvsOfCopy = Array.from({ length: lv.copies }, () => new Set<number>())
  lv.lps.forEach((copies, lp) => {
    if (copies.length !== lv.copies) problems.push(`LV "${lv.name}" LP ${lp} has ${copies.length} copies`)
    copies.forEach((ref, k) => {
      const map = owner[ref.pvIndex]
      if (map === undefined || ref.pp < 0 || ref.pp >= map.length) {
        problems.push(`LV "${lv.name}" LP ${lp} copy ${k} points outside PV ${ref.pvIndex}`)
        return
      }
      if (map[ref.pp] !== -1) problems.push(`PP ${ref.pp} of PV ${ref.pvIndex} is allocated twice`)
      map[ref.pp] = lv.lvId
      pvsOfCopy[k]?.add(ref.pvIndex)
    })
    if (lv.strict !== 'n' && new Set(copies.map((c) => c.pvIndex)).size !== copies.length) {
      problems.push(`LV "${lv.name}" LP ${lp} has two copies on one PV (strict ${lv.strict})`)
    }
  })
  if (lv.strict === 's') {
    for (let a = 0; a < lv.copies; a++) {
      for (let b = a + 1; b < lv.copies; b++) {
        for (const pv of pvsOfCopy[a]!) {
          if (pvsOfCopy[b]!.has(pv)) problems.push(`LV "${lv.name}" copies ${a} and ${b} share PV ${pv} (superstrict)`)
        }
      }
    }
  }
  return problems
}

export function assertValidDescriptor(d: VgDescriptor): void {
  const problems = descriptorProblems(d)
  assert(problems.length === 0, `invalid descriptor: ${problems.join('; ')}`)
}

/** PPs in use on each PV (true = allocated). */
export function allocationMaps(d: VgDescriptor): Uint8Array[] {
  const maps = d.pvs.map((pv) => new Uint8Array(pv.ppCount))
  for (const lv of d.lvs) for (const copies of lv.lps) for (const ref of copies) maps[ref.pvIndex]![ref.pp] = 1
  return maps
}

export function allocatedCount(d: VgDescriptor, pvIndex: number): number {
  let count = 0
  for (const lv of d.lvs) for (const copies of lv.lps) for (const ref of copies) if (ref.pvIndex === pvIndex) count++
  return count
}
