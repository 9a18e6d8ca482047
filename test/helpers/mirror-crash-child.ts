/**
 * Child process for the mirror crash tests; the parent kills it with SIGKILL at random points.
 *
 *   node --import tsx mirror-crash-child.ts write  <dir> <journal> <seed>
 *     Random 4-64 KiB writes of stamped 4 KiB blocks to lv0, a flush every few writes; after
 *     each flush resolves it appends the acknowledged (block, seq) pairs to <journal> (fsynced)
 *     and prints "ack <count>".
 *   node --import tsx mirror-crash-child.ts resync <dir> <checkpointEveryRegions>
 *     Runs resynclv(lv0, force=false), printing "done <doneBytes> <copiedBytes>" per region.
 *
 * Block stamp (4 KiB): u32 block index, u32 seq, filler from seq, u32 crc32c of the rest at the
 * end. A block whose crc fails is torn; an all-zero block was never written.
 */
import { crc32c } from '@node-rs/crc32'
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs'
import { FakeVg } from './mirror-fake-vg.js'
import { MirrorEngine } from '../../src/mirror/index.js'

export const BLOCK_BYTES = 4096

export function stampBlock(block: Buffer, index: number, seq: number): void {
  block.writeUInt32LE(index, 0)
  block.writeUInt32LE(seq, 4)
  for (let at = 8; at < BLOCK_BYTES - 4; at += 4) block.writeUInt32LE((seq * 2654435761 + at) >>> 0, at)
  block.writeUInt32LE(crc32c(block.subarray(0, BLOCK_BYTES - 4)) >>> 0, BLOCK_BYTES - 4)
}

/** undefined for a never-written block; null for a torn one; else the stamp. */
export function readStamp(block: Buffer): { index: number, seq: number } | null | undefined {
  if (block.every((byte) => byte === 0)) return undefined
  const crc = crc32c(block.subarray(0, BLOCK_BYTES - 4)) >>> 0
  if (crc !== block.readUInt32LE(BLOCK_BYTES - 4)) return null
  return { index: block.readUInt32LE(0), seq: block.readUInt32LE(4) }
}

async function writer(dir: string, journalPath: string, seed: number): Promise<void> {
  const vg = await FakeVg.open(dir)
  const engine = await MirrorEngine.start(vg, { ltgBytesMax: 256 * 1024, mwcCacheLtgs: 8 })
  // Copy 1 lags copy 0 by a millisecond, so kills often land between the two copy writes.
  vg.faulty[1]!.latencyMs = 1
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
  for (;;) {
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
}

async function resync(dir: string, checkpointEveryRegions: number): Promise<void> {
  const vg = await FakeVg.open(dir)
  const engine = await MirrorEngine.start(vg, { ltgBytesMax: 256 * 1024 })
  await engine.resyncer({ checkpointEveryRegions, onProgress: (progress) => {
    process.stdout.write(`done ${progress.doneBytes} ${progress.copiedBytes}\n`)
  } }).resynclv('lv0', false)
  process.stdout.write('finished\n')
  await engine.stop()
  await vg.varyOff()
}

const [mode, dir, arg1, arg2] = process.argv.slice(2)
if (mode === 'write') await writer(dir!, arg1!, Number(arg2))
else if (mode === 'resync') await resync(dir!, Number(arg1))
