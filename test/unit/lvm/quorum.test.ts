/**
 * selectCopy() (pure) against an independent oracle on random vectors for 4-8 PVs, with
 * absent/invalid copies, stale copies and forks (two different copies at the newest seq); and
 * the AIX placement rule.
 */
import t from 'tap'
import fc from 'fast-check'
import { isMajority, selectCopy, standardPlacement, type CopyReading } from '../../../src/lvm/index.js'
import { CopySlots, majorityShortfall, requiredSets } from '../../../src/lvm/commit.js'

type Cell = null | { seq: number; crc: number }

/** Written from the reference text: "more than half readable", newest wins, a fork needs a
 * majority holder. */
function oracle(cells: readonly Cell[]): string {
  const valid = cells.filter((c): c is { seq: number; crc: number } => c !== null)
  if (valid.length === 0) return 'novgdas'
  let newest = 0
  for (const c of valid) if (c.seq > newest) newest = c.seq
  const atNewest = valid.filter((c) => c.seq === newest)
  const counts = new Map<number, number>()
  for (const c of atNewest) counts.set(c.crc, (counts.get(c.crc) ?? 0) + 1)
  let crc: number
  if (counts.size === 1) {
    crc = atNewest[0]!.crc
  } else {
    const majority = [...counts].filter(([, n]) => n > cells.length / 2)
    if (majority.length !== 1) return 'fork'
    crc = majority[0]![0]
  }
  return `${newest}:${crc}:${valid.length > cells.length / 2 ? 'quorum' : 'noquorum'}`
}

const cell: fc.Arbitrary<Cell> = fc.oneof(fc.constant(null),
  fc.record({ seq: fc.integer({ min: 8, max: 10 }), crc: fc.constantFrom(1, 2) }))

void t.test('selectCopy() agrees with the oracle on 20,000 random vectors of 4-8 copies', async (t) => {
  let n = 0
  fc.assert(fc.property(fc.array(cell, { minLength: 4, maxLength: 8 }), (cells) => {
    // Copies below the newest seq carry crc 1 only: one history, forks only at the top.
    const readings: CopyReading[] = cells.map((c, i) => ({ pvId: `pv${i}`, area: 0,
      copy: c === null ? null : { seq: c.seq, crc: c.seq === 10 ? c.crc : 1 } }))
    const normalized = readings.map((r) => r.copy)
    const places = cells.map((_, i) => ({ pvId: `pv${i}`, area: 0 }))
    const got = selectCopy(readings, () => places)
    const text = got.kind === 'chosen' ? `${got.seq}:${got.crc}:${got.quorum ? 'quorum' : 'noquorum'}` : got.kind
    n++
    return text === oracle(normalized)
  }), { numRuns: 20_000 })
  t.equal(n, 20_000)
})

void t.test('exactly half is not a quorum', async (t) => {
  t.notOk(isMajority(2, 4))
  t.ok(isMajority(3, 4))
  t.notOk(isMajority(1, 2))
  t.notOk(isMajority(0, 0))
  const readings: CopyReading[] = [0, 1, 2, 3].map((i) => ({ pvId: `pv${i}`, area: 0,
    copy: i < 2 ? { seq: 5, crc: 9 } : null }))
  const got = selectCopy(readings, () => readings.map((r) => ({ pvId: r.pvId, area: 0 })))
  t.equal(got.kind === 'chosen' && got.quorum, false)
})

void t.test('standardPlacement() follows the AIX copies-per-PV rule over PVs not removed', async (t) => {
  const pv = (removed = false) => ({ pvId: 'x'.repeat(32), lastPath: '', ppCount: 1, removed })
  t.same(standardPlacement([pv()]), [{ pvIndex: 0, area: 0 }, { pvIndex: 0, area: 1 }])
  t.same(standardPlacement([pv(), pv()]), [{ pvIndex: 0, area: 0 }, { pvIndex: 0, area: 1 }, { pvIndex: 1, area: 0 }])
  t.same(standardPlacement([pv(), pv(), pv()]).length, 3)
  t.same(standardPlacement([pv(true), pv(), pv(true), pv()]),
    [{ pvIndex: 1, area: 0 }, { pvIndex: 1, area: 1 }, { pvIndex: 3, area: 0 }])
  t.same(standardPlacement([pv(true)]), [])
})

void t.test('commit protocol: joint majority of old and new placement, slots alternate', async (t) => {
  const pvs = (n: number) => Array.from({ length: n }, (_, i) => ({ pvId: `p${i}`, lastPath: `/d${i}`, ppCount: 1,
    removed: false }))
  const vgOf = (n: number) => ({ vgId: 'v', name: 'vg', seq: 1, timestampMs: 0, ppSizeBytes: 1, pvs: pvs(n), lvs: [],
    nextLvId: 1, descriptorCopies: standardPlacement(pvs(n)) })
  const [before, after] = [vgOf(2), vgOf(3)]
  const joint = requiredSets(before, after, false)
  t.same(joint, [['p0:0', 'p0:1', 'p1:0'], ['p0:0', 'p1:0', 'p2:0']], 'both placements must each reach a majority')
  t.same(requiredSets(before, after, true), [joint[1]], 'a forced commit needs only the new placement')
  const why = (count: number, total: number) => `${count}/${total}`
  // p1 and p2 answer: a majority of the new placement but not of the old one (p0 holds 2 of 3).
  t.equal(majorityShortfall(joint, (key) => !key.startsWith('p0'), why), '1/3')
  t.equal(majorityShortfall(joint, (key) => key !== 'p2:0', why), undefined, 'p0 and p1 carry both')
  const slots = new CopySlots(5, 9)
  slots.learn('vgda', 'p0', 0, 0)
  t.equal(slots.nextSlot('vgda', 'p0:0'), 1, 'the slot not holding the current copy')
  t.equal(slots.nextSlot('vgda', 'p1:0'), 0, 'an unknown position starts in slot 0')
  slots.wrote('vgda', ['p0:0'], 6)
  t.equal(slots.nextSlot('vgda', 'p0:0'), 0, 'written positions flip')
  t.equal(slots.descriptorSeqFloor, 6)
  slots.raiseFloors(4, 12)
  t.same([slots.descriptorSeqFloor, slots.statusSeqFloor], [6, 12], 'floors only rise')
})
