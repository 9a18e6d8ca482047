/** Typed view of the native FUSE session (native/session.cc) and of volume I/O (native/volume-io.cc). */
import { nativeAddon, type ThinVolumeSpec } from '../native/index.js'

/** Field offsets come from native/arena.h through the session's `layout`: never literals here. */
export interface ArenaLayout {
  readonly entryBytes: number
  readonly maxEntries: number
  readonly slotMetaOffset: number
  readonly slotMetaBytes: number
  readonly slotsOffset: number
  readonly slotBytes: number
  readonly slotCount: number
  readonly requestOffset: number
  readonly payloadOffset: number
  readonly maxWrite: number
  readonly entry: { readonly kind: number; readonly slot: number; readonly nodeid: number; readonly extent: number;
    readonly copy: number; readonly error: number; readonly generation: number }
  readonly meta: { readonly requestBytes: number; readonly reader: number; readonly generation: number;
    readonly failureCount: number; readonly lostExtents: number; readonly writtenBytes: number;
    readonly nodeid: number; readonly progressBytes: number; readonly flags: number }
  readonly failure: { readonly bytes: number; readonly maxRecords: number; readonly extent: number;
    readonly copy: number; readonly error: number; readonly flags: number; readonly allExtents: number;
    readonly noCopy: number; readonly extentLost: number }
}

export const EntryKind = { REQUEST: 1, GATE: 2, WRITE_ERROR: 3, READ_ERROR: 4, CLOSED: 5, REPLY_FAILED: 6,
  THIN_MISS: 7 } as const
/** `copy` bits of a THIN_MISS entry (native/arena.h). */
export const THIN_MISS_WRITE = 1
export const THIN_MISS_WHOLE_BLOCK = 2
export const THIN_MISS_LAST_PARTIAL = 4
export const THIN_MISS_COUNT_SHIFT = 8

export interface NativeVolumeSpec {
  readonly sizeBytes: number
  readonly extentBytes: number
  readonly gateBytes: number
  readonly readPolicy: number
  readonly writeSchedule: number
  readonly readOnly: boolean
  readonly copyCounts: Uint8Array
  readonly fds: Int32Array
  readonly offsets: Float64Array
  /** Per copy: 0 fresh, 1 stale, 2 stale but written through (a resync target). */
  readonly stale: Uint8Array
  /** Write-intent chunk size; 0 or absent: keep no bits (see DirtyChunks in native/volume.h). */
  readonly dirtyChunkBytes?: number
  readonly thin?: ThinVolumeSpec
}

/** Chunks of a volume written while some copy missed the write, taken (cleared) at once. */
export interface DirtyChunkList {
  readonly chunkBytes: number
  readonly chunks: Float64Array
}

export interface NativeStats {
  readonly readOps: number
  readonly writeOps: number
  readonly readBytes: number
  readonly writeBytes: number
  readonly fsyncOps: number
  readonly fallocateOps: number
  readonly jsRequests: number
  readonly gated: number
  readonly copyErrors: number
  readonly selfRequests: number
  /** Replies the kernel refused (malformed), each also logged. */
  readonly replyErrors: number
  /** Answers JS gave for a slot that had moved on (watchdog already answered): dropped. */
  readonly staleAnswers: number
  /** Slots TypeScript holds now (requests, gated writes, write-error policy). */
  readonly jsHeldSlots: number
  /** FUSE-over-io_uring queues serving requests (0: /dev/fuse only). */
  readonly ringQueues: number
}

/** The requests of one operation answered for a volume (native/session.h `OpStats`). */
export interface NativeOpStats {
  readonly ops: number
  readonly bytes: number
  /** Requests answered with an error. */
  readonly errors: number
  /** Sum of their latencies, from the read off /dev/fuse to the reply. */
  readonly latencyNs: number
  /** `buckets[b]` counts latencies under 2^b µs; the last bucket counts every slower one. */
  readonly buckets: Float64Array
}

export interface NativeVolumeStats {
  readonly read: NativeOpStats
  readonly write: NativeOpStats
  readonly fsync: NativeOpStats
  readonly fallocate: NativeOpStats
}

/** Every call that gives a slot back names the owner generation it was handed and returns false
 * when the slot has moved on (the answer was dropped). */
