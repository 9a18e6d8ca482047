/**
 * Loop devices bound over a PV byte range (native/loop-device.cc), and who holds one.
 * The kernel block path of linear LVs (docs/block-devices.md) is built on these.
 *
 * A device is bound with autoclear and its fd stays with the caller: closing that fd detaches
 * the device at once when nobody else has it open, and at their last close otherwise. The
 * kernel cannot take an open loop device away from its users, so "who holds it" is asked
 * before anything that needs the device gone.
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { nativeAddon, type LoopStatus } from '../native/index.js'

export interface LoopDevice {
  readonly number: number
  /** /dev/loopN */
  readonly path: string
  /** The caller's fd of the device: closing it releases the device (see releaseLoop). */
  readonly fd: number
}

export interface LoopRange {
  /** A regular file or block device. */
  readonly backingPath: string
  readonly offsetBytes: number
  readonly sizeBytes: number
  readonly readOnly: boolean
  /** Stored in the device's lo_file_name (at most 63 bytes), to recognise it later. */
  readonly name: string
}

const sysBlock = (number: number): string => `/sys/block/loop${number}`

export function loopPath(number: number): string {
  return `/dev/loop${number}`
}

/** Binds a free loop device over `range` with direct I/O. */
export function attachLoop(range: LoopRange): LoopDevice {
  const backingFd = openSync(range.backingPath, range.readOnly ? 'r' : 'r+')
  try {
    const { fd, number } = nativeAddon().loopAttach({ backingFd, offsetBytes: range.offsetBytes,
      sizeBytes: range.sizeBytes, readOnly: range.readOnly, name: range.name })
    return { number, path: loopPath(number), fd }
  } finally {
    closeSync(backingFd)
  }
}

export function loopStatus(device: LoopDevice): LoopStatus {
  return nativeAddon().loopStatus(device.fd)
}

export function resizeLoop(device: LoopDevice, sizeBytes: number): void {
  nativeAddon().loopResize(device.fd, sizeBytes)
}

/** Whether loop device `number` is bound to a backing file now. */
export function isBound(number: number): boolean {
  return existsSync(join(sysBlock(number), 'loop'))
}

/**
 * Opens the bound loop device `number` and returns it with its status, or undefined when it is
 * not bound (any more). For taking over a device a killed daemon left held by its users.
 */
export function openBoundLoop(number: number,
  readOnly: boolean): { device: LoopDevice; status: LoopStatus } | undefined {
  if (!isBound(number)) return undefined
  let fd: number
  try {
    fd = openSync(loopPath(number), readOnly ? 'r' : 'r+')
  } catch {
    return undefined
  }
  const device = { number, path: loopPath(number), fd }
  try {
    return { device, status: loopStatus(device) }
  } catch {
    closeSync(fd)
    return undefined
  }
}

/** Numbers of the loop devices bound now. */
export function boundLoopNumbers(): number[] {
  let names: string[]
  try {
    names = readdirSync('/sys/block')
  } catch {
    return []
  }
  return names.flatMap((name) => {
    const match = /^loop(\d+)$/.exec(name)
    return match !== null && isBound(Number(match[1])) ? [Number(match[1])] : []
  })
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim()
  } catch {
    return undefined
  }
}

/**
 * Who holds loop device `number` open, besides `ownFd` of this process: processes with an fd of
 * it, file systems mounted from it (in this mount namespace), swap on it, other loop devices
 * over it, and kernel holders. What `fuser -vm` and `lsblk` would show; each entry says which.
 */
export function loopHolders(number: number, ownFd?: number): string[] {
  const path = loopPath(number)
  const holders: string[] = []
  const devNumber = readText(join(sysBlock(number), 'dev'))
  if (devNumber !== undefined) {
    for (const line of (readText('/proc/self/mountinfo') ?? '').split('\n')) {
      const fields = line.split(' ')
      if (fields[2] === devNumber) holders.push(`a file system mounted at ${fields[4]?.replace(/\\040/g, ' ')}`)
    }
  }
  for (const line of (readText('/proc/swaps') ?? '').split('\n').slice(1)) {
    if (line.split(/\s+/)[0] === path) holders.push('swap')
  }
  try {
    for (const holder of readdirSync(join(sysBlock(number), 'holders'))) holders.push(`the kernel device ${holder}`)
  } catch { /* no holders directory */ }
  for (const other of boundLoopNumbers()) {
    if (other !== number && readText(join(sysBlock(other), 'loop', 'backing_file')) === path) {
      holders.push(`loop device ${loopPath(other)}`)
    }
  }
  let pids: string[] = []
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name))
  } catch { /* no /proc */ }
  for (const pid of pids) {
    let fds: string[]
    try {
      fds = readdirSync(`/proc/${pid}/fd`)
    } catch {
      continue
    }
    for (const fd of fds) {
      if (Number(pid) === process.pid && Number(fd) === ownFd) continue
      let target: string
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`)
      } catch {
        continue
      }
      if (target === path) {
        const command = readText(`/proc/${pid}/comm`) ?? '?'
        holders.push(`process ${pid} (${command})`)
        break
      }
    }
  }
  return holders
}

/**
 * Closes the caller's fd of `device`. 'detached': the device is unbound now; 'pending': someone
 * opened it meanwhile, and it detaches at their last close.
 */
export async function releaseLoop(device: LoopDevice): Promise<'detached' | 'pending'> {
  closeSync(device.fd)
  for (let wait = 0; wait < 50; wait++) {
    if (!isBound(device.number)) return 'detached'
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return isBound(device.number) ? 'pending' : 'detached'
}
