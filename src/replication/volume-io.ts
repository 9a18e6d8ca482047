/**
 * Raw I/O on LVs for the replication engine, at LV byte offsets (a replica's data starts one
 * partition in, after its metadata partition). Goes through the mirror engine's MirroredLv, so
 * mirrored LVs keep their MWC and stale-marking guarantees. Handles are opened lazily, one per
 * LV, and closed by closeAll().
 */
import type { LvDescriptor } from '../lvm/index.js'
import type { MirrorEngine, MirroredLv } from '../mirror/index.js'

export class VolumeIo {
  readonly #handles = new Map<string, { engine: MirrorEngine, handle: MirroredLv }>()
  /** Bytes written through this object (tests assert constant-time creation with it). */
  writtenBytes = 0

  #handle(engine: MirrorEngine, lv: LvDescriptor): MirroredLv {
    const key = `${engine.vg.vgId}:${lv.lvId}`
    let entry = this.#handles.get(key)
    if (entry === undefined || entry.engine !== engine) {
      entry = { engine, handle: engine.open(lv.name) }
      this.#handles.set(key, entry)
    }
    return entry.handle
  }

  async read(engine: MirrorEngine, lv: LvDescriptor, buffer: Uint8Array, offsetBytes: number): Promise<void> {
    await this.#handle(engine, lv).read(buffer, offsetBytes)
  }

  async write(engine: MirrorEngine, lv: LvDescriptor, data: Uint8Array, offsetBytes: number): Promise<void> {
    await this.#handle(engine, lv).write(data, offsetBytes)
    this.writtenBytes += data.length
  }

  async flush(engine: MirrorEngine, lv: LvDescriptor): Promise<void> {
    await this.#handle(engine, lv).flush()
  }

  /** Forgets the handle of a removed LV (it must not be flushed any more). */
  forget(engine: MirrorEngine, lvId: number): void {
    this.#handles.delete(`${engine.vg.vgId}:${lvId}`)
  }

  /** Closes (flushing) the handle of an LV about to be removed. */
  async closeOne(engine: MirrorEngine, lvId: number): Promise<void> {
    const key = `${engine.vg.vgId}:${lvId}`
    const entry = this.#handles.get(key)
    this.#handles.delete(key)
    if (entry !== undefined && engine.vg.state === 'online') await entry.handle.close().catch(() => undefined)
  }

  async closeAll(): Promise<void> {
    const entries = [...this.#handles.values()]
    this.#handles.clear()
    for (const { engine, handle } of entries) {
      if (engine.vg.state === 'online') await handle.close().catch(() => undefined)
    }
  }
}
