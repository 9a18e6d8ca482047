/**
 * One thin pool: thin devices over shared data blocks, with crash-safe, lazily committed
 * metadata (docs/thin.md). Data is written before the mapping that points at it, and a mapping
 * reaches the disk only with a commit (on fsync of a thin LV, or by the owner's timer): a crash
 * opens to the last commit, which is consistent.
 *
 * Sharing is detected as dm-thin does: a mapping made before its device's last snapshot time may
 * be shared, so the first write into it goes to a new block (copying the old one unless the
 * write covers the whole block); a mapping made since then belongs to this device alone and is
 * written in place.
 */
import { LvmfsError } from '../errors/index.js'
import {
  THIN_BLOCK_BYTES, THIN_DEVICES_PER_BLOCK, THIN_SUPERBLOCK_SLOTS, decodeThinDevices, decodeThinSuperblock,
  encodeThinDevices, encodeThinSuperblock, thinCorrupt, thinLevelsFor, type ThinDevice, type ThinSuperblock,
} from '../format/index.js'
import { KeyedMutex } from '../util/index.js'
import { forEachMapping, lookupMapping, nodeKindAt, setMapping, type Mapping } from './mapping-tree.js'
import { NodeStore } from './node-store.js'
import type { PoolDevice } from './pool-device.js'
import { SpaceMap } from './space-map.js'

export const DEFAULT_CHUNK_BYTES = 64 * 1024
export const MIN_CHUNK_BYTES = 64 * 1024
export const MAX_CHUNK_BYTES = 1024 * 1024 * 1024
/** Metadata blocks kept free for deletes, device table and commit (never used by a write). */
const METADATA_RESERVE = 16

interface DeviceState {
  thinId: number
  levels: number
  virtualBlocks: number
  root: number
  snapshottedTime: number
  mappedBlocks: number
}

/**
 * Who else reads the pool's mappings: the native data path's per-LV block tables. Every hook
 * runs under the pool's lock, so no other change interleaves.
 */
export interface ThinPoolObserver {
  /** A device's block was (re)mapped or unmapped; `writable`: it may now be written in place. */
  remapped(thinId: number, block: number, mapping: Mapping | undefined, writable: boolean): void
  /**
   * Before a snapshot shares a device's blocks ('share': stop writing them in place) or its
   * mapping is replaced or dropped ('forget': forget every entry); resolves once the I/O
   * already admitted under the old entries is done.
   */
  quiesce(thinIds: readonly number[], mode: 'share' | 'forget'): Promise<void>
  /** Before blocks freed in this transaction become reusable: admitted I/O drains. */
  drain(): Promise<void>
}

const NO_OBSERVER: ThinPoolObserver = {
  remapped: () => undefined, quiesce: async () => undefined, drain: async () => undefined,
}

export interface ThinPoolFormat {
  readonly chunkBytes: number
  readonly metadataBytes: number
}

export interface ThinPoolStatus {
  readonly transaction: number
  readonly chunkBytes: number
  readonly dataBlocks: number
  readonly dataUsedBlocks: number
  readonly metadataBlocks: number
  readonly metadataUsedBlocks: number
  readonly poolTime: number
  readonly uncommitted: boolean
  readonly devices: ReadonlyArray<{ thinId: number, virtualBlocks: number, mappedBlocks: number }>
}

/** Where the data area starts: after the metadata, on a chunk boundary. */
export function dataStartBytes(format: ThinPoolFormat): number {
  return Math.ceil(format.metadataBytes / format.chunkBytes) * format.chunkBytes
}

export function dataBlocksOf(deviceBytes: number, format: ThinPoolFormat): number {
  return Math.max(0, Math.floor((deviceBytes - dataStartBytes(format)) / format.chunkBytes))
}

function toState(device: ThinDevice): DeviceState {
  return { ...device }
}

async function readSuperblocks(device: PoolDevice): Promise<Array<ThinSuperblock | LvmfsError>> {
  const slots: Array<ThinSuperblock | LvmfsError> = []
  for (let slot = 0; slot < THIN_SUPERBLOCK_SLOTS; slot++) {
    const bytes = new Uint8Array(THIN_BLOCK_BYTES)
    await device.read(bytes, slot * THIN_BLOCK_BYTES)
    slots.push(decodeThinSuperblock(bytes, slot))
  }
  return slots
}

