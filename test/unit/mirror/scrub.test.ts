/**
 * Scrub (reliability T8): corrupt 1 KiB of one copy directly in its PV file; scrub reports
 * exactly the regions the corruption spans; repair takes the majority with 3 copies and the
 * primary with 2; a second scrub reports 0; repairing a consistent LV writes 0 bytes.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { FakeVg, createFakeVg, patchCopy, readCopy } from '../../helpers/mirror-fake-vg.js'
import { MirrorEngine, repairWinner } from '../../../src/mirror/index.js'

const PP = 1024 * 1024
const LTG = 256 * 1024

async function setup(t: Test, copies: 2 | 3): Promise<{ vg: FakeVg, engine: MirrorEngine, dir: string, data: Buffer }> {
  const dir = t.testdir()
  createFakeVg(dir, { pvCount: 3, ppSizeBytes: PP, ppsPerPv: 8 })
  const vg = await FakeVg.open(dir)
  t.teardown(() => vg.varyOff())
  await vg.lvCreate({ name: 'lv0', lpCount: 3, copies })
  const engine = await MirrorEngine.start(vg, { ltgBytesMax: LTG })
  const lv = engine.open('lv0')
  const data = randomBytes(3 * PP)
  await lv.write(data, 0)
  await lv.close()
  return { vg, engine, dir, data }
}

void t.test('repairWinner: majority of three, else the preferred copy', async (t) => {
  t.same(repairWinner([[0, 2], [1]], 0), [0, 2])
  t.same(repairWinner([[1, 2], [0]], 0), [1, 2], 'the majority beats the primary')
  t.same(repairWinner([[0], [1]], 0), [0], 'two copies: the primary wins')
  t.same(repairWinner([[0], [1], [2]], 1), [1], 'three different: the preferred copy wins')
})

void t.test('3 copies: a corrupted span is reported per region and repaired from the majority', async (t) => {
  const { vg, engine, dir, data } = await setup(t, 3)
  const repairBefore = await engine.scrub('lv0', { repair: true })
  t.equal(repairBefore.repairedBytes, 0, 'repair on a consistent LV writes 0 bytes')
  t.equal(repairBefore.regionsChecked, 12)
  // 1 KiB straddling the boundary between regions 5 and 6, in copy 0 (the primary).
  patchCopy(dir, vg, 'lv0', 0, 6 * LTG - 512, randomBytes(1024))
  const check = await engine.scrub('lv0')
  t.same(check.mismatches.map((m) => m.lvOffsetBytes), [5 * LTG, 6 * LTG], 'exactly the two regions spanned')
  t.same(check.mismatches[0]!.groups, [[1, 2], [0]])
  t.notOk(readCopy(dir, vg, 'lv0', 0).equals(data), 'a check does not repair')
  const repaired = await engine.scrub('lv0', { repair: true })
  t.equal(repaired.mismatches[0]!.repairedFrom, 1, 'the majority content (copies 1 and 2) wins over the primary')
  t.same(repaired.mismatches[0]!.repairedCopies, [0])
  for (const copy of [0, 1, 2]) t.ok(readCopy(dir, vg, 'lv0', copy).equals(data), `copy ${copy} restored`)
  t.equal((await engine.scrub('lv0')).mismatches.length, 0, 'a second check reports 0')
})

void t.test('2 copies: the primary wins', async (t) => {
  const { vg, engine, dir, data } = await setup(t, 2)
  const garbage = randomBytes(1024)
  patchCopy(dir, vg, 'lv0', 1, PP + 4096, garbage)
  const repaired = await engine.scrub('lv0', { repair: true })
  t.equal(repaired.mismatches.length, 1)
  t.equal(repaired.mismatches[0]!.repairedFrom, 0)
  t.ok(readCopy(dir, vg, 'lv0', 1).equals(data), 'copy 1 rewritten from the primary')
  t.equal((await engine.scrub('lv0')).mismatches.length, 0)
})
