/**
 * The open PVs of an online VG. A PV that is MISSING or REMOVED has no entry: its device is
 * closed when it goes, so "reachable" and "has a runtime" are the same question everywhere.
 */
import type { BlockDevice, OpenOptions } from '../io/index.js'
import type { PvLabel } from '../format/index.js'

export type DeviceOpener = (path: string, options: OpenOptions) => Promise<BlockDevice>

export interface PvRuntime {
  readonly device: BlockDevice
  readonly label: PvLabel
}

export class PvSet {
  readonly #runtimes = new Map<string, PvRuntime>()

  constructor(initial: Iterable<PvRuntime> = []) {
    for (const runtime of initial) this.add(runtime)
  }

  get size(): number { return this.#runtimes.size }

  get(pvId: string): PvRuntime | undefined { return this.#runtimes.get(pvId) }

  has(pvId: string): boolean { return this.#runtimes.has(pvId) }

  /** pvId and runtime of every open PV (a copy: callers may drop PVs while iterating). */
  entries(): Array<[string, PvRuntime]> { return [...this.#runtimes] }

  runtimes(): PvRuntime[] { return [...this.#runtimes.values()] }

  byPath(path: string): PvRuntime | undefined {
    return this.runtimes().find((runtime) => runtime.device.path === path)
  }

  add(runtime: PvRuntime): void {
    this.#runtimes.set(runtime.label.pvId, runtime)
  }

  /** Removes a PV without closing it: the caller takes over its device (vgreduce relabels it). */
  detach(pvId: string): PvRuntime | undefined {
    const runtime = this.#runtimes.get(pvId)
    this.#runtimes.delete(pvId)
    return runtime
  }

  /** Removes a PV and closes its device; a close error does not matter, the PV is gone. */
  async drop(pvId: string): Promise<void> {
    await this.detach(pvId)?.device.close().catch(() => undefined)
  }

  async closeAll(): Promise<void> {
    const all = this.runtimes()
    this.#runtimes.clear()
    await Promise.all(all.map((runtime) => runtime.device.close().catch(() => undefined)))
  }
}
