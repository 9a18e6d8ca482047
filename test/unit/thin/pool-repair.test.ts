// thin-check --repair: a pool whose leaf was damaged rebuilds into a consistent pool; what the
// damaged node mapped reads zero, everything else (shared snapshot blocks included) is intact,
// and a write into a block the repair left shared does not reach the other device.
import t from 'tap'
import { ThinPool, thinCheck, thinRepair } from '../../../src/thin/index.js'
import { MemoryPoolDevice } from '../../helpers/memory-pool-device.js'

const CHUNK = 64 * 1024
const META = 256 * 4096

t.test('repair rebuilds a pool around a damaged leaf', async (t) => {
  const disk = new MemoryPoolDevice(META + 2048 * CHUNK)
  const pool = await ThinPool.format(disk, { chunkBytes: CHUNK, metadataBytes: META })
  const thin = await pool.createThin(2048 * CHUNK)
  // Two leaves' worth of mappings: blocks 0..9 in the first leaf, 600..609 in the second.
  for (const b of [...Array(10).keys(), ...Array.from({ length: 10 }, (_, i) => 600 + i)]) {
    await pool.write(thin, new Uint8Array(4096).fill((b % 200) + 1), b * CHUNK)
  }
  const snap = await pool.snapshot(thin)
  await pool.write(thin, new Uint8Array(4096).fill(0xee), 3 * CHUNK)
  await pool.commit()
  t.same((await thinCheck(disk)).problems, [], 'clean before the damage')
  // Damage the origin's leaf holding blocks 600..609: find leaves whose entry 92 (600 - 508) is set.
  let damaged = 0
  for (let block = 2; block < META / 4096; block++) {
    const at = block * 4096
    const isLeaf = String.fromCharCode(...disk.durable.subarray(at, at + 4)) === 'TNOD' && disk.durable[at + 28] === 2
    const entry92 = new DataView(disk.durable.buffer, at + 32 + 92 * 8, 4).getUint32(0, true)
    if (isLeaf && entry92 !== 0) {
      damaged = block
      break
    }
  }
  t.ok(damaged > 0, 'found the second leaf')
  const byte = new Uint8Array(1)
  await disk.read(byte, damaged * 4096 + 300)
  await disk.write(Uint8Array.of(byte[0]! ^ 0xff), damaged * 4096 + 300)
  await disk.flush()
  t.ok((await thinCheck(disk)).problems.length > 0, 'thin-check sees the damage')
  const report = await thinRepair(disk)
  t.equal(report.unreadableNodes, 1, 'one node could not be read')
  t.equal(report.devices, 2)
  t.same((await thinCheck(disk)).problems, [], 'clean after repair')
  const repaired = await ThinPool.open(disk)
  const back = new Uint8Array(CHUNK)
  await repaired.read(thin, back, 3 * CHUNK)
  t.equal(back[0], 0xee, 'the origin keeps its own block')
  await repaired.read(snap, back, 3 * CHUNK)
  t.equal(back[0], 4, 'the snapshot keeps its point in time')
  await repaired.read(snap, back, 5 * CHUNK)
  t.equal(back[0], 6, 'a shared block is still there')
  // The damaged leaf was shared by both devices (never shadowed): both lose blocks 600..609.
  await repaired.read(thin, back, 600 * CHUNK)
  t.equal(back[0], 0, 'what the damaged leaf mapped reads zero')
  await repaired.write(thin, new Uint8Array(4096).fill(0x11), 5 * CHUNK)
  await repaired.read(snap, back, 5 * CHUNK)
  t.equal(back[0], 6, 'a write into a block left shared copies it first')
  await repaired.commit()
  t.same((await thinCheck(disk)).problems, [], 'and stays clean')
})
