/**
 * Exclusive claims on PVs, so two processes cannot both vary on the same PV unknowingly.
 *
 * Block devices are opened with O_EXCL (the kernel refuses a second exclusive open). Regular
 * files have no such thing and Node has no flock(2), so a claim is a lock file created with
 * O_CREAT|O_EXCL in the lock directory, named after the file's (device, inode) pair so two
 * paths to one file (hard links, symlinks, bind mounts) collide. The file holds the owner pid.
 *
 * Stale claims: a lock file whose pid is not alive (kill(pid, 0) fails with ESRCH), or whose
 * pid is this process but which this process does not hold (left over from a reused pid), is
 * removed and the claim retried once. Limitation: a claim is advisory and local to one host
 * (lock directory on local tmpfs); it does not protect PVs shared between hosts (that is the
 * DLM's job).
 *
 * Errors: the directory cannot be created/opened → LVM_MAPFOPN; a lock file cannot be
 * read/written → LVM_MAPFRDWR; held by a live process → ENGINE_BUSY with context.pid.
 */
import { mkdirSync, openSync, readFileSync, unlinkSync, writeSync, closeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LvmfsError } from '../errors/index.js'

const held = new Set<string>()

export function lockDirectory(): string {
  const fromEnv = process.env['LVMFS_LOCK_DIR']
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv
  return process.getuid?.() === 0 ? '/run/lvmfs/locks' : join(tmpdir(), `lvmfs-locks-${process.getuid?.()}`)
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM'
  }
  // A killed daemon whose parent has not reaped it yet is a zombie: signal 0 still succeeds, but
  // it holds nothing any more (its fds are closed).
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return true
  }
}

export interface DeviceClaim {
  readonly lockPath: string
  release(): void
}

/** Claims the file identified by (dev, ino); `path` is for messages only. */
export function claimFile(path: string, dev: number | bigint, ino: number | bigint): DeviceClaim {
  const dir = lockDirectory()
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
  } catch (cause) {
    throw new LvmfsError('LVM_MAPFOPN', `cannot create the lock directory "${dir}"`, {
      hint: 'Set LVMFS_LOCK_DIR to a writable directory on a local file system.', cause,
      context: { lockDir: dir },
    })
  }
  const lockPath = join(dir, `pv-${dev}-${ino}.lock`)
  for (let attempt = 0; attempt < 2; attempt++) {
    if (tryCreate(lockPath)) {
      held.add(lockPath)
      return { lockPath, release: () => release(lockPath) }
    }
    const owner = readOwner(lockPath)
    if (owner !== undefined && pidAlive(owner) && (owner !== process.pid || held.has(lockPath))) {
      throw new LvmfsError('ENGINE_BUSY', `"${path}" is in use by process ${owner}`, {
        detail: `The lock file ${lockPath} names a live process.`,
        hint: 'Vary off the volume group in that process first (or stop its daemon).',
        context: { path, pid: owner, lockPath },
      })
    }
    try {
      unlinkSync(lockPath)
    } catch { /* raced with another cleaner; retry creating */ }
  }
  throw new LvmfsError('ENGINE_BUSY', `"${path}" is being claimed by another process`, {
    context: { path, lockPath },
  })
}

function tryCreate(lockPath: string): boolean {
  let fd: number
  try {
    fd = openSync(lockPath, 'wx', 0o600)
  } catch (cause) {
    if ((cause as { code?: string }).code === 'EEXIST') return false
    throw new LvmfsError('LVM_MAPFOPN', `cannot create the lock file "${lockPath}"`, { cause })
  }
  try {
    writeSync(fd, `${process.pid}\n`)
  } catch (cause) {
    throw new LvmfsError('LVM_MAPFRDWR', `cannot write the lock file "${lockPath}"`, { cause })
  } finally {
    closeSync(fd)
  }
  return true
}

function readOwner(lockPath: string): number | undefined {
  let text: string
  try {
    text = readFileSync(lockPath, 'utf8')
  } catch (cause) {
    if ((cause as { code?: string }).code === 'ENOENT') return undefined
    throw new LvmfsError('LVM_MAPFRDWR', `cannot read the lock file "${lockPath}"`, { cause })
  }
  const pid = Number.parseInt(text.trim(), 10)
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
}

function release(lockPath: string): void {
  if (!held.delete(lockPath)) return
  try {
    unlinkSync(lockPath)
  } catch { /* already gone: nothing to release */ }
}
