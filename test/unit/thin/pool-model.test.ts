// Property test of the thin pool against a model: random writes, discards, snapshots, deletes,
// merges, commits and crashes (a crash keeps a random subset of the unflushed writes). After
// each crash and at the end, every device reads back as the model says — a block holds its
// committed content or a later version written to it, never another device's data — and
// thin-check finds nothing wrong.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { ThinPool, dataStartBytes, thinCheck, type ThinPoolObserver } from '../../../src/thin/index.js'
import { isLvmfsError } from '../../../src/errors/index.js'
import { MemoryPoolDevice } from '../../helpers/memory-pool-device.js'

const CHUNK = 4096
const VIRTUAL_BLOCKS = 24
const DATA_BLOCKS = 40
const METADATA_BYTES = 64 * 4096

type Op =
  | { kind: 'write', device: number, block: number, within: number, length: number }
  | { kind: 'discard', device: number, block: number, blocks: number }
  | { kind: 'snapshot', device: number }
  | { kind: 'delete', device: number }
  | { kind: 'merge', device: number }
  | { kind: 'commit' }
  | { kind: 'crash', seed: number }
  | { kind: 'crash-in-commit', seed: number, power: number }
  | { kind: 'native-write', device: number, block: number, within: number, length: number }
  | { kind: 'native-read', device: number, block: number }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 12, arbitrary: fc.record({ kind: fc.constant('write' as const), device: fc.nat(7), block: fc.nat(VIRTUAL_BLOCKS - 1),
    within: fc.nat(CHUNK - 1), length: fc.integer({ min: 1, max: CHUNK }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('discard' as const), device: fc.nat(7), block: fc.nat(VIRTUAL_BLOCKS - 1),
    blocks: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('snapshot' as const), device: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), device: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('merge' as const), device: fc.nat(7) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'commit' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('crash' as const), seed: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('crash-in-commit' as const), seed: fc.nat(), power: fc.nat(12) }) },
  { weight: 10, arbitrary: fc.record({ kind: fc.constant('native-write' as const), device: fc.nat(7),
    block: fc.nat(VIRTUAL_BLOCKS - 1), within: fc.oneof(fc.constant(0), fc.nat(CHUNK - 1)),
    length: fc.oneof(fc.constant(CHUNK), fc.integer({ min: 1, max: CHUNK })) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('native-read' as const), device: fc.nat(7),
    block: fc.nat(VIRTUAL_BLOCKS - 1) }) },
)

/**
 * What the native data path's block tables would hold: the test plays native code, writing in
 * place wherever the table says writable and reading wherever it knows the block, so a missed
 * or late observer call shows as another LV's data or a lost write.
 */
class NativeTables {
  readonly entries = new Map<string, { dataBlock: number | undefined, writable: boolean }>()
  observer(): ThinPoolObserver {
    return {
      remapped: (thinId, block, mapping, writable) => {
        this.entries.set(`${thinId}:${block}`, { dataBlock: mapping?.dataBlock, writable })
      },
      quiesce: async (thinIds, mode) => {
        for (const [key, entry] of this.entries) {
          if (!thinIds.includes(Number(key.split(':')[0]))) continue
          if (mode === 'forget') this.entries.delete(key)
          else entry.writable = false
        }
      },
      drain: async () => undefined,
    }
  }
}

/** Per device and block: the contents a read may return (committed first, later writes after). */
type Versions = Map<number, Uint8Array[][]>

const zero = new Uint8Array(CHUNK)

function collapse(model: Versions): void {
  for (const blocks of model.values()) for (let b = 0; b < blocks.length; b++) blocks[b] = [blocks[b]!.at(-1)!]
}

function seeded(seed: number): () => number {
  let x = seed | 1
  return () => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    return (x >>> 0) / 2 ** 32
  }
}

async function verify(t: Test, pool: ThinPool, model: Versions, where: string): Promise<boolean> {
  for (const [thinId, blocks] of model) {
    for (let b = 0; b < VIRTUAL_BLOCKS; b++) {
      const got = new Uint8Array(CHUNK)
      await pool.read(thinId, got, b * CHUNK)
      const match = blocks[b]!.find((candidate) => Buffer.compare(candidate, got) === 0)
      if (match === undefined) {
        t.fail(`${where}: device ${thinId} block ${b} holds none of its ${blocks[b]!.length} allowed versions`)
        return false
      }
      blocks[b] = [match]
    }
  }
  return true
}

