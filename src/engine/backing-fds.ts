/**
 * The fds the native data path uses for each PV: opened separately from the VG's metadata
 * devices, with O_DIRECT by default so volume data is not cached twice (the kernel already
 * caches above the volume). Keyed by device path, so PV index shifts and returning PVs are
 * handled by asking again.
 */
import { closeSync, constants, openSync } from 'node:fs'
import { setFdFault } from '../fuse/native-session.js'

export type FaultMode = 'fail-writes' | 'fail-reads' | 'disappear' | 'clear'

const FAULT_MASK: Record<FaultMode, number> = { 'fail-reads': 1, 'fail-writes': 2, disappear: 3, clear: 0 }

export class BackingFds {
  private readonly fds = new Map<string, number>()

  constructor(private readonly direct: boolean) {}

  fdFor(path: string): number {
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

  setFault(path: string, mode: FaultMode): void {
    setFdFault(this.fdFor(path), FAULT_MASK[mode])
  }

  allFds(): number[] {
    return [...this.fds.values()]
  }

  closeAll(): void {
    for (const fd of this.fds.values()) {
      setFdFault(fd, 0)
      closeSync(fd)
    }
    this.fds.clear()
  }
}
