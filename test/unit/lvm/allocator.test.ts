/**
 * allocateLps() on random VGs and requests: the result always forms a valid descriptor (no PP
 * twice, strictness kept), and it only refuses with LVM_NOFREEPPS, never when a single-copy
 * request fits in the free PPs of the allowed PVs.
 */
import t from 'tap'
import fc from 'fast-check'
import { isLvmfsError } from '../../../src/errors/index.js'
import { allocateLps, descriptorProblems, type VgDescriptor } from '../../../src/lvm/index.js'

function vgOf(ppCounts: number[]): VgDescriptor {
  return { vgId: 'a'.repeat(32), name: 'vg', seq: 1, timestampMs: 0, ppSizeBytes: 65536, nextLvId: 1, lvs: [],
    pvs: ppCounts.map((ppCount, i) => ({ pvId: i.toString(16).padStart(32, '0'), lastPath: '', ppCount, removed: false })),
    descriptorCopies: [] }
}

void t.test('random allocations stay valid and refuse only with LVM_NOFREEPPS', async (t) => {
  let refused = 0
  fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 5 }),
    fc.array(fc.record({ lps: fc.integer({ min: 1, max: 15 }), copies: fc.constantFrom(1, 2, 3),
      strict: fc.constantFrom('y', 'n', 's'), extend: fc.boolean() }), { maxLength: 8 }),
    (ppCounts, requests) => {
      let d = vgOf(ppCounts)
      const all = ppCounts.map((_, i) => i)
      for (const r of requests) {
        const target = r.extend ? d.lvs.at(-1) : undefined
        const free = ppCounts.reduce((n, c) => n + c, 0) - d.lvs.reduce((n, lv) => n + lv.lps.length * lv.copies, 0)
        try {
          if (target !== undefined) {
            const more = allocateLps(d, { lpCount: r.lps, copies: target.copies, strict: target.strict, allowedPvs: all,
              existing: target.lps })
            d = { ...d, lvs: d.lvs.map((lv) => (lv === target ? { ...lv, lps: [...lv.lps, ...more] } : lv)) }
          } else {
            const lps = allocateLps(d, { lpCount: r.lps, copies: r.copies, strict: r.strict as 'y', allowedPvs: all })
            d = { ...d, nextLvId: d.nextLvId + 1, lvs: [...d.lvs, { lvId: d.nextLvId, name: `lv${d.nextLvId}`,
              copies: r.copies as 1, strict: r.strict as 'y', schedule: 'p', mwc: 'off', lps, ext: {} }] }
          }
        } catch (error) {
          if (!isLvmfsError(error, 'LVM_NOFREEPPS')) throw error
          const copies = target?.copies ?? r.copies
          if (copies === 1 && r.lps <= free) return false
          refused++
        }
        if (descriptorProblems(d).length > 0) return false
      }
      return true
    }), { numRuns: 500 })
  t.ok(refused > 0, `${refused} refusals seen`)
})
