/**
 * T4: every non-empty subset of missing PVs for VGs of 1, 2, 3 and 5 PVs, vary-on with
 * misspv_von/missname_von and with override (--force). Expected outcome from the AIX rule
 * (copies: 1 PV → 2, 2 PVs → 2 + 1, ≥3 → 1 each; quorum = more than half of the copies):
 *  - quorum: LVM_CHKVVGOUT, missing PVs MISSING, and the MISSING flags are persisted;
 *  - no quorum, no force: LVM_NOQUORUM and no byte changed on any reachable PV;
 *  - no quorum, force: missing PVs REMOVED (persisted), or LVM_NOVGDAS when nothing is left.
 */
import t from 'tap'
import { varyOnVg } from '../../../src/lvm/index.js'
import { Pool, makeVg } from '../../helpers/lvm-fixture.js'

function copiesOn(pvCount: number): number[] {
  if (pvCount === 1) return [2]
  if (pvCount === 2) return [2, 1]
  return Array.from({ length: pvCount }, () => 1)
}

for (const pvCount of [1, 2, 3, 5]) {
  void t.test(`${pvCount} PV(s): every subset of missing PVs, with and without force`, async (t) => {
    const pool = new Pool(pvCount)
    const d = await makeVg(pool, 'vg')
    const clean = pool.snapshot()
    const copies = copiesOn(pvCount)
    const total = copies.reduce((a, b) => a + b, 0)
    for (let mask = 1; mask < 2 ** pvCount; mask++) {
      const missing = d.pvs.map((_, i) => (mask & (1 << i)) !== 0)
      const left = copies.filter((_, i) => !missing[i]).reduce((a, b) => a + b, 0)
      const quorum = left * 2 > total
      for (const force of [false, true]) {
        pool.restore(clean)
        pool.absent.clear()
        d.pvs.forEach((pv, i) => { if (missing[i]) pool.absent.add(pv.lastPath) })
        const reachable = d.pvs.filter((_, i) => !missing[i]).map((pv) => pv.lastPath)
        const hashes = reachable.map((p) => pool.hash(p))
        const result = await varyOnVg({ vgId: d.vgId, devices: pool.paths, opener: pool.opener,
          flags: { misspvVon: true, missnameVon: true, override: force } })
        const label = `missing ${missing.map((m) => (m ? 1 : 0)).join('')} force=${force}`
        const states = d.pvs.map((pv) => result.vvgOut.find((o) => o.pvId === pv.pvId)?.status)
        await result.vg?.varyOff()
        if (quorum) {
          t.equal(result.rc, 'LVM_CHKVVGOUT', `${label}: ${result.error?.message ?? ''}`)
          t.same(states, missing.map((m) => (m ? 'LVM_PVMISSING' : 'LVM_PVACTIVE')), label)
          const again = await varyOnVg({ vgId: d.vgId, devices: pool.paths, opener: pool.opener, readOnly: true,
            flags: { misspvVon: true, missnameVon: true } })
          t.same(again.status?.missing, missing, `${label}: MISSING flags persisted`)
        } else if (!force) {
          t.equal(result.rc, 'LVM_NOQUORUM', label)
          t.ok(result.vvgOut.every((o) => ['LVM_PVINVG', 'LVM_PVNOTFND', 'LVM_PVNOTINVG'].includes(o.status)),
            `${label}: provisional statuses only`)
          t.same(reachable.map((p) => pool.hash(p)), hashes, `${label}: no byte changed`)
        } else if (left === 0) {
          t.equal(result.rc, 'LVM_NOVGDAS', label)
        } else {
          t.equal(result.rc, 'LVM_CHKVVGOUT', `${label}: ${result.error?.message ?? ''}`)
          t.same(states, missing.map((m) => (m ? 'LVM_PVREMOVED' : 'LVM_PVACTIVE')), label)
          pool.absent.clear()
          const back = await varyOnVg({ vgId: d.vgId, devices: pool.paths, opener: pool.opener, readOnly: true,
            flags: { misspvVon: true, missnameVon: true } })
          t.same(d.pvs.map((pv) => back.vvgOut.find((o) => o.pvId === pv.pvId)?.status),
            missing.map((m) => (m ? 'LVM_PVREMOVED' : 'LVM_PVACTIVE')), `${label}: REMOVED persisted`)
        }
      }
    }
  })
}

void t.test('2 PVs: losing the PV with two copies loses quorum, losing the other does not', async (t) => {
  const pool = new Pool(2)
  const d = await makeVg(pool, 'vg')
  t.same(d.descriptorCopies.map((c) => c.pvIndex), [0, 0, 1])
  pool.absent.add(d.pvs[0]!.lastPath)
  const first = await varyOnVg({ vgId: d.vgId, devices: pool.paths, opener: pool.opener,
    flags: { misspvVon: true, missnameVon: true } })
  t.equal(first.rc, 'LVM_NOQUORUM')
  pool.absent.clear()
  pool.absent.add(d.pvs[1]!.lastPath)
  const second = await varyOnVg({ vgId: d.vgId, devices: pool.paths, opener: pool.opener,
    flags: { misspvVon: true, missnameVon: true } })
  t.equal(second.rc, 'LVM_CHKVVGOUT')
  await second.vg?.varyOff()
})
