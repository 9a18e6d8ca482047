import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

/** The native addon's exported surface (see native/*.cc); typed here once for every layer. */
export interface NativeAddon {
  /** ioctl(BLKGETSIZE64) on a block device fd. */
  blockDeviceSizeBytes(fd: number): bigint
  /** ioctl(BLKSSZGET) on a block device fd. */
  blockDeviceSectorBytes(fd: number): number
  /** ioctl(BLKDISCARD) on a block device. */
  blockDiscard(fd: number, offsetBytes: number, lengthBytes: number): void
  /** fallocate(2); mode is the FALLOC_FL_* mask. */
  fallocate(fd: number, mode: number, offsetBytes: number, lengthBytes: number): void
  /** A zeroed buffer whose memory is aligned to `alignBytes` (for O_DIRECT). */
  alignedBuffer(sizeBytes: number, alignBytes: number): Buffer
  /** Copies `lengthBytes` from (sourceFd, sourceOffsetBytes) to every (targetFds[i],
   * targetOffsetsBytes[i]) on a native worker thread (native/range-copy.cc); never blocks the
   * caller. Settles with every target's outcome; rejects only when the addon is shutting down. */
  rangeCopy(sourceFd: number, sourceOffsetBytes: number, lengthBytes: number, targetFds: readonly number[],
    targetOffsetsBytes: readonly number[], options?: RangeCopyOptions): Promise<RangeCopyResult>
  /** native/block-hash.cc (absent when built without libxxhash-dev): one canonical XXH3-128
   * digest (16 bytes) per `blockBytes` block of each request's range, the last block possibly
   * short, every request read and hashed on its own native thread at once. Per request: the
   * digests, or a negative errno (an injected or real read error, a range past the end). */
  blockHashes?(requests: ReadonlyArray<{ fd: number, offsetBytes: number, lengthBytes: number }>,
    blockBytes: number, seed: bigint): Promise<Array<Buffer | number>>
  /** One-shot XXH3-128 of a buffer, canonical (big-endian) bytes: the reference for tests. */
  xxh128?(data: Uint8Array, seed: bigint): Buffer
  /** native/loop-device.cc: binds a free loop device to `backingFd`'s bytes [offsetBytes,
   * offsetBytes + sizeBytes), with direct I/O and autoclear (detached at its last close). The
   * caller owns the returned fd of /dev/loop<number>; the backing fd may be closed at once. */
  loopAttach(options: { backingFd: number; offsetBytes: number; sizeBytes: number; readOnly: boolean;
    name: string }): { fd: number; number: number }
  /** LOOP_GET_STATUS64 of the loop device open as `fd`. */
  loopStatus(fd: number): LoopStatus
  /** A new size limit for the bound loop device open as `fd` (the disk resizes at once). */
  loopResize(fd: number, sizeBytes: number): void
  [name: string]: unknown
}

export interface LoopStatus {
  readonly offsetBytes: number
  readonly sizeLimitBytes: number
  /** lo_file_name: lvmfs writes `lvmfs:<vgId>:<lvId>` there to recognise its own devices. */
  readonly name: string
  readonly readOnly: boolean
  readonly directIo: boolean
  readonly autoclear: boolean
  /** st_dev and st_ino of the backing file. */
  readonly backingDevice: number
  readonly backingInode: number
}

export interface RangeCopyOptions {
  /** 'auto' (default) and 'buffer': one pread per chunk written to every target at once
   * (io_uring); 'copy_file_range': copy_file_range(2) per target, through the buffer where the
   * kernel refuses the pair. */
  readonly method?: 'auto' | 'copy_file_range' | 'buffer'
  /** Unit of one buffer read and of the fault-injection checks; default 1 MiB. */
  readonly chunkBytes?: number
  /** Start writeback of the bytes written at the end (sync_file_range WRITE, not waited for), so
   * a later fdatasync finds little left to write; default true. */
  readonly writeback?: boolean
}

export interface RangeCopyResult {
  /** 0, or the errno of the source read that stopped the copy (the targets hold a prefix). */
  readonly sourceErrno: number
  /** Per target, in the order given: bytes written (a prefix of the range) and 0 or the errno
   * that stopped copying to it. */
  readonly targets: ReadonlyArray<{ readonly copiedBytes: number, readonly errno: number }>
  /** Bytes moved by copy_file_range and through the buffer, summed over targets. */
  readonly fileRangeBytes: number
  readonly bufferBytes: number
}

const require = createRequire(import.meta.url)
const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

let cached: NativeAddon | undefined

/**
 * Loads the addon built by node-gyp (git checkout) or shipped by prebuildify (package), or the
 * .node file named by LVMFS_NATIVE_ADDON (the sanitizer build of scripts/test-native-sanitize.sh).
 */
export function nativeAddon(): NativeAddon {
  const override = process.env['LVMFS_NATIVE_ADDON']
  if (override) cached ??= require(override) as NativeAddon
  cached ??= (require('node-gyp-build') as (dir: string) => NativeAddon)(packageRoot)
  return cached
}

export const FALLOC_FL_KEEP_SIZE = 0x01
export const FALLOC_FL_PUNCH_HOLE = 0x02
export const FALLOC_FL_ZERO_RANGE = 0x10
