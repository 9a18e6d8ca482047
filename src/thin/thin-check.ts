/**
 * `lvmfs thin-check`: verifies a thin pool's metadata without trusting any of it. Every block is
 * read and checked (checksum, magic, own number, kind, level), every tree link and mapping is
 * bounded, every metadata block has one role, every data block is mapped at one virtual block
 * only (shared by snapshots, never double mapped), and a block two devices share is one neither
 * may write in place. Reference counts are derived from the trees (they are not stored), so
 * checking them is checking that each counted reference is one of these valid links.
 */
import { LvmfsError } from '../errors/index.js'
import { THIN_SUPERBLOCK_SLOTS, THIN_FANOUT, type ThinDevice } from '../format/index.js'
import { nodeKindAt } from './mapping-tree.js'
import { NodeStore } from './node-store.js'
import type { PoolDevice } from './pool-device.js'
import { SpaceMap } from './space-map.js'
import { newestThinSuperblock, readDeviceTable } from './thin-pool.js'

export interface ThinProblem {
  /** Metadata block the problem is in (superblock slots are 0 and 1). */
  readonly block: number
  readonly thinId?: number
  readonly message: string
}

export interface ThinCheckReport {
  readonly transaction: number
  readonly slot: number
  readonly devices: number
  readonly mappedBlocks: number
  readonly sharedBlocks: number
  readonly metadataBlocksUsed: number
  readonly problems: readonly ThinProblem[]
}

interface Role { readonly kind: string, readonly level: number }

export async function thinCheck(device: PoolDevice): Promise<ThinCheckReport> {
  const problems: ThinProblem[] = []
  const { superblock, slot } = await newestThinSuperblock(device)
  let devices: ThinDevice[] = []
  const roles = new Map<number, Role>()
  try {
    const table = await readDeviceTable(device, superblock.deviceTable, superblock.metadataBlocks)
    devices = table.devices
    for (const block of table.blocks) roles.set(block, { kind: 'devices', level: 0 })
  } catch (error) {
    problems.push({ block: blockOf(error, superblock.deviceTable), message: messageOf(error) })
  }
  // A scratch store: the check reads nodes through the same decoder as the pool.
  const scratch = new SpaceMap(superblock.metadataBlocks, THIN_SUPERBLOCK_SLOTS, 'THIN_METADATA_FULL', 'metadata')
  const store = new NodeStore(device, scratch, new SpaceMap(1, 0, 'THIN_POOL_FULL', 'data'))
  /** data block -> the virtual block it is mapped at, and the devices mapping it. */
  const owners = new Map<number, { key: number, devices: Set<number>, time: number }>()
  const ids = new Set<number>()
  let mappedBlocks = 0
  for (const thin of devices) {
    if (ids.has(thin.thinId)) problems.push({ block: superblock.deviceTable, thinId: thin.thinId, message: 'thin id listed twice' })
    ids.add(thin.thinId)
    if (thin.thinId >= superblock.nextThinId) {
      problems.push({ block: superblock.deviceTable, thinId: thin.thinId, message: `thin id is not below nextThinId ${superblock.nextThinId}` })
    }
    let counted = 0
    const visit = async (block: number, level: number, base: number): Promise<void> => {
      if (block < THIN_SUPERBLOCK_SLOTS || block >= superblock.metadataBlocks) {
        problems.push({ block, thinId: thin.thinId, message: `node link to block ${block}, outside the metadata area` })
        return
      }
      const role = roles.get(block)
      const kind = nodeKindAt(level)
      if (role !== undefined && (role.kind !== kind || role.level !== level)) {
        problems.push({ block, thinId: thin.thinId, message: `block used as ${role.kind} level ${role.level} and as ${kind} level ${level}` })
        return
      }
      roles.set(block, { kind, level })
      let node
      try {
        node = await store.get(block, kind, level)
      } catch (error) {
        problems.push({ block, thinId: thin.thinId, message: messageOf(error) })
        return
      }
      const span = THIN_FANOUT ** level
      for (let i = 0; i < THIN_FANOUT; i++) {
        if (level > 0) {
          if (node.lo[i] !== 0) await visit(node.lo[i]!, level - 1, base + i * span)
          continue
        }
        if (node.hi[i] === 0) continue
        const key = base + i
        const dataBlock = node.hi[i]! - 1
        const time = node.lo[i]!
        counted++
        if (key >= thin.virtualBlocks) problems.push({ block, thinId: thin.thinId, message: `maps virtual block ${key} beyond the device's ${thin.virtualBlocks}` })
        if (dataBlock >= superblock.dataBlocks) problems.push({ block, thinId: thin.thinId, message: `maps data block ${dataBlock} beyond the pool's ${superblock.dataBlocks}` })
        if (time > superblock.poolTime) problems.push({ block, thinId: thin.thinId, message: `mapping time ${time} is after pool time ${superblock.poolTime}` })
        const owner = owners.get(dataBlock)
        if (owner === undefined) {
          owners.set(dataBlock, { key, devices: new Set([thin.thinId]), time })
        } else if (owner.key !== key || owner.devices.has(thin.thinId)) {
          problems.push({ block, thinId: thin.thinId, message: `data block ${dataBlock} is mapped twice (virtual blocks ${owner.key} and ${key})` })
        } else {
          owner.devices.add(thin.thinId)
        }
      }
    }
    if (thin.root !== 0) await visit(thin.root, thin.levels - 1, 0)
    if (counted !== thin.mappedBlocks) {
      problems.push({ block: superblock.deviceTable, thinId: thin.thinId, message: `device table says ${thin.mappedBlocks} mapped blocks, the tree maps ${counted}` })
    }
    mappedBlocks += counted
  }
  let sharedBlocks = 0
  const byId = new Map(devices.map((d) => [d.thinId, d]))
  for (const [dataBlock, owner] of owners) {
    if (owner.devices.size < 2) continue
    sharedBlocks++
    for (const thinId of owner.devices) {
      if (owner.time >= byId.get(thinId)!.snapshottedTime) {
        problems.push({ block: superblock.deviceTable, thinId, message: `data block ${dataBlock} is shared but the device would write it in place (mapped at time ${owner.time}, snapshot time ${byId.get(thinId)!.snapshottedTime})` })
      }
    }
  }
  return { transaction: superblock.transaction, slot, devices: devices.length, mappedBlocks, sharedBlocks,
    metadataBlocksUsed: roles.size + THIN_SUPERBLOCK_SLOTS, problems }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

function blockOf(error: unknown, fallback: number): number {
  if (error instanceof LvmfsError && typeof error.context['block'] === 'number') return error.context['block']
  return fallback
}