t.test('thin pool matches its model through snapshots, discards, pool-full and crashes', async (t) => {
  let runs = 0
  await fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 60 }), async (ops) => {
    runs++
    const disk = new MemoryPoolDevice(METADATA_BYTES + DATA_BLOCKS * CHUNK)
    let pool = await ThinPool.format(disk, { chunkBytes: CHUNK, metadataBytes: METADATA_BYTES })
    let tables = new NativeTables()
    pool.observer = tables.observer()
    const dataStart = dataStartBytes(pool.format)
    const model: Versions = new Map()
    const origins = new Map<number, number>()
    const first = await pool.createThin(VIRTUAL_BLOCKS * CHUNK)
    model.set(first, Array.from({ length: VIRTUAL_BLOCKS }, () => [zero]))
    let stamp = 0
    const pick = (n: number): number => [...model.keys()][n % model.size]!
    for (const op of ops) {
      if (op.kind === 'commit') {
        await pool.commit()
        collapse(model)
      } else if (op.kind === 'crash') {
        disk.crash(seeded(op.seed))
        pool = await ThinPool.open(disk)
        tables = new NativeTables()
        pool.observer = tables.observer()
        if (!await verify(t, pool, model, `after crash ${op.seed}`)) return false
      } else if (op.kind === 'crash-in-commit') {
        disk.powerLeft = op.power
        await pool.commit().catch(() => undefined)
        disk.crash(seeded(op.seed))
        pool = await ThinPool.open(disk)
        tables = new NativeTables()
        pool.observer = tables.observer()
        if (!await verify(t, pool, model, `after a crash ${op.power} I/Os into a commit`)) return false
      } else if (model.size === 0) {
        continue
      } else if (op.kind === 'write') {
        const thinId = pick(op.device)
        const length = Math.min(op.length, CHUNK - op.within)
        const data = new Uint8Array(length).fill(++stamp % 255 + 1)
        try {
          await pool.write(thinId, data, op.block * CHUNK + op.within)
        } catch (error) {
          if (!isLvmfsError(error, 'THIN_POOL_FULL')) throw error
          continue
        }
        const versions = model.get(thinId)![op.block]!
        const next = Uint8Array.from(versions.at(-1)!)
        next.set(data, op.within)
        versions.push(next)
      } else if (op.kind === 'native-write') {
        const thinId = pick(op.device)
        const length = Math.min(op.length, CHUNK - op.within)
        const data = new Uint8Array(length).fill(++stamp % 255 + 1)
        const key = `${thinId}:${op.block}`
        if (tables.entries.get(key)?.writable !== true) {
          try {
            await pool.provision(thinId, op.block, 1, () => length === CHUNK)
          } catch (error) {
            if (!isLvmfsError(error, 'THIN_POOL_FULL')) throw error
            continue
          }
        }
        const entry = tables.entries.get(key)
        if (entry?.writable !== true || entry.dataBlock === undefined) {
          t.fail(`provision of device ${thinId} block ${op.block} published no writable entry`)
          return false
        }
        await disk.write(data, dataStart + entry.dataBlock * CHUNK + op.within)
        const versions = model.get(thinId)![op.block]!
        const next = Uint8Array.from(versions.at(-1)!)
        next.set(data, op.within)
        versions.push(next)
      } else if (op.kind === 'native-read') {
        const thinId = pick(op.device)
        const key = `${thinId}:${op.block}`
        if (!tables.entries.has(key)) await pool.publish(thinId, op.block)
        const entry = tables.entries.get(key)!
        const got = new Uint8Array(CHUNK)
        if (entry.dataBlock !== undefined) await disk.read(got, dataStart + entry.dataBlock * CHUNK)
        if (Buffer.compare(got, model.get(thinId)![op.block]!.at(-1)!) !== 0) {
          t.fail(`a native read of device ${thinId} block ${op.block} through its table returned other data`)
          return false
        }
      } else if (op.kind === 'discard') {
        const thinId = pick(op.device)
        const blocks = Math.min(op.blocks, VIRTUAL_BLOCKS - op.block)
        await pool.discard(thinId, op.block * CHUNK, blocks * CHUNK)
        for (let b = op.block; b < op.block + blocks; b++) model.get(thinId)![b]!.push(zero)
      } else if (op.kind === 'snapshot') {
        const origin = pick(op.device)
        const snap = await pool.snapshot(origin)
        collapse(model)
        model.set(snap, model.get(origin)!.map((versions) => [...versions]))
        origins.set(snap, origin)
      } else if (op.kind === 'delete') {
        const thinId = pick(op.device)
        await pool.deleteThin(thinId)
        collapse(model)
        model.delete(thinId)
      } else if (op.kind === 'merge') {
        const snap = pick(op.device)
        const origin = origins.get(snap)
        if (origin === undefined || !model.has(origin)) continue
        await pool.merge(snap, origin)
        collapse(model)
        model.set(origin, model.get(snap)!)
        model.delete(snap)
        origins.delete(snap)
      }
    }
    if (!await verify(t, pool, model, 'at the end')) return false
    await pool.commit()
    const report = await thinCheck(disk)
    if (report.problems.length > 0) {
      t.fail(`thin-check: ${report.problems.map((p) => p.message).join('; ')}`)
      return false
    }
    const reopened = await ThinPool.open(disk)
    const before = pool.status()
    const after = reopened.status()
    if (before.dataUsedBlocks !== after.dataUsedBlocks || before.metadataUsedBlocks !== after.metadataUsedBlocks) {
      t.fail(`derived counts differ after reopen: data ${before.dataUsedBlocks} vs ${after.dataUsedBlocks}, metadata ${before.metadataUsedBlocks} vs ${after.metadataUsedBlocks}`)
      return false
    }
    return true
  }), { numRuns: 400 })
  t.equal(runs >= 400, true, 'every generated history ran')
})
