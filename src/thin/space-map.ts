/**
 * Reference counts and allocation of one kind of pool block (metadata or data). The counts are
 * derived state: opening a pool walks the committed trees and counts every reference, so they
 * can never disagree with the mappings on disk (docs/thin.md § "Why the counts are not stored").
 *
 * A block the committed state uses is never reused before the next commit: a crash must find
 * the committed trees and data intact. So a block freed in this transaction waits in `#freedHere`
 * until commit, while a block allocated and freed inside one transaction is free at once.
 */
import { LvmfsError, type ErrorCode } from '../errors/index.js'

export class SpaceMap {
  #refs: Uint32Array
  readonly #allocatedHere = new Set<number>()
  readonly #freedHere = new Set<number>()
  #cursor: number
  #used = 0

  constructor(blocks: number, private readonly reservedLow: number, private readonly fullCode: ErrorCode,
    private readonly what: string) {
    this.#refs = new Uint32Array(blocks)
    this.#cursor = reservedLow
  }

  get blocks(): number {
    return this.#refs.length
  }

  /** Blocks referenced now, or still held for the committed state. */
  get used(): number {
    return this.#used + this.#freedHere.size
  }

  get free(): number {
    return this.blocks - this.reservedLow - this.used
  }

  refs(block: number): number {
    return this.#refs[block]!
  }

  /** Blocks freed in this transaction, held until it commits. */
  get freedHere(): number {
    return this.#freedHere.size
  }

  allocatedHere(block: number): boolean {
    return this.#allocatedHere.has(block)
  }

  /** Counts one more reference found by the opening walk (or taken by sharing). */
  inc(block: number): void {
    if (this.#refs[block] === 0) this.#used++
    this.#refs[block]!++
  }

  /** Drops one reference; true when the block became unreferenced. */
  dec(block: number): boolean {
    if (this.#refs[block] === 0) throw new RangeError(`${this.what} block ${block} has no reference to drop`)
    if (--this.#refs[block]! > 0) return false
    this.#used--
    if (this.#allocatedHere.delete(block)) return true
    this.#freedHere.add(block)
    return true
  }

  allocate(): number {
    const blocks = this.blocks
    for (let scanned = 0; scanned < blocks - this.reservedLow; scanned++) {
      const block = this.#cursor
      this.#cursor = this.#cursor + 1 >= blocks ? this.reservedLow : this.#cursor + 1
      if (this.#refs[block] === 0 && !this.#freedHere.has(block)) {
        this.#refs[block] = 1
        this.#used++
        this.#allocatedHere.add(block)
        return block
      }
    }
    throw new LvmfsError(this.fullCode, `the thin pool has no free ${this.what} block`, {
      detail: `All ${blocks - this.reservedLow} ${this.what} blocks are in use or held until the next commit.`,
      hint: this.what === 'data' ? 'Extend the pool (lvextend VG/POOL) or discard unused blocks (fstrim).'
        : 'Remove snapshots or thin LVs you no longer need.',
      context: { blocks, used: this.used },
    })
  }

  /** The transaction committed: its freed blocks may be reused, its allocations are old. */
  committed(): void {
    this.#freedHere.clear()
    this.#allocatedHere.clear()
  }

  /** Adds blocks at the end (the pool grew). */
  grow(blocks: number): void {
    if (blocks < this.blocks) throw new RangeError('a space map never shrinks')
    const refs = new Uint32Array(blocks)
    refs.set(this.#refs)
    this.#refs = refs
  }
}
