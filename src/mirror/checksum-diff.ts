/**
 * Checksum resync (`lvmfs resync VG/LV --checksum`): compare block hashes of the source copy and
 * the target copies over a range of an LP and keep only the blocks where some target differs,
 * so a forced resync of mostly identical copies reads every copy but writes almost nothing.
 *
 * Hashes. Devices with an fd (PV files, loop and block devices, and FaultyDevice wrappers whose
 * reads pass through unchanged) are hashed natively (native/block-hash.cc): XXH3-128 with a
 * fresh random seed per comparison, every copy read on its own native thread at once, in 1 MiB
 * reads, with no data crossing into JavaScript. Otherwise (MemoryDevice, a FaultyDevice with a
 * read fault, flip, latency or disappearance, or an addon built without libxxhash-dev) every
 * copy of the comparison is read through `BlockDevice.read` and hashed with SHA-256 from
 * node:crypto: slower, but it sees the injected faults, and one comparison never mixes two hash
 * functions. SHA-256 was chosen over crc32c (@node-rs/crc32) because a skipped block must be
 * equal with more certainty than corruption detection needs. XXH3-128 is not a cryptographic
 * hash; the per-comparison seed keeps a collision from being prepared in advance against a
 * known seed.
 *
 * Errors. A target that cannot be read differs everywhere in the range (it is rewritten, which
 * is what resync wants); a source that cannot be read fails like resync's own source read:
 * `onCopyError` marks it (stale when another fresh copy remains) and LVM_NOTSYNCED is thrown.
 *
 * The caller holds the range's region lock exclusive (resync's narrowRanges hook), so no write
 * runs between hashing and copying.
 */
import { createHash, randomBytes } from 'node:crypto'
import { getSystemErrorName } from 'node:util'
import type { LvDescriptor } from '../lvm/index.js'
import { FaultyDevice, type BlockDevice } from '../io/index.js'
import { LvmfsError, errnoOf } from '../errors/index.js'
import { nativeAddon, type NativeAddon } from '../native/index.js'
import { assert } from '../util/index.js'
import type { LpRange, MirrorVg } from './mirror-vg.js'
import { copyAddress } from './region-copy.js'

/** Default comparison granularity: the unit a checksum resync writes. */
export const DEFAULT_CHECKSUM_BLOCK_BYTES = 64 * 1024
const FALLBACK_READ_BYTES = 1 << 20
/** Native reads of one range at once (threads of native/block-hash.cc share them). */
const NATIVE_PARTS = 2

export type BlockHashMethod = 'xxh3-128' | 'sha256'

/** Digests of one device range: `digestBytes` bytes per block, concatenated. */
export interface BlockDigests {
  readonly method: BlockHashMethod
  readonly digestBytes: number
  readonly digests: Buffer
}

export interface HashTarget {
  readonly device: BlockDevice
  readonly offsetBytes: number
}

/** The fd native code may read for `device`, or -1 when its reads must go through TypeScript. */
export function nativeReadFd(device: BlockDevice): number {
  if (device instanceof FaultyDevice) return device.readsPassThrough() ? nativeReadFd(device.inner) : -1
  return device.kind === 'memory' ? -1 : device.fd
}

function nativeHasher(): NativeAddon['blockHashes'] {
  try {
    return nativeAddon().blockHashes
  } catch {
    return undefined
  }
}

function errnoError(errno: number, device: BlockDevice, offsetBytes: number, lengthBytes: number): Error {
  let code = 'EIO'
  try {
    code = getSystemErrorName(errno)
  } catch { /* not an errno: EIO */ }
  return Object.assign(new Error(`${code}: reading ${lengthBytes} bytes at ${offsetBytes} of ${device.path}`),
    { code, errno, path: device.path, offsetBytes, lengthBytes })
}

async function sha256Blocks(device: BlockDevice, offsetBytes: number, lengthBytes: number,
  blockBytes: number): Promise<BlockDigests> {
  const blocks = Math.ceil(lengthBytes / blockBytes)
  const digests = Buffer.alloc(blocks * 32)
  const chunkBytes = Math.max(blockBytes, Math.floor(FALLBACK_READ_BYTES / blockBytes) * blockBytes)
  const buffer = Buffer.alloc(Math.min(chunkBytes, lengthBytes))
  let block = 0
  for (let done = 0; done < lengthBytes; done += chunkBytes) {
    const data = buffer.subarray(0, Math.min(chunkBytes, lengthBytes - done))
    await device.read(data, offsetBytes + done)
    for (let at = 0; at < data.length; at += blockBytes) {
      createHash('sha256').update(data.subarray(at, at + blockBytes)).digest().copy(digests, 32 * block++)
    }
  }
  return { method: 'sha256', digestBytes: 32, digests }
}

