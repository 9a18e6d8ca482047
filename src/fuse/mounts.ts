/**
 * Finding and detaching FUSE mounts: a daemon killed with -9 leaves its mount in the table,
 * answering ENOTCONN, and mounting over it would stack a second mount. Detach it first.
 */
import { readFileSync, statfsSync } from 'node:fs'
import { resolve } from 'node:path'
import { LvmfsError } from '../errors/index.js'
import { unmountPath } from './native-session.js'

export interface MountEntry {
  readonly mountpoint: string
  readonly fstype: string
  readonly source: string
}

function unescapeMountinfo(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(parseInt(octal, 8)))
}

export function listMounts(): MountEntry[] {
  const text = readFileSync('/proc/self/mountinfo', 'utf8')
  const entries: MountEntry[] = []
  for (const line of text.split('\n')) {
    if (!line) continue
    const [left, right] = line.split(' - ')
    if (!left || !right) continue
    const fields = left.split(' ')
    const rightFields = right.split(' ')
    entries.push({ mountpoint: unescapeMountinfo(fields[4] ?? ''), fstype: rightFields[0] ?? '',
      source: unescapeMountinfo(rightFields[1] ?? '') })
  }
  return entries
}

export function mountsAt(path: string): MountEntry[] {
  const absolute = resolve(path)
  return listMounts().filter((entry) => entry.mountpoint === absolute)
}

/**
 * True when `path` is a mount whose FUSE daemon is gone (the connection answers ENOTCONN, or
 * ECONNABORTED while an io_uring transport's queues are torn down). statfs always reaches the daemon,
 * whereas stat may be answered from cached attributes.
 */
export function isDeadFuseMount(path: string): boolean {
  try {
    statfsSync(path)
    return false
  } catch (error) {
    // ECONNABORTED: a request queued on a FUSE-over-io_uring queue when the rings went away.
    const code = (error as NodeJS.ErrnoException).code
    return code === 'ENOTCONN' || code === 'ECONNABORTED'
  }
}

/**
 * Detaches every dead FUSE mount stacked at `path`. Returns how many were detached. A live
 * mount is left alone unless `force`, since another daemon serves it.
 */
export function cleanupMountpoint(path: string, options: { force?: boolean } = {}): number {
  let detached = 0
  for (const entry of mountsAt(path).reverse()) {
    if (!entry.fstype.startsWith('fuse')) continue
    if (!options.force && !isDeadFuseMount(path)) {
      throw new LvmfsError('ENGINE_BUSY', `"${path}" is a live ${entry.fstype} mount`, {
        hint: 'Unmount it first (lvmfs umount), or pass --force to detach it anyway.',
      })
    }
    const result = unmountPath(resolve(path), true)
    if (result !== 0) {
      throw new LvmfsError('FUSE_MOUNT_FAILED', `cannot detach "${path}"`, {
        detail: `umount2 failed with errno ${-result}.`,
      })
    }
    detached++
  }
  return detached
}
