/**
 * The mapping of one thin device: a copy-on-write radix tree of `levels` node levels from
 * virtual block to (data block, pool time at mapping), over the shared NodeStore. Changing a
 * mapping shadows the path from the root, so the committed tree stays intact until the next
 * superblock points at the new root; a node left empty is freed.
 */
import { THIN_FANOUT } from '../format/index.js'
import type { NodeStore } from './node-store.js'

export interface Mapping {
  readonly dataBlock: number
  readonly time: number
}

const kindAt = (level: number): 'interior' | 'leaf' => level === 0 ? 'leaf' : 'interior'

function digit(key: number, level: number): number {
  return Math.floor(key / THIN_FANOUT ** level) % THIN_FANOUT
}

export async function lookupMapping(store: NodeStore, root: number, levels: number,
  key: number): Promise<Mapping | undefined> {
  let block = root
  for (let level = levels - 1; block !== 0; level--) {
    const node = await store.get(block, kindAt(level), level)
    const index = digit(key, level)
    if (level === 0) return node.hi[index] === 0 ? undefined : { dataBlock: node.hi[index]! - 1, time: node.lo[index]! }
    block = node.lo[index]!
  }
  return undefined
}

/**
 * Maps `key` to `mapping` (or unmaps it), dropping the reference the old entry held on its
 * data block. The new mapping's data block reference is the caller's (taken at allocation).
 */
export async function setMapping(store: NodeStore, root: number, levels: number, key: number,
  mapping: Mapping | undefined): Promise<{ root: number, previous: Mapping | undefined }> {
  let previous: Mapping | undefined
  const visit = async (block: number, level: number): Promise<number> => {
    if (block === 0 && mapping === undefined) return 0
    const { block: own, node } = block === 0 ? store.create(kindAt(level), level)
      : await store.shadow(block, kindAt(level), level)
    const index = digit(key, level)
    if (level === 0) {
      if (node.hi[index] !== 0) {
        previous = { dataBlock: node.hi[index]! - 1, time: node.lo[index]! }
        store.data.dec(previous.dataBlock)
      }
      node.hi[index] = mapping === undefined ? 0 : mapping.dataBlock + 1
      node.lo[index] = mapping === undefined ? 0 : mapping.time
    } else {
      node.lo[index] = await visit(node.lo[index]!, level - 1)
    }
    if (node.hi.every((value) => value === 0) && node.lo.every((value) => value === 0)) {
      await store.release(own, kindAt(level), level)
      return 0
    }
    return own
  }
  const newRoot = await visit(root, levels - 1)
  return { root: newRoot, previous }
}

/** Visits every mapped entry in key order (the trees are walked, nodes read as needed). */
export async function forEachMapping(store: NodeStore, root: number, levels: number,
  visit: (key: number, mapping: Mapping) => void | Promise<void>): Promise<void> {
  const walk = async (block: number, level: number, base: number): Promise<void> => {
    const node = await store.get(block, kindAt(level), level)
    const span = THIN_FANOUT ** level
    for (let i = 0; i < THIN_FANOUT; i++) {
      if (level === 0) {
        if (node.hi[i] !== 0) await visit(base + i, { dataBlock: node.hi[i]! - 1, time: node.lo[i]! })
      } else if (node.lo[i] !== 0) {
        await walk(node.lo[i]!, level - 1, base + i * span)
      }
    }
  }
  if (root !== 0) await walk(root, levels - 1, 0)
}

export { kindAt as nodeKindAt }