/**
 * Hashes [offsetBytes, offsetBytes + lengthBytes) of every target in blocks of `blockBytes` (the
 * last block may be short), all at once and with one method. Per target: its digests, or the
 * read error.
 */
export async function hashBlocks(targets: readonly HashTarget[], lengthBytes: number,
  blockBytes = DEFAULT_CHECKSUM_BLOCK_BYTES, options: { forceFallback?: boolean } = {}):
  Promise<Array<BlockDigests | Error>> {
  assert(Number.isSafeInteger(blockBytes) && blockBytes > 0, 'blockBytes must be a positive integer')
  assert(Number.isSafeInteger(lengthBytes) && lengthBytes >= 0, 'lengthBytes must be a non-negative integer')
  const fds = targets.map((target) => nativeReadFd(target.device))
  const native = options.forceFallback === true ? undefined : nativeHasher()
  if (native !== undefined && fds.every((fd) => fd >= 0)) {
    const seed = randomBytes(8).readBigUInt64LE()
    // Each range in NATIVE_PARTS parts (whole blocks) read at once: a deeper queue on the disk.
    const blocks = Math.ceil(lengthBytes / blockBytes)
    const partBytes = Math.max(1, Math.ceil(blocks / NATIVE_PARTS)) * blockBytes
    const parts = targets.flatMap((target, index) => {
      const out = []
      for (let at = 0; at < lengthBytes || (at === 0 && lengthBytes === 0); at += partBytes) {
        out.push({ fd: fds[index]!, offsetBytes: target.offsetBytes + at, lengthBytes: Math.min(partBytes,
          lengthBytes - at) })
        if (lengthBytes === 0) break
      }
      return out.map((part) => ({ index, part }))
    })
    const results = await native(parts.map(({ part }) => part), blockBytes, seed)
    return targets.map((target, index) => {
      const mine = results.filter((_result, position) => parts[position]!.index === index)
      const failed = mine.find((result): result is number => typeof result === 'number')
      if (failed !== undefined) return errnoError(-failed, target.device, target.offsetBytes, lengthBytes)
      return { method: 'xxh3-128', digestBytes: 16, digests: Buffer.concat(mine as Buffer[]) }
    })
  }
  return await Promise.all(targets.map(async (target) => {
    try {
      return await sha256Blocks(target.device, target.offsetBytes, lengthBytes, blockBytes)
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error))
    }
  }))
}

/** Sorted, coalesced ranges of the blocks flagged in `differs`, inside `range`. */
export function blocksToRanges(range: LpRange, blockBytes: number, differs: readonly boolean[]): LpRange[] {
  const out: Array<{ offsetInLpBytes: number, lengthBytes: number }> = []
  const end = range.offsetInLpBytes + range.lengthBytes
  differs.forEach((flag, block) => {
    if (!flag) return
    const start = range.offsetInLpBytes + block * blockBytes
    const lengthBytes = Math.min(blockBytes, end - start)
    const last = out[out.length - 1]
    if (last !== undefined && last.offsetInLpBytes + last.lengthBytes === start) last.lengthBytes += lengthBytes
    else out.push({ offsetInLpBytes: start, lengthBytes })
  })
  return out
}

export interface ChecksumDiff {
  /** Sub-ranges of the range where some target differs from the source (or could not be read). */
  readonly ranges: readonly LpRange[]
  /** Targets that could not be read (their whole range is in `ranges`). */
  readonly unreadableTargets: readonly number[]
}

/**
 * Compares copy `source` of LP `lp` with every target copy over `range` (see the file comment).
 * The caller holds the region lock exclusive.
 */
