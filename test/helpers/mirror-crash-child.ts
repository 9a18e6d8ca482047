/**
 * Child process for the mirror crash tests; the parent kills it with SIGKILL at random points.
 *
 *   node --import tsx mirror-crash-child.ts write  <dir> <journal> <seed>
 *     Random 4-64 KiB writes of stamped 4 KiB blocks to lv0, a flush every few writes; after
 *     each flush resolves it appends the acknowledged (block, seq) pairs to <journal> (fsynced)
 *     and prints "ack <count>".
 *   node --import tsx mirror-crash-child.ts resync <dir> <checkpointEveryRegions>
 *     Runs resynclv(lv0, force=false), printing "done <doneBytes> <copiedBytes>" per region.
 *   node --import tsx mirror-crash-child.ts resync-write <dir> <journal> <seed> <checkpointEveryRegions>
 *     The resync above (rate-limited to 64 MiB/s) with the stamped writer running on the same LV.
 *
 * Block stamp (4 KiB): u32 block index, u32 seq, filler from seq, u32 crc32c of the rest at the
 * end. A block whose crc fails is torn; an all-zero block was never written.
 */
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs'
import { FakeVg } from './mirror-fake-vg.js'
import { MirrorEngine } from '../../src/mirror/index.js'

import { BLOCK_BYTES, stampBlock } from './block-stamps.js'
export { BLOCK_BYTES, readStamp, stampBlock } from './block-stamps.js'

async function writer(dir: string, journalPath: string, seed: number): Promise<void> {
  const vg = await FakeVg.open(dir)
  const engine = await MirrorEngine.start(vg, { ltgBytesMax: 256 * 1024, mwcCacheLtgs: 8 })
  // Copy 1 lags copy 0 by a millisecond, so kills often land between the two copy writes.
  vg.faulty[1]!.latencyMs = 1
  await writeLoop(engine, journalPath, seed, () => false)
}

/** Stamped random writes with an ack journal until `stop()` says so. */
async function writeLoop(engine: MirrorEngine, journalPath: string, seed: number, stop: () => boolean): Promise<void> {
  const lv = engine.open('lv0')
  const blocks = lv.sizeBytes / BLOCK_BYTES
  const journal = openSync(journalPath, 'a')
  let state = seed >>> 0
  const random = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return state / 2 ** 32
  }
  // Each run gets its own seq range (the parent passes the run number), so seqs only grow.
  let seq = seed * 1_000_000
  let pending: Array<[number, number]> = []
  let acked = 0
  while (!stop()) {
    const count = 1 + Math.floor(random() * 16)
    const first = Math.floor(random() * (blocks - count))
    const buffer = Buffer.alloc(count * BLOCK_BYTES)
    seq += 1
    for (let index = 0; index < count; index++) {
      stampBlock(buffer.subarray(index * BLOCK_BYTES, (index + 1) * BLOCK_BYTES), first + index, seq)
      pending.push([first + index, seq])
    }
    await lv.write(buffer, first * BLOCK_BYTES)
    if (random() < 0.25) {
      await lv.flush()
      writeSync(journal, pending.map(([index, value]) => `${index} ${value}\n`).join(''))
      fsyncSync(journal)
      acked += pending.length
      pending = []
      process.stdout.write(`ack ${acked}\n`)
    }
  }
  closeSync(journal)
  await lv.close()
}

/** resynclv with a stamped writer running against the same LV (online resync). */
async function resyncWhileWriting(dir: string, journalPath: string, seed: number, interval: number): Promise<void> {
  const vg = await FakeVg.open(dir)
  const engine = await MirrorEngine.start(vg, { ltgBytesMax: 256 * 1024, mwcCacheLtgs: 16 })
  let finished = false
  const writing = writeLoop(engine, journalPath, seed, () => finished)
  await engine.resyncer({ checkpointEveryRegions: interval, rateBytesPerSecond: 16 * 1024 * 1024,
    onProgress: (progress) => { process.stdout.write(`done ${progress.doneBytes} ${progress.copiedBytes}\n`) },
  }).resynclv('lv0', false)
  finished = true
  await writing
  process.stdout.write('finished\n')
  await engine.stop()
  await vg.varyOff()
}

async function resync(dir: string, checkpointEveryRegions: number): Promise<void> {
  const vg = await FakeVg.open(dir)
  const engine = await MirrorEngine.start(vg, { ltgBytesMax: 256 * 1024 })
  // Rate-limited so the parent's kill lands while the copy is still running.
  await engine.resyncer({ checkpointEveryRegions, rateBytesPerSecond: 16 * 1024 * 1024, onProgress: (progress) => {
    process.stdout.write(`done ${progress.doneBytes} ${progress.copiedBytes}\n`)
  } }).resynclv('lv0', false)
  process.stdout.write('finished\n')
  await engine.stop()
  await vg.varyOff()
}

const [mode, dir, arg1, arg2, arg3] = process.argv.slice(2)
if (mode === 'write') await writer(dir!, arg1!, Number(arg2))
else if (mode === 'resync') await resync(dir!, Number(arg1))
else if (mode === 'resync-write') await resyncWhileWriting(dir!, arg1!, Number(arg2), Number(arg3))
