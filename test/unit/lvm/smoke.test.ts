import t from 'tap'
import { Pool, makeVg, varyOn } from '../../helpers/lvm-fixture.js'

void t.test('create a VG, an LV, vary off and on again', async (t) => {
  const pool = new Pool(3)
  const d = await makeVg(pool, 'vg0')
  t.equal(d.pvs.length, 3)
  t.equal(d.descriptorCopies.length, 3)
  const first = await varyOn(pool, 'vg0')
  t.equal(first.rc, 'LVM_SUCCESS', first.error?.message ?? '')
  const vg = first.vg!
  const lv = await vg.lvCreate({ name: 'data', lpCount: 5, copies: 2 })
  t.equal(lv.lps.length, 5)
  t.not(lv.lps[0]![0]!.pvIndex, lv.lps[0]![1]!.pvIndex)
  await vg.markStale([{ pvIndex: 1, pp: 0 }])
  await vg.varyOff()
  const again = await varyOn(pool, 'vg0')
  t.equal(again.rc, 'LVM_SUCCESS', again.error?.message ?? '')
  t.equal(again.vg!.lvByName('data')!.lps.length, 5)
  t.same(again.vg!.descriptor.lvs[0]!.lps, lv.lps)
  await again.vg!.varyOff()
})