/**
 * The state to open: the valid slot with the highest transaction. The older slot is only ever
 * the fallback of a torn newest superblock: blocks it references may be reused once the newer
 * one is committed, so a valid newer slot is never passed over.
 */
export async function newestThinSuperblock(device: PoolDevice): Promise<{ superblock: ThinSuperblock, slot: number }> {
  const slots = await readSuperblocks(device)
  let best: { superblock: ThinSuperblock, slot: number } | undefined
  slots.forEach((candidate, slot) => {
    if (candidate instanceof LvmfsError) return
    if (best === undefined || candidate.transaction > best.superblock.transaction) {
      best = { superblock: candidate, slot }
    }
  })
  if (best === undefined) {
    const reasons = slots.map((s, i) => `slot ${i}: ${(s as LvmfsError).message}`).join('; ')
    throw new LvmfsError('THIN_CORRUPT', 'no valid thin pool superblock', { detail: `${reasons}.`,
      hint: 'Run `lvmfs thin-check VG/POOL`.', context: { block: 0, what: 'superblock' } })
  }
  return best
}

export async function readDeviceTable(device: PoolDevice, first: number, metadataBlocks: number): Promise<{
  devices: ThinDevice[], blocks: number[] }> {
  const devices: ThinDevice[] = []
  const blocks: number[] = []
  for (let block = first; block !== 0;) {
    if (block < THIN_SUPERBLOCK_SLOTS || block >= metadataBlocks || blocks.includes(block)) {
      throw thinCorrupt(block, 'device table link', `Block ${block} is outside the metadata area or links back.`)
    }
    const bytes = new Uint8Array(THIN_BLOCK_BYTES)
    await device.read(bytes, block * THIN_BLOCK_BYTES)
    const decoded = decodeThinDevices(bytes, block)
    devices.push(...decoded.devices)
    blocks.push(block)
    block = decoded.next
  }
  return { devices, blocks }
}

export class ThinPool {
  readonly #lock = new KeyedMutex()
  readonly #devices = new Map<number, DeviceState>()
  #superblock: ThinSuperblock
  #slot: number
  #deviceTableBlocks: number[]
  #changed = false
  observer: ThinPoolObserver = NO_OBSERVER
  readonly #store: NodeStore
  readonly #meta: SpaceMap
  readonly #data: SpaceMap

  private constructor(private readonly device: PoolDevice, superblock: ThinSuperblock, slot: number,
    devices: readonly ThinDevice[], deviceTableBlocks: number[]) {
    this.#superblock = superblock
    this.#slot = slot
    this.#deviceTableBlocks = deviceTableBlocks
    this.#meta = new SpaceMap(superblock.metadataBlocks, THIN_SUPERBLOCK_SLOTS, 'THIN_METADATA_FULL', 'metadata')
    this.#data = new SpaceMap(superblock.dataBlocks, 0, 'THIN_POOL_FULL', 'data')
    this.#store = new NodeStore(device, this.#meta, this.#data)
    for (const d of devices) this.#devices.set(d.thinId, toState(d))
    for (const block of deviceTableBlocks) this.#meta.inc(block)
  }

  /** Writes an empty pool (transaction 1) over the device's metadata area. */
  static async format(device: PoolDevice, format: ThinPoolFormat): Promise<ThinPool> {
    const metadataBlocks = Math.floor(format.metadataBytes / THIN_BLOCK_BYTES)
    const dataBlocks = dataBlocksOf(device.sizeBytes, format)
    if (metadataBlocks < THIN_SUPERBLOCK_SLOTS + METADATA_RESERVE * 2) {
      throw new LvmfsError('ENGINE_USAGE', `thin pool metadata of ${format.metadataBytes} bytes is too small`, {
        detail: `It needs at least ${(THIN_SUPERBLOCK_SLOTS + METADATA_RESERVE * 2) * THIN_BLOCK_BYTES} bytes.` })
    }
    if (dataBlocks < 1) {
      throw new LvmfsError('ENGINE_USAGE', 'the thin pool has no room for data blocks', {
        detail: `The pool LV holds ${device.sizeBytes} bytes; its metadata takes ${dataStartBytes(format)}.` })
    }
    const superblock: ThinSuperblock = { transaction: 1, chunkBytes: format.chunkBytes, poolTime: 0, dataBlocks,
      metadataBlocks, deviceTable: 0, nextThinId: 1 }
    await device.write(new Uint8Array(THIN_BLOCK_BYTES), THIN_BLOCK_BYTES)
    await device.write(encodeThinSuperblock(superblock, 0), 0)
    await device.flush()
    return new ThinPool(device, superblock, 0, [], [])
  }

