/**
 * T3: every combination of descriptor copy states over VGs of 1, 2 and 3 PVs (2, 3 and 3 copy
 * positions: AIX placement), on real encoded bytes, checked against an independent oracle.
 *
 * History: commits N-2, N-1, N. Each copy position has two slots; after the history one slot
 * holds N and the other N-1. Position states:
 *   current       untouched (N readable)
 *   stale         the N slot zeroed (the commit never reached it)          → N-1 readable
 *   bitflip       one checked bit of the N frame flipped                   → N-1 readable
 *   torn          N frame written only on its first sectors, rest N-2     → N-1 readable
 *   misdirected   the N slot holds another position's N frame             → N-1 readable
 *   zeroed        both slots zeroed                                        → nothing readable
 *   absent        reads of this area fail with EIO                         → nothing readable
 * Oracle (from the reference, written independently of src/lvm/quorum.ts): with T positions
 * and V readable ones, V * 2 <= T is LVM_NOQUORUM; otherwise the adopted seq is N if some
 * position is current, else N-1. After a full (writing) vary-on every reachable copy position
 * holds the adopted copy.
 */
import t from 'tap'
import { vgdaFrameBytes, vgdaSlotOffset, vgsaSlotOffset, type PvLabel } from '../../../src/format/index.js'
import { varyOnVg, type VgDescriptor } from '../../../src/lvm/index.js'
import { readLabel, readVgdaArea } from '../../../src/lvm/metadata-io.js'
import { Pool, makeVg, varyOn } from '../../helpers/lvm-fixture.js'

const STATES = ['current', 'stale', 'bitflip', 'torn', 'misdirected', 'zeroed', 'absent'] as const
type CopyState = typeof STATES[number]

function oracle(states: readonly CopyState[], seqN: number): number | 'noquorum' {
  const readable = states.filter((s) => s !== 'zeroed' && s !== 'absent').length
  if (readable * 2 <= states.length) return 'noquorum'
  return states.includes('current') ? seqN : seqN - 1
}

interface Position { path: string; label: PvLabel; area: 0 | 1; slotN: 0 | 1; frameBytes: number; bodyBytes: number }

async function history(pvCount: number) {
  const pool = new Pool(pvCount)
  await makeVg(pool, 'vg')
  const snapshots: Array<Map<string, Uint8Array>> = []
  const descriptors: VgDescriptor[] = []
  const vg = (await varyOn(pool, 'vg')).vg!
  for (const name of ['a', 'b', 'c']) {
    await vg.lvCreate({ name, lpCount: 1 })
    snapshots.push(pool.snapshot())
    descriptors.push(vg.descriptor)
  }
  await vg.varyOff()
  const d = descriptors[2]!
  const positions: Position[] = []
  for (const c of d.descriptorCopies) {
    const path = d.pvs[c.pvIndex]!.lastPath
    const label = await readLabel(pool.devices.get(path)!)
    const read = await readVgdaArea(pool.devices.get(path)!, label, d.vgId, c.area)
    positions.push({ path, label, area: c.area, slotN: read.best!.slot, bodyBytes: read.best!.header.bodyBytes,
      frameBytes: vgdaFrameBytes(read.best!.header.bodyBytes) })
  }
  return { pool, snapshots, descriptors, positions }
}

/** A deterministic checked byte of a frame (header crc range, body, trailer crc range). */
function checkedByte(p: Position, salt: number): number {
  const trailer = 512 + Math.ceil(p.bodyBytes / 512) * 512
  const ranges: Array<[number, number]> = [[0, 80], [512, 512 + p.bodyBytes], [trailer, trailer + 60]]
  const [a, b] = ranges[salt % 3]!
  return a + ((salt * 7919) % (b - a))
}