export interface NativeSession {
  readonly arena: ArrayBuffer
  readonly layout: ArenaLayout
  mount(options: { mountpoint: string; fsname: string; subtype: string; allowOther: boolean;
    defaultPermissions: boolean }): void
  start(): void
  drain(): number
  reply(slot: number, generation: number, negativeErrno: number, payloadBytes: number): boolean
  release(slot: number, generation: number): boolean
  resume(slot: number, generation: number): boolean
  finishWrite(slot: number, generation: number, negativeErrno: number): boolean
  mapVolume(nodeid: number, spec: NativeVolumeSpec): void
  unmapVolume(nodeid: number): void
  takeDirtyChunks(nodeid: number): DirtyChunkList | undefined
  setGate(nodeid: number, region: number, open: boolean): void
  /** Thin table of a mapped thin LV (false when `nodeid` has none). */
  thinSet(nodeid: number, block: number, entry: number): boolean
  thinClearWritable(nodeid: number): boolean
  thinReset(nodeid: number): boolean
  drainWrites(nodeid: number): Promise<number>
  notifyInvalInode(nodeid: number, offset: number, length: number): Promise<number>
  notifyInvalEntry(parent: number, name: string): Promise<number>
  unmount(lazy: boolean): Promise<number>
  close(): void
  /** Registers the ring entries of every queue (after the INIT reply that granted
   * FUSE_OVER_IO_URING); returns the queue count, or throws with the kernel's errno. */
  startRing(): number
  stats(): NativeStats
  /** Since the volume was first mapped in this session (kept across remaps and unmaps). */
  volumeStats(nodeid: number): NativeVolumeStats | undefined
}

export interface NativeSessionOptions {
  readonly maxWrite: number
  readonly threads: number
  /** Slots each reader owns; JS-held requests beyond them draw on `sharedSlots`. */
  readonly slotsPerThread: number
  readonly sharedSlots: number
  /** FUSE over io_uring: entries per queue, one queue per possible CPU (0: none). */
  readonly ringDepth?: number
  readonly onBatch: () => void
}

interface SessionConstructor {
  new (options: NativeSessionOptions): NativeSession
}

export function createNativeSession(options: NativeSessionOptions): NativeSession {
  const Session = nativeAddon()['Session'] as SessionConstructor
  return new Session(options)
}

/** umount2(2) (or fusermount3 -u when not root); returns 0 or a negative errno. */
export function unmountPath(path: string, lazy: boolean): number {
  return (nativeAddon()['unmountPath'] as (p: string, l: boolean) => number)(path, lazy)
}

/** Bits of a native fault mask (native/faults.h). */
export const FaultBit = { READ: 1, WRITE: 2, STALL: 4, SYNC: 8 } as const

/**
 * Fault injection on a backing fd of the native data path, on [startBytes, startBytes + lengthBytes)
 * (default: the whole fd). Faults add up; mask 0 clears every fault of the fd.
 */
export function setFdFault(fd: number, mask: number, startBytes = 0, lengthBytes = Number.MAX_SAFE_INTEGER): void {
  (nativeAddon()['setFdFault'] as (fd: number, mask: number, start: number, length: number) => void)(
    fd, mask, startBytes, lengthBytes)
}

/** One failed copy of a request: `extent` null for an FSYNC failure of backing fd `copy`;
 * `copy` null for an extent lost with no copy to write. */
export interface NativeFailure {
  readonly extent: number | null
  readonly copy: number | null
  readonly errno: number
  readonly lost: boolean
}

/** Volume I/O run on the calling thread, without FUSE (tests). */
export interface VolumeIo {
  read(spec: NativeVolumeSpec, offset: number, length: number): { errno: number; data: Buffer;
    copyErrors: NativeFailure[] }
  write(spec: NativeVolumeSpec, offset: number, data: Buffer): { failures: NativeFailure[]; lostExtents: number }
  fsync(spec: NativeVolumeSpec, dataOnly: boolean): { errno: number; failures: NativeFailure[] }
  fallocate(spec: NativeVolumeSpec, mode: number, offset: number, length: number): { failures: NativeFailure[];
    lostExtents: number; unsupported: boolean; closedRegion: number }
}

export function volumeIo(): VolumeIo {
  return nativeAddon()['volumeIo'] as VolumeIo
}