  /** Opens the last commit; reference counts are derived by walking every device's tree. */
  static async open(device: PoolDevice): Promise<ThinPool> {
    const { superblock, slot } = await newestThinSuperblock(device)
    const table = await readDeviceTable(device, superblock.deviceTable, superblock.metadataBlocks)
    const pool = new ThinPool(device, superblock, slot, table.devices, table.blocks)
    await pool.#countReferences()
    return pool
  }

  async #countReferences(): Promise<void> {
    const seen = new Set<number>()
    const visit = async (block: number, level: number): Promise<void> => {
      if (block >= this.#meta.blocks || block < THIN_SUPERBLOCK_SLOTS) {
        throw thinCorrupt(block, 'node link', `Block ${block} is outside the metadata area.`)
      }
      this.#meta.inc(block)
      if (seen.has(block)) return
      seen.add(block)
      const node = await this.#store.get(block, nodeKindAt(level), level)
      for (let i = 0; i < node.hi.length; i++) {
        if (level === 0) {
          if (node.hi[i] === 0) continue
          if (node.hi[i]! - 1 >= this.#data.blocks) {
            throw thinCorrupt(block, 'data block', `Entry ${i} maps data block ${node.hi[i]! - 1} of ${this.#data.blocks}.`)
          }
          this.#data.inc(node.hi[i]! - 1)
        } else if (node.lo[i] !== 0) {
          await visit(node.lo[i]!, level - 1)
        }
      }
    }
    for (const device of this.#devices.values()) if (device.root !== 0) await visit(device.root, device.levels - 1)
    this.#meta.committed()
    this.#data.committed()
  }

  get chunkBytes(): number {
    return this.#superblock.chunkBytes
  }

