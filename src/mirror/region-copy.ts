/**
 * Copying one range of an LP from a source copy to target copies: the step shared by resync,
 * MWC recovery, passive resync-on-read and scrub repair. The caller holds the region lock.
 *
 * The bytes move natively when every device involved has an fd the native code may use (PV
 * files, loop and block devices, FaultyDevice wrappers with nothing armed): the addon's
 * `rangeCopy` (native/range-copy.cc) copies on a worker thread, the source read once into an
 * aligned buffer and written to every target at once (or with copy_file_range(2), on request),
 * so no data crosses into JavaScript. Otherwise (MemoryDevice, a FaultyDevice with a fault armed, no
 * addon) the range is read into a buffer and written through `BlockDevice.read/write`, which
 * sees the injected faults.
 */
import { getSystemErrorName } from 'node:util'
import type { LvDescriptor, VolumeGroup } from '../lvm/index.js'
import { FaultyDevice, ioError, type BlockDevice } from '../io/index.js'
import { LvmfsError } from '../errors/index.js'
import { nativeAddon, type NativeAddon } from '../native/index.js'
import { assert } from '../util/index.js'

/** How copyRange moves bytes: 'auto' (native when possible, the buffer method), a native method
 * named, or 'typescript' (always through BlockDevice read/write: the pre-native path). */
export type CopyMethod = 'auto' | 'copy_file_range' | 'buffer' | 'typescript'

export interface CopyOutcome {
  /** Targets whose write failed (the caller decides what to mark). */
  readonly failedTargets: number[]
  /** Bytes written, summed over targets that succeeded. */
  readonly copiedBytes: number
  /** True when the native copier moved the bytes. */
  readonly native: boolean
}

export function copyAddress(vg: VolumeGroup, lv: LvDescriptor, lp: number, copyIndex: number,
  offsetInLpBytes: number): { device: NonNullable<ReturnType<VolumeGroup['device']>>, offsetBytes: number } {
  const copy = lv.lps[lp]?.[copyIndex]
  assert(copy !== undefined, `copy ${copyIndex} of LP ${lp} of LV ${lv.name} does not exist`)
  const device = vg.device(copy.pvIndex)
  if (device === undefined) {
    throw new LvmfsError('LVM_PVSTATE', `PV ${copy.pvIndex} holding copy ${copyIndex} of LP ${lp} is not active`,
      { context: { lv: lv.name, lp, copyIndex, pvIndex: copy.pvIndex } })
  }
  return { device, offsetBytes: vg.ppOffsetBytes(copy.pvIndex, copy.pp) + offsetInLpBytes }
}

/** The fd native code may write for `device`, or -1 when its writes must go through TypeScript. */
export function nativeWriteFd(device: BlockDevice): number {
  if (device instanceof FaultyDevice) return device.writesPassThrough() ? nativeWriteFd(device.inner) : -1
  return device.kind === 'memory' ? -1 : device.fd
}

/** The fd native code may read for `device`, or -1 (as checksum-diff's nativeReadFd). */
function nativeReadFd(device: BlockDevice): number {
  if (device instanceof FaultyDevice) return device.readsPassThrough() ? nativeReadFd(device.inner) : -1
  return device.kind === 'memory' ? -1 : device.fd
}

const directFds = new WeakMap<VolumeGroup, (pvIndex: number) => number | undefined>()

/**
 * A daemon's O_DIRECT backing fds of this VG's PVs (MountedVg): native copies whose offsets and
 * length are 4 KiB-aligned go through them, so copied data is not cached twice (the daemon's
 * data path bypasses the page cache too; buffered copies beside its O_DIRECT fds cost several
 * times the CPU, docs/mirror.md "Copy path"), and the native faults of `lvmfs fault`, set on
 * those fds, apply to resync as to application I/O. Undefined removes them (stop).
 */
export function setDirectCopyFds(vg: VolumeGroup, fdOf: ((pvIndex: number) => number | undefined) | undefined): void {
  if (fdOf === undefined) directFds.delete(vg)
  else directFds.set(vg, fdOf)
}

const DIRECT_ALIGN = 4096
const DIRECT_CHUNK_BYTES = 4 * 1024 * 1024

let copier: NativeAddon['rangeCopy'] | null | undefined

function nativeCopier(): NativeAddon['rangeCopy'] | undefined {
  if (copier === undefined) {
    try {
      const addon = nativeAddon()
      copier = typeof addon.rangeCopy === 'function' ? addon.rangeCopy.bind(addon) : null
    } catch {
      copier = null
    }
  }
  return copier ?? undefined
}

function errnoCause(errno: number): Error {
  let code = 'EIO'
  try {
    code = getSystemErrorName(-Math.abs(errno))
  } catch { /* not an errno: EIO */ }
  return Object.assign(new Error(`${code} (native range copy)`), { code, errno })
}

