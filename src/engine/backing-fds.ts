/**
 * The fds the native data path uses for each PV: opened separately from the VG's metadata
 * devices, with O_DIRECT by default so volume data is not cached twice (the kernel already
 * caches above the volume). Keyed by device path, so PV index shifts and returning PVs are
 * handled by asking again.
 */
import { closeSync, constants, openSync } from 'node:fs'
import { FaultBit, setFdFault } from '../fuse/index.js'
import { isRemoteDevicePath } from '../io/index.js'

export type FaultMode = 'fail-writes' | 'fail-reads' | 'disappear' | 'fail-fsync' | 'clear'

/** Byte range [offsetBytes, offsetBytes + lengthBytes) of a PV file or device. */
export interface ByteRange {
  readonly offsetBytes: number
  readonly lengthBytes: number
}

const FAULT_MASK: Record<FaultMode, number> = {
  'fail-reads': FaultBit.READ,
  'fail-writes': FaultBit.WRITE,
  disappear: FaultBit.READ | FaultBit.WRITE,
  'fail-fsync': FaultBit.SYNC,
  clear: 0,
}

export class BackingFds {
  private readonly fds = new Map<string, number>()
  /** Remote PVs' token fds by path (their connections are the devices' own; never closed here). */
  private readonly remote = new Map<string, number>()

  constructor(private readonly direct: boolean) {}

  /** A remote PV's token fd (BlockDevice.dataToken), for fdFor and faults; a reconnected PV
   * registers its new one. */
  registerRemote(path: string, token: number): void {
    this.remote.set(path, token)
  }

  /** The data fd of the PV at `path`: a remote PV's token, or -1 before it is registered. */
  fdFor(path: string): number {
    if (isRemoteDevicePath(path)) return this.remote.get(path) ?? -1
    let fd = this.fds.get(path)
    if (fd !== undefined) return fd
    try {
      fd = openSync(path, constants.O_RDWR | (this.direct ? constants.O_DIRECT : 0))
    } catch (error) {
      // tmpfs and a few others refuse O_DIRECT: serve through the page cache there.
      if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error
      fd = openSync(path, constants.O_RDWR)
    }
    this.fds.set(path, fd)
    return fd
  }

  /**
   * Adds a fault on the PV's data fd, on `ranges` (PV byte offsets; default the whole PV).
   * Faults add up; 'clear' removes every fault of the PV. A sync fault ('fail-fsync') fails
   * every fsync of the fd whatever its range, so callers pass none.
   */
  setFault(path: string, mode: FaultMode, ranges?: readonly ByteRange[]): void {
    const fd = this.fdFor(path)
    if (fd < 0) return
    const mask = FAULT_MASK[mode]
    if (mask === 0 || ranges === undefined) {
      setFdFault(fd, mask)
      return
    }
    for (const range of ranges) setFdFault(fd, mask, range.offsetBytes, range.lengthBytes)
  }

  allFds(): number[] {
    return [...this.fds.values()]
  }

  closeAll(): void {
    for (const token of this.remote.values()) setFdFault(token, 0)
    this.remote.clear()
    for (const fd of this.fds.values()) {
      setFdFault(fd, 0)
      closeSync(fd)
    }
    this.fds.clear()
  }
}
