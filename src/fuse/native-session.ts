/** Typed view of the native FUSE session (native/session.cc). */
import { nativeAddon } from '../native/addon.js'

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
}

export const EntryKind = { REQUEST: 1, GATE: 2, WRITE_ERROR: 3, READ_ERROR: 4, CLOSED: 5 } as const

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
}

export interface NativeSession {
  readonly arena: ArrayBuffer
  readonly layout: ArenaLayout
  mount(options: { mountpoint: string; fsname: string; subtype: string; allowOther: boolean;
    defaultPermissions: boolean }): void
  start(): void
  drain(): number
  reply(slot: number, negativeErrno: number, payloadBytes: number): void
  release(slot: number): void
  resume(slot: number): void
  finishWrite(slot: number, negativeErrno: number): void
  mapVolume(nodeid: number, spec: NativeVolumeSpec): void
  unmapVolume(nodeid: number): void
  setGate(nodeid: number, region: number, open: boolean): void
  drainWrites(nodeid: number): Promise<number>
  notifyInvalInode(nodeid: number, offset: number, length: number): Promise<number>
  notifyInvalEntry(parent: number, name: string): Promise<number>
  unmount(lazy: boolean): Promise<number>
  close(): void
  stats(): NativeStats
}

interface SessionConstructor {
  new (options: { maxWrite: number; threads: number; slotsPerThread: number; executors: number;
    onBatch: () => void }): NativeSession
}

export function createNativeSession(options: { maxWrite: number; threads: number;
  slotsPerThread: number; executors: number; onBatch: () => void }): NativeSession {
  const Session = nativeAddon()['Session'] as SessionConstructor
  return new Session(options)
}

/** umount2(2) (or fusermount3 -u when not root); returns 0 or a negative errno. */
export function unmountPath(path: string, lazy: boolean): number {
  return (nativeAddon()['unmountPath'] as (p: string, l: boolean) => number)(path, lazy)
}

/** Fault injection on a backing fd of the native data path: bit 0 fails reads, bit 1 fails
 * writes, bit 2 delays every write by 300 ms (a stalled disk). */
export function setFdFault(fd: number, mask: number): void {
  (nativeAddon()['setFdFault'] as (fd: number, mask: number) => void)(fd, mask)
}