interface Address {
  readonly device: BlockDevice
  readonly offsetBytes: number
}

/** Reads [offset, offset+length) of `source` (throws on a source error) and writes it to every
 * target (collecting target failures). `buffer` is scratch space of at least `lengthBytes` for
 * the TypeScript path (allocated when absent and needed). */
export async function copyRange(vg: VolumeGroup, lv: LvDescriptor, range: {
  lp: number, offsetInLpBytes: number, lengthBytes: number, source: number, targets: readonly number[],
}, buffer?: Buffer, method: CopyMethod = 'auto', writeback = true): Promise<CopyOutcome> {
  assert(buffer === undefined || buffer.length >= range.lengthBytes, 'copy buffer too small')
  assert(!range.targets.includes(range.source), 'a copy is never its own target')
  const from = copyAddress(vg, lv, range.lp, range.source, range.offsetInLpBytes)
  const failedTargets: number[] = []
  const to: Array<{ target: number, at: Address }> = []
  for (const target of range.targets) {
    try {
      to.push({ target, at: copyAddress(vg, lv, range.lp, target, range.offsetInLpBytes) })
    } catch {
      failedTargets.push(target)
    }
  }
  const nativeMethod = method === 'typescript' ? undefined : method
  const native = nativeMethod === undefined ? undefined : nativeCopier()
  const fits = (at: Address): boolean => at.offsetBytes + range.lengthBytes <= at.device.sizeBytes
  if (native !== undefined && range.lengthBytes > 0 && to.length > 0 && nativeReadFd(from.device) >= 0 &&
      fits(from) && to.every(({ at }) => nativeWriteFd(at.device) >= 0 && fits(at))) {
    const copies = lv.lps[range.lp]!
    const direct = directFds.get(vg)
    const aligned = range.lengthBytes % DIRECT_ALIGN === 0 && from.offsetBytes % DIRECT_ALIGN === 0 &&
      to.every(({ at }) => at.offsetBytes % DIRECT_ALIGN === 0)
    const directOf = (copyIndex: number): number => {
      const fd = aligned ? direct?.(copies[copyIndex]!.pvIndex) : undefined
      return fd === undefined || fd < 0 ? -1 : fd
    }
    const useDirect = directOf(range.source) >= 0 && to.every(({ target }) => directOf(target) >= 0)
    const result = await native(useDirect ? directOf(range.source) : nativeReadFd(from.device), from.offsetBytes,
      range.lengthBytes, to.map(({ target, at }) => useDirect ? directOf(target) : nativeWriteFd(at.device)),
      to.map(({ at }) => at.offsetBytes),
      { ...(nativeMethod === undefined || nativeMethod === 'auto' ? {} : { method: nativeMethod }),
        ...(writeback && !useDirect ? {} : { writeback: false }),
        ...(useDirect ? { chunkBytes: DIRECT_CHUNK_BYTES } : {}) })
    if (result.sourceErrno !== 0) {
      throw ioError('read', from.device.path, from.offsetBytes, range.lengthBytes, errnoCause(result.sourceErrno))
    }
    let copiedBytes = 0
    result.targets.forEach((outcome, index) => {
      if (outcome.errno === 0 && outcome.copiedBytes === range.lengthBytes) copiedBytes += range.lengthBytes
      else failedTargets.push(to[index]!.target)
    })
    return { failedTargets, copiedBytes, native: true }
  }
  const data = (buffer ?? Buffer.alloc(range.lengthBytes)).subarray(0, range.lengthBytes)
  await from.device.read(data, from.offsetBytes)
  let copiedBytes = 0
  await Promise.all(to.map(async ({ target, at }) => {
    try {
      await at.device.write(data, at.offsetBytes)
      copiedBytes += range.lengthBytes
    } catch {
      failedTargets.push(target)
    }
  }))
  return { failedTargets, copiedBytes, native: false }
}

/** Syncs the devices holding the given copies of an LP; returns the copies whose sync failed. */
export async function syncCopies(vg: VolumeGroup, lv: LvDescriptor, lp: number,
  copies: readonly number[]): Promise<number[]> {
  const failed: number[] = []
  const byPv = new Map<number, number[]>()
  for (const copyIndex of copies) {
    const copy = lv.lps[lp]?.[copyIndex]
    assert(copy !== undefined, `copy ${copyIndex} of LP ${lp} does not exist`)
    byPv.set(copy.pvIndex, [...(byPv.get(copy.pvIndex) ?? []), copyIndex])
  }
  await Promise.all([...byPv.entries()].map(async ([pvIndex, indexes]) => {
    try {
      const device = vg.device(pvIndex)
      if (device === undefined) throw new Error(`PV ${pvIndex} not active`)
      await device.sync()
    } catch {
      failed.push(...indexes)
    }
  }))
  return failed
}
