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
  /** native/block-hash.cc (absent when built without libxxhash-dev): one canonical XXH3-128
   * digest (16 bytes) per `blockBytes` block of each request's range, the last block possibly
   * short, every request read and hashed on its own native thread at once. Per request: the
   * digests, or a negative errno (an injected or real read error, a range past the end). */
  blockHashes?(requests: ReadonlyArray<{ fd: number, offsetBytes: number, lengthBytes: number }>,
    blockBytes: number, seed: bigint): Promise<Array<Buffer | number>>
  /** One-shot XXH3-128 of a buffer, canonical (big-endian) bytes: the reference for tests. */
  xxh128?(data: Uint8Array, seed: bigint): Buffer
  [name: string]: unknown
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
