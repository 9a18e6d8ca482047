/**
 * `lvmfs thin-check --repair`: rebuilds a thin pool's metadata from what can still be read. The
 * newest valid superblock and its device table are the starting point (without them nothing
 * says which devices exist, and repair refuses). Every device's tree is walked without trusting
 * it: a node that fails its checks loses its subtree, and an entry is dropped when it maps
 * beyond the device or the pool, or maps a data block already claimed at another virtual block.
 * A block shared by several devices at one virtual block stays shared, with its time set to 0
 * (older than any snapshot), so no device writes it in place.
 *
 * The new trees go to blocks the damaged state does not use (readable or not), then a new device
 * table, then the other superblock slot: a crash during repair opens the old state, which a
 * second repair starts from again.
 */
import { LvmfsError } from '../errors/index.js'
import {
  THIN_BLOCK_BYTES, THIN_DEVICES_PER_BLOCK, THIN_FANOUT, THIN_SUPERBLOCK_SLOTS, encodeThinDevices, encodeThinSuperblock,
  type ThinDevice,
} from '../format/index.js'
import { nodeKindAt, setMapping, type Mapping } from './mapping-tree.js'
import { NodeStore } from './node-store.js'
import type { PoolDevice } from './pool-device.js'
import { SpaceMap } from './space-map.js'
import { newestThinSuperblock, readDeviceTable } from './thin-pool.js'

export interface ThinRepairReport {
  readonly transaction: number
  readonly devices: number
  readonly keptMappings: number
  /** Distinct nodes that failed their checks (their subtrees' mappings are lost). */
  readonly unreadableNodes: number
  /** Entries dropped: beyond the device or the pool, or a data block mapped twice. */
  readonly droppedMappings: number
  /** Shared blocks whose time was reset so that no device writes them in place. */
  readonly resetTimes: number
}

export async function thinRepair(device: PoolDevice): Promise<ThinRepairReport> {
  const { superblock, slot } = await newestThinSuperblock(device)
  let table
  try {
    table = await readDeviceTable(device, superblock.deviceTable, superblock.metadataBlocks)
  } catch (error) {
    throw new LvmfsError('THIN_CORRUPT', 'the thin pool\'s device table cannot be read: nothing says which thin devices exist', {
      cause: error, hint: 'Restore the pool from a backup.' })
  }
  const used = new Set<number>(table.blocks)
  const reader = new NodeStore(device, new SpaceMap(superblock.metadataBlocks, THIN_SUPERBLOCK_SLOTS, 'THIN_METADATA_FULL',
    'metadata'), new SpaceMap(1, 0, 'THIN_POOL_FULL', 'data'))
  const kept = new Map<number, Map<number, Mapping>>()
  const claims = new Map<number, { key: number, devices: number[] }>()
  const unreadable = new Set<number>()
  let droppedMappings = 0
  for (const thin of table.devices) {
    const mappings = new Map<number, Mapping>()
    kept.set(thin.thinId, mappings)
    const walk = async (block: number, level: number, base: number): Promise<void> => {
      if (block < THIN_SUPERBLOCK_SLOTS || block >= superblock.metadataBlocks) {
        unreadable.add(block)
        return
      }
      used.add(block)
      let node
      try {
        node = await reader.get(block, nodeKindAt(level), level)
      } catch {
        unreadable.add(block)
        return
      }
      const span = THIN_FANOUT ** level
      for (let i = 0; i < THIN_FANOUT; i++) {
        if (level > 0) {
          if (node.lo[i] !== 0) await walk(node.lo[i]!, level - 1, base + i * span)
          continue
        }
        if (node.hi[i] === 0) continue
        const key = base + i
        const dataBlock = node.hi[i]! - 1
        const claim = claims.get(dataBlock)
        const twice = claim !== undefined && (claim.key !== key || claim.devices.includes(thin.thinId))
        if (key >= thin.virtualBlocks || dataBlock >= superblock.dataBlocks || twice) {
          droppedMappings++
          continue
        }
        if (claim === undefined) claims.set(dataBlock, { key, devices: [thin.thinId] })
        else claim.devices.push(thin.thinId)
        mappings.set(key, { dataBlock, time: Math.min(node.lo[i]!, superblock.poolTime) })
      }
    }
    if (thin.root !== 0) await walk(thin.root, thin.levels - 1, 0)
  }
  let resetTimes = 0
  let poolTime = superblock.poolTime
  const snapshotted = new Map(table.devices.map((d) => [d.thinId, d.snapshottedTime]))
  for (const [dataBlock, claim] of claims) {
    if (claim.devices.length < 2) continue
    for (const thinId of claim.devices) {
      // Time 0 must be older than the device's snapshot time for the block to count as shared.
      if (snapshotted.get(thinId) === 0) {
        snapshotted.set(thinId, 1)
        poolTime = Math.max(poolTime, 1)
      }
      const mapping = kept.get(thinId)!.get(claim.key)!
      if (mapping.time === 0) continue
      kept.get(thinId)!.set(claim.key, { dataBlock, time: 0 })
      resetTimes++
    }
  }
  // The rebuilt trees: fresh blocks only, nothing shared between devices.
  const meta = new SpaceMap(superblock.metadataBlocks, THIN_SUPERBLOCK_SLOTS, 'THIN_METADATA_FULL', 'metadata')
  for (const block of used) meta.inc(block)
  const data = new SpaceMap(superblock.dataBlocks, 0, 'THIN_POOL_FULL', 'data')
  const store = new NodeStore(device, meta, data)
  const devices: ThinDevice[] = []
  let keptMappings = 0
  for (const thin of table.devices) {
    let root = 0
    const mappings = [...kept.get(thin.thinId)!].sort(([a], [b]) => a - b)
    for (const [key, mapping] of mappings) {
      data.inc(mapping.dataBlock)
      root = (await setMapping(store, root, thin.levels, key, mapping)).root
    }
    keptMappings += mappings.length
    devices.push({ ...thin, root, mappedBlocks: mappings.length, snapshottedTime: snapshotted.get(thin.thinId)! })
  }
  const transaction = superblock.transaction + 1
  await store.writeDirty(transaction)
  const groups: ThinDevice[][] = []
  for (let i = 0; i < devices.length; i += THIN_DEVICES_PER_BLOCK) {
    groups.push(devices.slice(i, i + THIN_DEVICES_PER_BLOCK))
  }
  const tableBlocks = groups.map(() => meta.allocate())
  for (let i = 0; i < groups.length; i++) {
    const block = tableBlocks[i]!
    const encoded = encodeThinDevices(groups[i]!, block, transaction, tableBlocks[i + 1] ?? 0)
    await device.write(encoded, block * THIN_BLOCK_BYTES)
  }
  await device.flush()
  const next = (slot + 1) % THIN_SUPERBLOCK_SLOTS
  const committed = { ...superblock, transaction, poolTime, deviceTable: tableBlocks[0] ?? 0 }
  await device.write(encodeThinSuperblock(committed, next), next * THIN_BLOCK_BYTES)
  await device.flush()
  return {
    transaction, devices: devices.length, keptMappings, unreadableNodes: unreadable.size, droppedMappings, resetTimes,
  }
}