function apply(h: Awaited<ReturnType<typeof history>>, states: readonly CopyState[], salt: number): void {
  h.pool.restore(h.snapshots[2]!)
  h.pool.faults.clear()
  states.forEach((state, i) => {
    const p = h.positions[i]!
    const data = h.pool.devices.get(p.path)!.data
    const slotN = vgdaSlotOffset(p.label, p.area, p.slotN)
    const other = vgdaSlotOffset(p.label, p.area, 1 - p.slotN)
    const slotBytes = p.label.vgdaSlotBytes
    if (state === 'stale') data.fill(0, slotN, slotN + slotBytes)
    if (state === 'bitflip') data[slotN + checkedByte(p, salt + i)]! ^= 1 << ((salt + i) % 8)
    if (state === 'torn') {
      const old = h.snapshots[0]!.get(p.path)!
      data.set(old.subarray(slotN + 1024, slotN + p.frameBytes), slotN + 1024)
    }
    if (state === 'misdirected') {
      const q = h.positions[(i + 1) % h.positions.length]!
      const src = h.snapshots[2]!.get(q.path)!
      const from = vgdaSlotOffset(q.label, q.area, q.slotN)
      data.set(src.subarray(from, from + q.frameBytes), slotN)
    }
    if (state === 'zeroed') {
      data.fill(0, slotN, slotN + slotBytes)
      data.fill(0, other, other + slotBytes)
    }
    if (state === 'absent') {
      const ranges: Array<readonly [number, number]> = [
        [vgdaSlotOffset(p.label, p.area, 0), vgdaSlotOffset(p.label, p.area, 1) + slotBytes],
        [vgsaSlotOffset(p.label, p.area, 0), vgsaSlotOffset(p.label, p.area, 1) + p.label.vgsaSlotBytes]]
      const previous = h.pool.faults.get(p.path)
      h.pool.faults.set(p.path, (device) => {
        previous?.(device)
        device.readErrorRanges.push(...ranges)
      })
    }
  })
}

function* vectors(length: number): Generator<CopyState[]> {
  const total = STATES.length ** length
  for (let n = 0; n < total; n++) {
    const v: CopyState[] = []
    let x = n
    for (let i = 0; i < length; i++) {
      v.push(STATES[x % STATES.length]!)
      x = Math.floor(x / STATES.length)
    }
    yield v
  }
}

for (const pvCount of [1, 2, 3]) {
  void t.test(`${pvCount} PV(s): every copy-state vector agrees with the oracle`, async (t) => {
    const h = await history(pvCount)
    const seqN = h.descriptors[2]!.seq
    let checked = 0
    let mismatches = 0
    let salt = 0
    for (const states of vectors(h.positions.length)) {
      salt++
      apply(h, states, salt)
      const expected = oracle(states, seqN)
      const ro = await varyOnVg({ vgId: h.descriptors[2]!.vgId, devices: h.pool.paths, opener: h.pool.opener,
        readOnly: true,
        flags: { misspvVon: true, missnameVon: true } })
      const got = ro.rc === 'LVM_NOQUORUM' ? 'noquorum' : ro.descriptor?.seq
      if (got !== expected) {
        mismatches++
        if (mismatches < 5) t.fail(`[${states.join(',')}] expected ${expected}, got ${got} (${ro.rc})`)
        continue
      }
      if (expected !== 'noquorum') {
        const want = h.descriptors[expected === seqN ? 2 : 1]!
        if (JSON.stringify(ro.descriptor!.lvs) !== JSON.stringify(want.lvs)) {
          mismatches++
          t.fail(`[${states.join(',')}] adopted seq ${expected} with other content`)
        }
      }
      checked++
    }
    t.equal(mismatches, 0, `${checked} vectors agree`)
    t.equal(checked, STATES.length ** h.positions.length)
  })
}

void t.test('a writing vary-on leaves every reachable copy current (2 PVs, every vector with quorum)', async (t) => {
  const h = await history(2)
  let rounds = 0
  for (const states of vectors(h.positions.length)) {
    const expected = oracle(states, h.descriptors[2]!.seq)
    if (expected === 'noquorum') continue
    apply(h, states, rounds)
    const result = await varyOnVg({ vgName: 'vg', devices: h.pool.paths, opener: h.pool.opener,
      flags: { misspvVon: true, missnameVon: true } })
    if (result.vg === undefined) {
      t.fail(`[${states.join(',')}] ${result.rc}`)
      continue
    }
    const adopted = result.vg.descriptor
    await result.vg.varyOff()
    h.pool.faults.clear()
    for (const p of h.positions) {
      const read = await readVgdaArea(h.pool.devices.get(p.path)!, p.label, adopted.vgId, p.area)
      if (read.best?.header.seq !== adopted.seq) t.fail(`[${states.join(',')}] ${p.path}:${p.area} not rewritten`)
    }
    rounds++
  }
  t.ok(rounds > 100, `${rounds} vectors recovered`)
})
