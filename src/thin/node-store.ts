/**
 * Tree nodes of one pool's metadata area: a cache over the device, copy-on-write shadowing and
 * reference counting of shared nodes (the scheme of dm-persistent-data, in two-level form):
 *
 *  - a node the committed state references is never written in place; changing it writes a
 *    shadow copy to a block allocated in this transaction, which later changes of the same
 *    transaction update in place;
 *  - a snapshot shares its origin's root (one more reference); the first change through either
 *    device shadows the shared node, and the shadow takes a reference to each child (a node, or
 *    for a leaf each data block it maps), so sharing moves down the tree only where written.
 */
import { THIN_BLOCK_BYTES, decodeThinNode, emptyThinNode, encodeThinNode, type ThinNode } from '../format/index.js'
import type { PoolDevice } from './pool-device.js'
import type { SpaceMap } from './space-map.js'

export class NodeStore {
  readonly #cache = new Map<number, ThinNode>()
  /** Nodes changed in this transaction, written out by commit. */
  readonly #dirty = new Set<number>()

  constructor(private readonly device: PoolDevice, readonly meta: SpaceMap, readonly data: SpaceMap) {}

  get dirtyCount(): number {
    return this.#dirty.size
  }

  async get(block: number, kind: 'interior' | 'leaf', level: number): Promise<ThinNode> {
    const cached = this.#cache.get(block)
    if (cached !== undefined) return cached
    const bytes = new Uint8Array(THIN_BLOCK_BYTES)
    await this.device.read(bytes, block * THIN_BLOCK_BYTES)
    const node = decodeThinNode(bytes, block, kind, level)
    this.#cache.set(block, node)
    return node
  }

  create(kind: 'interior' | 'leaf', level: number): { block: number, node: ThinNode } {
    const block = this.meta.allocate()
    const node = emptyThinNode(kind, level)
    this.#cache.set(block, node)
    this.#dirty.add(block)
    return { block, node }
  }

  /** A block holding `block`'s content that this transaction may change in place. */
  async shadow(block: number, kind: 'interior' | 'leaf', level: number): Promise<{ block: number, node: ThinNode }> {
    const node = await this.get(block, kind, level)
    if (this.meta.allocatedHere(block) && this.meta.refs(block) === 1) return { block, node }
    const copy = this.create(kind, level)
    copy.node.hi.set(node.hi)
    copy.node.lo.set(node.lo)
    if (this.meta.refs(block) > 1) {
      this.#shareChildren(copy.node)
      this.meta.dec(block)
    } else {
      // The copy inherits the children's references; the old block is free after commit.
      this.meta.dec(block)
      this.#forget(block)
    }
    return copy
  }

  #shareChildren(node: ThinNode): void {
    for (let i = 0; i < node.hi.length; i++) {
      if (node.kind === 'leaf') {
        if (node.hi[i] !== 0) this.data.inc(node.hi[i]! - 1)
      } else if (node.lo[i] !== 0) {
        this.meta.inc(node.lo[i]!)
      }
    }
  }

  /** Drops one reference to a subtree, freeing what nobody else references. */
  async release(block: number, kind: 'interior' | 'leaf', level: number): Promise<void> {
    if (this.meta.refs(block) > 1) {
      this.meta.dec(block)
      return
    }
    const node = await this.get(block, kind, level)
    for (let i = 0; i < node.hi.length; i++) {
      if (kind === 'leaf') {
        if (node.hi[i] !== 0) this.data.dec(node.hi[i]! - 1)
      } else if (node.lo[i] !== 0) {
        await this.release(node.lo[i]!, level === 1 ? 'leaf' : 'interior', level - 1)
      }
    }
    this.meta.dec(block)
    this.#forget(block)
  }

  #forget(block: number): void {
    this.#cache.delete(block)
    this.#dirty.delete(block)
  }

  /** Writes every changed node (stamped with `transaction`); the caller flushes. */
  async writeDirty(transaction: number): Promise<void> {
    const blocks = [...this.#dirty].sort((a, b) => a - b)
    for (const block of blocks) {
      await this.device.write(encodeThinNode(this.#cache.get(block)!, block, transaction), block * THIN_BLOCK_BYTES)
    }
    this.#dirty.clear()
  }

  /** Forgets cached nodes (after an aborted transaction, to re-read the committed state). */
  clear(): void {
    this.#cache.clear()
    this.#dirty.clear()
  }
}
