// Thin pool faults and costs: corrupt metadata is detected and named, a full pool fails writes
// with ENOSPC and resumes once grown, a full metadata area refuses changes before they start,
// a torn newest superblock opens the commit before it, a snapshot writes O(1) blocks, and the
// first write into a shared block copies at most that block.
import t from 'tap'
import { ThinPool, thinCheck } from '../../../src/thin/index.js'
import { LvmfsError, isLvmfsError } from '../../../src/errors/index.js'
import { MemoryPoolDevice } from '../../helpers/memory-pool-device.js'

const CHUNK = 64 * 1024
const META = 256 * 4096

async function pool(dataBlocks: number, metadataBytes = META): Promise<{ disk: MemoryPoolDevice, pool: ThinPool }> {
  const disk = new MemoryPoolDevice(metadataBytes + dataBlocks * CHUNK)
  return { disk, pool: await ThinPool.format(disk, { chunkBytes: CHUNK, metadataBytes }) }
}

const filled = (length: number, byte: number): Uint8Array => new Uint8Array(length).fill(byte)

t.test('a corrupt node is reported by thin-check and refused by open, naming its block', async (t) => {
  const { disk, pool: p } = await pool(64)
  const thin = await p.createThin(64 * CHUNK)
  for (let b = 0; b < 8; b++) await p.write(thin, filled(4096, b + 1), b * CHUNK)
  await p.commit()
  t.same((await thinCheck(disk)).problems, [], 'clean before the damage')
  // The only leaf is the root here (one level); find it through the report's walk.
  const leaf = (await ThinPool.open(disk)).status()
  t.equal(leaf.devices[0]!.mappedBlocks, 8)
  let damaged = -1
  for (let block = 2; block < META / 4096; block++) {
    const at = block * 4096
    if (String.fromCharCode(...disk.durable.subarray(at, at + 4)) === 'TNOD' && disk.durable[at + 28] === 2) damaged = block
  }
  t.ok(damaged > 1, 'a leaf block exists')
  const live = new Uint8Array(1)
  await disk.read(live, damaged * 4096 + 100)
  await disk.write(Uint8Array.of(live[0]! ^ 0x40), damaged * 4096 + 100)
  await disk.flush()
  const report = await thinCheck(disk)
  const named = report.problems.filter((p) => p.block === damaged)
  t.equal(named.length, 1, 'one problem names the damaged block')
  t.match(named[0]?.message, /checksum/)
  t.ok(report.problems.some((p) => /8 mapped blocks, the tree maps 0/.test(p.message)), 'and the mappings it lost')
  const error = await ThinPool.open(disk).catch((e: unknown) => e)
  t.ok(isLvmfsError(error, 'THIN_CORRUPT'), 'open refuses it')
  t.equal((error as LvmfsError).context['block'], damaged)
})

t.test('a full pool fails new blocks with THIN_POOL_FULL, keeps serving mapped ones, and resumes when grown', async (t) => {
  const disk = new MemoryPoolDevice(META + 8 * CHUNK)
  let p = await ThinPool.format(disk, { chunkBytes: CHUNK, metadataBytes: META })
  const thin = await p.createThin(32 * CHUNK)
  for (let b = 0; b < 8; b++) await p.write(thin, filled(CHUNK, b + 1), b * CHUNK)
  const error = await p.write(thin, filled(512, 9), 8 * CHUNK).catch((e: unknown) => e)
  t.ok(isLvmfsError(error, 'THIN_POOL_FULL'), 'the ninth block does not fit')
  t.equal((error as LvmfsError).errno, 28, 'ENOSPC')
  await p.write(thin, filled(512, 0xee), 3 * CHUNK)
  await p.commit()
  t.same((await thinCheck(disk)).problems, [])
  // Grow the device under the pool, as lvextend does for the pool LV.
  const bigger = new MemoryPoolDevice(META + 16 * CHUNK)
  await bigger.write(disk.durable, 0)
  await bigger.flush()
  p = await ThinPool.open(bigger)
  t.equal(await p.grow(), 16, 'sixteen data blocks after growing')
  await p.write(thin, filled(512, 9), 8 * CHUNK)
  const back = new Uint8Array(CHUNK)
  await p.read(thin, back, 8 * CHUNK)
  t.equal(back[0], 9)
  t.equal(back[512], 0, 'the rest of a new block reads zero')
  await p.read(thin, back, 3 * CHUNK)
  t.equal(back[0], 0xee)
  t.equal(back[600], 4)
  await p.commit()
  t.same((await thinCheck(bigger)).problems, [])
})

