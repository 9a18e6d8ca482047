/**
 * LVs with a copy on a remote PV (NBD) are served in TypeScript: the native data path moves
 * bytes only between file descriptors, and a remote PV has none. Their FUSE requests reach the
 * mirror engine's in-process LV (MirroredLv), which keeps the same rules as the native path
 * (MWC pins, write-intent bitmap, stale marking and failover, MISSING after repeated errors).
 *
 * One writable handle per LV serves every FUSE handle of it; fsync flushes it, and it is closed
 * (flushed, passive dirty flag cleared) when the LV stops being served or the daemon stops.
 */
import type { LvDescriptor, VolumeGroup } from '../lvm/index.js'
import type { MirrorEngine, MirroredLv } from '../mirror/index.js'
import type { VolumeIoHandler } from './volume-fs.js'

/** True when a copy of `lv` lies on a PV whose open device is remote. */
export function hasRemoteCopy(vg: VolumeGroup, lv: LvDescriptor): boolean {
  return lv.lps.some((copies) => copies.some((copy) => vg.device(copy.pvIndex)?.kind === 'remote'))
}

export class RemoteLvs {
  readonly #handles = new Map<number, MirroredLv>()

  constructor(private readonly engine: MirrorEngine) {}

  /** The I/O of `lv` through its shared handle (opened on first use). */
  ioOf(lv: LvDescriptor): VolumeIoHandler {
    return {
      read: (target, offsetBytes) => this.#handle(lv).read(target, offsetBytes),
      write: (data, offsetBytes) => this.#handle(lv).write(data, offsetBytes),
      // Discard is no write: zeros go to every copy, so copies stay equal.
      discard: async (offsetBytes, lengthBytes) => {
        const zeros = new Uint8Array(Math.min(lengthBytes, 1 << 20))
        for (let done = 0; done < lengthBytes; done += zeros.length) {
          const length = Math.min(zeros.length, lengthBytes - done)
          await this.#handle(lv).write(zeros.subarray(0, length), offsetBytes + done)
        }
      },
    }
  }

  serves(lv: LvDescriptor): boolean {
    return this.#handles.has(lv.lvId)
  }

  async flush(lv: LvDescriptor): Promise<void> {
    await this.#handles.get(lv.lvId)?.flush()
  }

  /** Closes the handles of LVs not in `keep` (all when absent). */
  async close(keep?: ReadonlySet<number>): Promise<void> {
    const closing = [...this.#handles].filter(([lvId]) => keep === undefined || !keep.has(lvId))
    for (const [lvId] of closing) this.#handles.delete(lvId)
    await Promise.all(closing.map(([, handle]) => handle.close()))
  }

  #handle(lv: LvDescriptor): MirroredLv {
    let handle = this.#handles.get(lv.lvId)
    if (handle === undefined) {
      handle = this.engine.open(lv.name)
      this.#handles.set(lv.lvId, handle)
    }
    return handle
  }
}