  get format(): ThinPoolFormat {
    return { chunkBytes: this.chunkBytes, metadataBytes: this.#superblock.metadataBlocks * THIN_BLOCK_BYTES }
  }

  #locked<T>(work: () => Promise<T>): Promise<T> {
    return this.#lock.lock('pool').then(async (release) => {
      try {
        return await work()
      } finally {
        release()
      }
    })
  }

  #deviceOf(thinId: number): DeviceState {
    const device = this.#devices.get(thinId)
    if (device === undefined) {
      throw new LvmfsError('THIN_NO_DEVICE', `thin pool has no device ${thinId}`, { context: { thinId } })
    }
    return device
  }

  hasDevice(thinId: number): boolean {
    return this.#devices.has(thinId)
  }

  virtualBytes(thinId: number): number {
    return this.#deviceOf(thinId).virtualBlocks * this.chunkBytes
  }

  #dataOffset(dataBlock: number): number {
    return dataStartBytes(this.format) + dataBlock * this.chunkBytes
  }

  #needMetadata(blocks: number): void {
    if (this.#meta.free < blocks + METADATA_RESERVE) {
      throw new LvmfsError('THIN_METADATA_FULL', 'the thin pool metadata area is full', {
        detail: `${this.#meta.free} metadata blocks are free and the change needs ${blocks} beyond the reserve of ${METADATA_RESERVE}.`,
        hint: 'Remove snapshots or thin LVs you no longer need; a larger --metadata-size needs a new pool.',
        context: { free: this.#meta.free },
      })
    }
  }

  /** A new, empty thin device of `virtualBytes` (rounded up to whole chunks); committed. */
  createThin(virtualBytes: number): Promise<number> {
    return this.#locked(async () => {
      const virtualBlocks = Math.ceil(virtualBytes / this.chunkBytes)
      if (!Number.isSafeInteger(virtualBlocks) || virtualBlocks < 1) {
        throw new LvmfsError('ENGINE_USAGE', `bad thin virtual size ${virtualBytes}`)
      }
      const thinId = this.#superblock.nextThinId
      this.#devices.set(thinId, { thinId, levels: thinLevelsFor(virtualBlocks), virtualBlocks, root: 0,
        snapshottedTime: this.#superblock.poolTime, mappedBlocks: 0 })
      this.#superblock = { ...this.#superblock, nextThinId: thinId + 1 }
      await this.#commitLocked()
      return thinId
    })
  }

  /**
   * A snapshot of `originId` in O(1): the new device shares the origin's root, and both devices'
   * snapshot time becomes the new pool time, so either one's next write into a block mapped
   * before now goes to a new block. Committed before it returns.
   */
  snapshot(originId: number): Promise<number> {
    return this.#locked(async () => {
      const origin = this.#deviceOf(originId)
      await this.observer.quiesce([originId], 'share')
      const thinId = this.#superblock.nextThinId
      const poolTime = this.#superblock.poolTime + 1
      if (origin.root !== 0) this.#meta.inc(origin.root)
      origin.snapshottedTime = poolTime
      this.#devices.set(thinId, { ...origin, thinId, snapshottedTime: poolTime })
      this.#superblock = { ...this.#superblock, nextThinId: thinId + 1, poolTime }
      await this.#commitLocked()
      return thinId
    })
  }

  /** Removes a thin device and frees the blocks only it used; committed. */
  deleteThin(thinId: number): Promise<void> {
    return this.#locked(async () => {
      const device = this.#deviceOf(thinId)
      await this.observer.quiesce([thinId], 'forget')
      if (device.root !== 0) await this.#store.release(device.root, nodeKindAt(device.levels - 1), device.levels - 1)
      this.#devices.delete(thinId)
      this.#changed = true
      await this.#commitLocked()
    })
  }

  /** Makes `origin` hold what `snapshot` holds (lvconvert --merge) and drops the snapshot; committed. */
  merge(snapshotId: number, originId: number): Promise<void> {
    return this.#locked(async () => {
      const snapshot = this.#deviceOf(snapshotId)
      const origin = this.#deviceOf(originId)
      await this.observer.quiesce([snapshotId, originId], 'forget')
      if (origin.root !== 0) await this.#store.release(origin.root, nodeKindAt(origin.levels - 1), origin.levels - 1)
      this.#devices.set(originId, { ...snapshot, thinId: originId })
      this.#devices.delete(snapshotId)
      this.#changed = true
      await this.#commitLocked()
    })
  }

  read(thinId: number, target: Uint8Array, offsetBytes: number): Promise<void> {
    return this.#locked(async () => {
      const device = this.#deviceOf(thinId)
      this.#checkRange(device, offsetBytes, target.length)
      for (const piece of this.#pieces(offsetBytes, target.length)) {
        const part = target.subarray(piece.at, piece.at + piece.length)
        const mapping = await lookupMapping(this.#store, device.root, device.levels, piece.block)
        if (mapping === undefined) part.fill(0)
        else await this.device.read(part, this.#dataOffset(mapping.dataBlock) + piece.within)
      }
    })
  }

  write(thinId: number, data: Uint8Array, offsetBytes: number): Promise<void> {
    return this.#locked(async () => {
      const device = this.#deviceOf(thinId)
      this.#checkRange(device, offsetBytes, data.length)
      for (const piece of this.#pieces(offsetBytes, data.length)) {
        await this.#writePiece(device, piece.block, piece.within, data.subarray(piece.at, piece.at + piece.length))
      }
    })
  }

  async #writePiece(device: DeviceState, block: number, within: number, data: Uint8Array): Promise<void> {
    const mapping = await lookupMapping(this.#store, device.root, device.levels, block)
    if (mapping !== undefined && this.#exclusive(device, mapping)) {
      await this.device.write(data, this.#dataOffset(mapping.dataBlock) + within)
      return
    }
    await this.#remapForWrite(device, block, mapping, { data, within })
  }

  #exclusive(device: DeviceState, mapping: Mapping): boolean {
    return mapping.time >= device.snapshottedTime
  }

  /**
   * Maps `block` to a new data block this device alone uses, holding the old content (or
   * zeros) overlaid with `write`; with no write, the caller promised to overwrite it whole.
   */
  async #remapForWrite(device: DeviceState, block: number, mapping: Mapping | undefined,
    write: { data: Uint8Array, within: number } | 'whole' | 'keep'): Promise<void> {
    this.#needMetadata(device.levels)
    const fresh = this.#data.allocate()
    try {
      if (write !== 'whole') {
        let content = write === 'keep' ? undefined : write.data
        if (content === undefined || content.length < this.chunkBytes) {
          content = new Uint8Array(this.chunkBytes)
          if (mapping !== undefined) await this.device.read(content, this.#dataOffset(mapping.dataBlock))
          if (write !== 'keep') content.set(write.data, write.within)
        }
        await this.device.write(content, this.#dataOffset(fresh))
      }
    } catch (error) {
      this.#data.dec(fresh)
      throw error
    }
    await this.#map(device, block, { dataBlock: fresh, time: this.#superblock.poolTime })
  }

  async #map(device: DeviceState, block: number, mapping: Mapping | undefined): Promise<void> {
    const result = await setMapping(this.#store, device.root, device.levels, block, mapping)
    device.root = result.root
    device.mappedBlocks += (mapping === undefined ? 0 : 1) - (result.previous === undefined ? 0 : 1)
    this.#changed = true
    this.observer.remapped(device.thinId, block, mapping, mapping !== undefined && this.#exclusive(device, mapping))
  }

  /**
   * A write miss of the native path: makes `count` blocks from `first` writable in place (a
   * new block for each shared or unmapped one, holding its content unless `whole(block)` says
   * the write covers it all) and publishes them to the observer. Blocks are allocated and
   * mapped under the lock; their content is copied between the two, so misses of different
   * blocks copy at once. A block whose mapping changed meanwhile (another miss mapped it, a
   * discard) gives its new block back: the write misses again and finds it as it is now.
   */
  async provision(thinId: number, first: number, count: number, whole: (block: number) => boolean): Promise<void> {
    const jobs = await this.#locked(async () => {
      const device = this.#deviceOf(thinId)
      this.#checkRange(device, first * this.chunkBytes, count * this.chunkBytes)
      const out: Array<{ block: number, old: Mapping | undefined, fresh: number, whole: boolean }> = []
      for (let block = first; block < first + count; block++) {
        const mapping = await lookupMapping(this.#store, device.root, device.levels, block)
        if (mapping !== undefined && this.#exclusive(device, mapping)) {
          this.observer.remapped(thinId, block, mapping, true)
          continue
        }
        this.#needMetadata(device.levels * (out.length + 1))
        out.push({ block, old: mapping, fresh: this.#data.allocate(), whole: whole(block) })
      }
      return out
    })
    const copied = await Promise.allSettled(jobs.map(async (job) => {
      if (job.whole) return
      const content = new Uint8Array(this.chunkBytes)
      if (job.old !== undefined) await this.device.read(content, this.#dataOffset(job.old.dataBlock))
      await this.device.write(content, this.#dataOffset(job.fresh))
    }))
    await this.#locked(async () => {
      const device = this.#devices.get(thinId)
      let failure: Error | undefined
      for (const [i, job] of jobs.entries()) {
        const outcome = copied[i]!
        const now = device === undefined ? undefined
          : await lookupMapping(this.#store, device.root, device.levels, job.block)
        const unchanged = now?.dataBlock === job.old?.dataBlock && now?.time === job.old?.time
        const roomy = device !== undefined && this.#meta.free >= device.levels + METADATA_RESERVE
        if (outcome.status === 'rejected' || device === undefined || !unchanged || !roomy) {
          this.#data.dec(job.fresh)
          if (outcome.status === 'rejected') {
            failure ??= outcome.reason instanceof Error ? outcome.reason : new Error(String(outcome.reason))
          }
          continue
        }
        await this.#map(device, job.block, { dataBlock: job.fresh, time: this.#superblock.poolTime })
      }
      if (failure !== undefined) throw failure
    })
  }

  /** A read miss of the native path: publishes the block's current mapping. */
  publish(thinId: number, block: number): Promise<void> {
    return this.#locked(async () => {
      const device = this.#deviceOf(thinId)
      this.#checkRange(device, block * this.chunkBytes, this.chunkBytes)
      const mapping = await lookupMapping(this.#store, device.root, device.levels, block)
      this.observer.remapped(thinId, block, mapping, mapping !== undefined && this.#exclusive(device, mapping))
    })
  }

  /** Unmaps the whole blocks of the range (freeing what nothing else maps) and zeroes its edges. */
  discard(thinId: number, offsetBytes: number, lengthBytes: number): Promise<void> {
    return this.#locked(async () => {
      const device = this.#deviceOf(thinId)
      this.#checkRange(device, offsetBytes, lengthBytes)
      for (const piece of this.#pieces(offsetBytes, lengthBytes)) {
        const mapping = await lookupMapping(this.#store, device.root, device.levels, piece.block)
        if (mapping === undefined) continue
        if (piece.length === this.chunkBytes) await this.#map(device, piece.block, undefined)
        else await this.#writePiece(device, piece.block, piece.within, new Uint8Array(piece.length))
      }
    })
  }

  /**
   * Grows the data area to what the (extended) pool device holds. `resize` runs under the
   * pool's lock (no I/O in flight through the pool) and answers the device's new size.
   */
  grow(resize: () => number | Promise<number> = () => this.device.sizeBytes): Promise<number> {
    return this.#locked(async () => {
      const dataBlocks = dataBlocksOf(await resize(), this.format)
      if (dataBlocks <= this.#superblock.dataBlocks) return this.#superblock.dataBlocks
      this.#data.grow(dataBlocks)
      this.#superblock = { ...this.#superblock, dataBlocks }
      this.#changed = true
      await this.#commitLocked()
      return dataBlocks
    })
  }

  #checkRange(device: DeviceState, offsetBytes: number, lengthBytes: number): void {
    const size = device.virtualBlocks * this.chunkBytes
    if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes + lengthBytes > size) {
      throw new LvmfsError('MIRROR_BAD_RANGE', `I/O at ${offsetBytes}+${lengthBytes} is outside thin device ${device.thinId}`,
        { detail: `The device holds ${size} bytes.` })
    }
  }

  * #pieces(offsetBytes: number,
    lengthBytes: number): Generator<{ block: number, within: number, at: number, length: number }> {
    const chunk = this.chunkBytes
    for (let at = 0; at < lengthBytes;) {
      const position = offsetBytes + at
      const within = position % chunk
      const length = Math.min(chunk - within, lengthBytes - at)
      yield { block: Math.floor(position / chunk), within, at, length }
      at += length
    }
  }

  /** Makes every change so far durable: data first, then the new trees, then the superblock. */
  commit(): Promise<void> {
    return this.#locked(() => this.#commitLocked())
  }

  get uncommitted(): boolean {
    return this.#changed || this.#store.dirtyCount > 0
  }

  async #commitLocked(): Promise<void> {
    const transaction = this.#superblock.transaction + 1
    await this.device.flush()
    await this.#store.writeDirty(transaction)
    const tableBlocks = await this.#writeDeviceTable(transaction)
    const superblock = { ...this.#superblock, transaction, deviceTable: tableBlocks[0] ?? 0 }
    await this.device.flush()
    const slot = (this.#slot + 1) % THIN_SUPERBLOCK_SLOTS
    await this.device.write(encodeThinSuperblock(superblock, slot), slot * THIN_BLOCK_BYTES)
    await this.device.flush()
    if (this.#data.freedHere > 0) await this.observer.drain()
    for (const block of this.#deviceTableBlocks) this.#meta.dec(block)
    this.#deviceTableBlocks = tableBlocks
    this.#superblock = superblock
    this.#slot = slot
    this.#meta.committed()
    this.#data.committed()
    this.#changed = false
  }

  async #writeDeviceTable(transaction: number): Promise<number[]> {
    const devices = [...this.#devices.values()].sort((a, b) => a.thinId - b.thinId)
    const groups: ThinDevice[][] = []
    for (let i = 0; i < devices.length; i += THIN_DEVICES_PER_BLOCK) {
      groups.push(devices.slice(i, i + THIN_DEVICES_PER_BLOCK))
    }
    const blocks = groups.map(() => this.#meta.allocate())
    for (let i = 0; i < groups.length; i++) {
      await this.device.write(encodeThinDevices(groups[i]!, blocks[i]!, transaction, blocks[i + 1] ?? 0),
        blocks[i]! * THIN_BLOCK_BYTES)
    }
    return blocks
  }

  status(): ThinPoolStatus {
    return {
      transaction: this.#superblock.transaction, chunkBytes: this.chunkBytes, dataBlocks: this.#data.blocks,
      dataUsedBlocks: this.#data.used, metadataBlocks: this.#meta.blocks,
      metadataUsedBlocks: this.#meta.used + THIN_SUPERBLOCK_SLOTS,
      poolTime: this.#superblock.poolTime, uncommitted: this.uncommitted,
      devices: [...this.#devices.values()].map((d) => ({ thinId: d.thinId, virtualBlocks: d.virtualBlocks,
        mappedBlocks: d.mappedBlocks })),
    }
  }

  /** Every mapping of a device, in key order (thin-check, tests). */
  async mappings(thinId: number): Promise<Array<[number, Mapping]>> {
    return this.#locked(async () => {
      const device = this.#deviceOf(thinId)
      const out: Array<[number, Mapping]> = []
      await forEachMapping(this.#store, device.root, device.levels, (key, mapping) => { out.push([key, mapping]) })
      return out
    })
  }
}