t.test('a full metadata area refuses the change before it starts and the pool stays consistent', async (t) => {
  const { disk, pool: p } = await pool(4096, 40 * 4096)
  const thin = await p.createThin(4096 * CHUNK)
  let refused: unknown
  // Blocks far apart need a leaf each: 34 usable blocks run out quickly.
  for (let b = 0; b < 4096 && refused === undefined; b += 508) {
    await p.write(thin, filled(512, 1), b * CHUNK).catch((e: unknown) => { refused = e })
  }
  for (let s = 0; s < 40 && refused === undefined; s++) {
    const snap = await p.snapshot(thin)
    await p.write(snap, filled(512, 2), 0).catch((e: unknown) => { refused = e })
  }
  t.ok(isLvmfsError(refused, 'THIN_METADATA_FULL'), `refused with THIN_METADATA_FULL (${String(refused)})`)
  await p.commit()
  t.same((await thinCheck(disk)).problems, [], 'thin-check is clean')
  const reopened = await ThinPool.open(disk)
  const back = new Uint8Array(512)
  await reopened.read(thin, back, 0)
  t.equal(back[0], 1, 'data written before the refusal is there')
})

t.test('a torn newest superblock opens the commit before it', async (t) => {
  const { disk, pool: p } = await pool(16)
  const thin = await p.createThin(16 * CHUNK)
  await p.write(thin, filled(4096, 1), 0)
  await p.commit()
  const before = p.status().transaction
  await p.write(thin, filled(4096, 2), CHUNK)
  await p.commit()
  const slot = p.status().transaction % 2 === 0 ? 1 : 0
  // Tear the slot the last commit wrote (commits alternate slots, transaction 1 is slot 0).
  const newest = (await ThinPool.open(disk)).status().transaction
  t.equal(newest, before + 1)
  const torn = disk.durable.slice(slot * 4096, slot * 4096 + 4096)
  torn[2000] = torn[2000]! ^ 1
  await disk.write(torn, slot * 4096)
  await disk.flush()
  const reopened = await ThinPool.open(disk)
  t.equal(reopened.status().transaction, before, 'the previous commit')
  const back = new Uint8Array(4096)
  await reopened.read(thin, back, 0)
  t.equal(back[0], 1, 'its data is there')
  await reopened.read(thin, back, CHUNK)
  t.equal(back[0], 0, 'the torn commit\'s mapping is not')
})

t.test('a snapshot writes a constant number of blocks; a first write into a shared block copies one block', async (t) => {
  const { disk, pool: p } = await pool(2048, 1024 * 4096)
  const thin = await p.createThin(2048 * CHUNK)
  for (let b = 0; b < 1000; b++) await p.write(thin, filled(CHUNK, (b % 250) + 1), b * CHUNK)
  await p.commit()
  const writes = disk.writes
  const snap = await p.snapshot(thin)
  t.ok(disk.writes - writes <= 3, `snapshot of 1000 mapped blocks wrote ${disk.writes - writes} blocks (device table, superblock)`)
  const dataBefore = p.status().dataUsedBlocks
  const writesBefore = disk.writes
  await p.write(thin, filled(4096, 0xab), 5 * CHUNK + 4096)
  t.equal(disk.writes - writesBefore, 1, 'one data write of one block')
  t.equal(p.status().dataUsedBlocks, dataBefore + 1, 'one new data block')
  await p.write(thin, filled(CHUNK, 0xcd), 6 * CHUNK)
  t.equal(p.status().dataUsedBlocks, dataBefore + 2, 'a whole-block write takes one block and copies nothing')
  const back = new Uint8Array(CHUNK)
  await p.read(snap, back, 5 * CHUNK)
  t.ok(back.every((v) => v === 6), 'the snapshot keeps the point-in-time block')
  await p.read(thin, back, 5 * CHUNK)
  t.equal(back[0], 6, 'the origin keeps the unwritten part of its block')
  t.equal(back[4096], 0xab, 'and has its write')
  await p.commit()
  const report = await thinCheck(disk)
  t.same(report.problems, [])
  t.equal(report.sharedBlocks, 998, 'every other block is still shared')
  await p.deleteThin(snap)
  t.equal(p.status().dataUsedBlocks, 1000, 'deleting the snapshot frees the blocks only it used')
})
