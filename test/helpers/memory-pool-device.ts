/**
 * A PoolDevice in memory whose writes become durable only at flush, as on a disk with a
 * volatile cache: `crash()` keeps the durable image plus a random subset of the writes since
 * the last flush (each write whole or not at all), in any order.
 */
import type { PoolDevice } from '../../src/thin/index.js'

export class MemoryPoolDevice implements PoolDevice {
  readonly durable: Uint8Array
  #live: Uint8Array
  #pending: Array<{ offset: number, data: Uint8Array }> = []
  writes = 0
  flushes = 0
  /** Writes and flushes left before the power goes (undefined: it never does). */
  powerLeft: number | undefined

  constructor(readonly sizeBytes: number) {
    this.durable = new Uint8Array(sizeBytes)
    this.#live = new Uint8Array(sizeBytes)
  }

  async read(target: Uint8Array, offsetBytes: number): Promise<void> {
    this.#check(offsetBytes, target.length)
    target.set(this.#live.subarray(offsetBytes, offsetBytes + target.length))
  }

  #spend(): void {
    if (this.powerLeft === undefined) return
    if (this.powerLeft <= 0) throw new Error('power lost')
    this.powerLeft--
  }

  async write(data: Uint8Array, offsetBytes: number): Promise<void> {
    this.#check(offsetBytes, data.length)
    this.#spend()
    this.#live.set(data, offsetBytes)
    this.#pending.push({ offset: offsetBytes, data: Uint8Array.from(data) })
    this.writes++
  }

  async flush(): Promise<void> {
    this.#spend()
    for (const { offset, data } of this.#pending) this.durable.set(data, offset)
    this.#pending = []
    this.flushes++
  }

  /** Loses the cache: keeps each unflushed write with probability 1/2 (from `random`). */
  crash(random: () => number): void {
    const kept = this.#pending.filter(() => random() < 0.5)
    for (const { offset, data } of kept) this.durable.set(data, offset)
    this.#pending = []
    this.#live = Uint8Array.from(this.durable)
    this.powerLeft = undefined
  }

  #check(offset: number, length: number): void {
    if (offset < 0 || offset + length > this.sizeBytes) throw new RangeError(`I/O at ${offset}+${length} beyond ${this.sizeBytes}`)
  }
}