export async function checksumDiff(mirror: MirrorVg, lv: LvDescriptor, lp: number, source: number,
  targets: readonly number[], range: LpRange, blockBytes = DEFAULT_CHECKSUM_BLOCK_BYTES): Promise<ChecksumDiff> {
  const vg = mirror.vg
  assert(range.offsetInLpBytes >= 0 && range.lengthBytes >= 0 &&
    range.offsetInLpBytes + range.lengthBytes <= vg.ppSizeBytes, `range beyond LP ${lp}`)
  assert(!targets.includes(source), 'a copy is never its own target')
  if (range.lengthBytes === 0 || targets.length === 0) return { ranges: [], unreadableTargets: [] }
  const copies = [source, ...targets]
  const addresses = copies.map((copyIndex) => {
    try {
      return copyAddress(vg, lv, lp, copyIndex, range.offsetInLpBytes)
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error))
    }
  })
  const readable = addresses.flatMap((address, position) => address instanceof Error ? [] : [position])
  const hashed = await hashBlocks(readable.map((position) => addresses[position] as HashTarget), range.lengthBytes,
    blockBytes)
  const results = addresses.map((address, position): BlockDigests | Error =>
    address instanceof Error ? address : hashed[readable.indexOf(position)]!)
  const sourceResult = results[0]!
  if (sourceResult instanceof Error) {
    await mirror.onCopyError(lv, lp, source, errnoOf(sourceResult), false)
    throw new LvmfsError('LVM_NOTSYNCED', `reading the source copy ${source} of LP ${lp} of LV "${lv.name}" failed`,
      { cause: sourceResult, hint: 'The source was marked stale; run the resync again to use another copy.',
        context: { lv: lv.name, lp, source, offsetInLpBytes: range.offsetInLpBytes, lengthBytes: range.lengthBytes } })
  }
  const blocks = Math.ceil(range.lengthBytes / blockBytes)
  const differs = new Array<boolean>(blocks).fill(false)
  const unreadableTargets: number[] = []
  targets.forEach((target, index) => {
    const result = results[index + 1]!
    if (result instanceof Error) {
      unreadableTargets.push(target)
      mirror.logger.warn({ lv: lv.name, lp, target, error: result.message },
        'checksum resync: target copy unreadable; its whole range is rewritten')
      differs.fill(true)
      return
    }
    const size = sourceResult.digestBytes
    for (let block = 0; block < blocks; block++) {
      if (differs[block] === true) continue
      const at = block * size
      if (sourceResult.digests.compare(result.digests, at, at + size, at, at + size) !== 0) differs[block] = true
    }
  })
  return { ranges: blocksToRanges(range, blockBytes, differs), unreadableTargets }
}

/** What a checksum resync compared and found different (bytes summed over target copies). */
export interface ChecksumTotals {
  /** Target bytes compared with the source: range length × targets, per narrowed range. */
  readonly comparedBytes: number
  /** Target bytes found different (or unreadable): what the resync then writes, at most. */
  readonly differingBytes: number
}

/**
 * The `ResyncOptions.narrowRanges` hook of a checksum resync: narrows each range resync is about
 * to copy to the blocks where some target differs, and counts what it compared.
 *
 *   const checksum = new ChecksumNarrower(engine.mirror)
 *   await engine.resyncer({ narrowRanges: checksum.narrowRanges }).resynclv('lv0', true)
 *   checksum.totals()   // { comparedBytes, differingBytes }
 */
export class ChecksumNarrower {
  readonly #mirror: MirrorVg
  readonly #blockBytes: number
  #comparedBytes = 0
  #differingBytes = 0

  constructor(mirror: MirrorVg, options: { blockBytes?: number } = {}) {
    this.#mirror = mirror
    this.#blockBytes = options.blockBytes ?? DEFAULT_CHECKSUM_BLOCK_BYTES
    if (!Number.isSafeInteger(this.#blockBytes) || this.#blockBytes <= 0) {
      throw new LvmfsError('ENGINE_USAGE', `checksum block size must be a positive integer, got ${this.#blockBytes}`)
    }
  }

  readonly narrowRanges = async (lv: LvDescriptor, lp: number, source: number, targets: readonly number[],
    range: LpRange): Promise<readonly LpRange[]> => {
    const diff = await checksumDiff(this.#mirror, lv, lp, source, targets, range, this.#blockBytes)
    this.#comparedBytes += range.lengthBytes * targets.length
    this.#differingBytes += diff.ranges.reduce((sum, part) => sum + part.lengthBytes, 0) * targets.length
    return diff.ranges
  }

  totals(): ChecksumTotals {
    return { comparedBytes: this.#comparedBytes, differingBytes: this.#differingBytes }
  }
}
