/**
 * A mounted FUSE file system: owns the native transport, answers INIT, decodes every request
 * batch, dispatches to a FileSystem and guarantees exactly one reply per request (a handler
 * that throws gets its error's errno; one that never answers gets EIO after
 * `requestTimeoutMs`, with a log line). Mapped volumes are served natively; their policy
 * events (gated writes, copy errors) come back here and go to the VolumePolicy.
 */
import { errnoNumber, errnoOf, LvmfsError } from '../errors/index.js'
import type { VolumeMap } from '../native/index.js'
import { FUSE_KERNEL_MINOR_VERSION, FUSE_KERNEL_VERSION, InitFlag, InitFlag2, Opcode } from './abi.js'
import { decodeHeader, decodeRequest, type Request } from './codec.js'
import { dispatch } from './dispatch.js'
import type { FileSystem } from './filesystem.js'
import { cleanupMountpoint } from './mounts.js'
import { createNativeSession, EntryKind, THIN_MISS_COUNT_SHIFT, THIN_MISS_LAST_PARTIAL, THIN_MISS_WHOLE_BLOCK,
  THIN_MISS_WRITE, type ArenaLayout, type DirtyChunkList, type NativeSession, type NativeStats,
  type NativeVolumeStats } from './native-session.js'
import { encodeInit } from './replies.js'
import { toNativeSpec } from './volume-spec.js'

export interface Logger {
  warn(object: object, message: string): void
  error(object: object, message: string): void
}

const silentLogger: Logger = { warn() {}, error() {} }

/** One copy of one extent that a request failed to write (or sync): positive errno. */
export interface CopyFailure {
  readonly extent: number
  readonly copy: number
  readonly errno: number
}

export interface WriteErrorEvent {
  readonly nodeid: number
  readonly op: 'WRITE' | 'FALLOCATE' | 'FSYNC'
  /** Every failed (extent, copy); for FSYNC, every written copy on a backing fd whose sync failed. */
  readonly failures: readonly CopyFailure[]
  /** Extents no fresh copy holds: the request must fail (EIO), whatever policy does. */
  readonly lostExtents: readonly number[]
}

export interface ThinMiss {
  readonly block: number
  readonly write: boolean
  /** Blocks of the write from `block` on (1 for a read). */
  readonly blocks: number
  readonly firstWhole: boolean
  readonly lastWhole: boolean
}

export interface ReadErrorEvent {
  readonly nodeid: number
  readonly extent: number
  readonly copy: number
  readonly errno: number
}

export interface VolumePolicy {
  /** Called for a write into a closed gate region; must open it (setGate) before resolving. */
  onGate?(nodeid: number, region: number): Promise<void>
  /**
   * Called for a READ or WRITE of a thin LV block its native table does not know (or, for a
   * write, may not write in place); must publish the entries (thinSet) before resolving. A
   * write names the blocks from `block` to its end: `blocks` of them, each to be written whole
   * (nothing to copy or zero) as `whole(i)` says.
   */
  onThinMiss?(nodeid: number, miss: ThinMiss): Promise<void>
  /** Decides a request that failed on some copy: resolve 0 to acknowledge, or a positive errno. */
  onWriteError?(event: WriteErrorEvent): Promise<number>
  onReadError?(event: ReadErrorEvent): void
  /** A name for log lines (the LV), when policy has one for `nodeid`. */
  describe?(nodeid: number): string | undefined
}

export interface MountOptions {
  readonly mountpoint: string
  readonly fsname?: string
  readonly subtype?: string
  readonly threads?: number
  /**
   * 'uring': FUSE over io_uring (one queue per CPU, backing I/O of volume requests on the same
   * ring) once INIT grants it, else /dev/fuse as with 'dev' (the default). `transport` tells
   * which one serves.
   */
  readonly transport?: FuseTransport
  readonly slotsPerThread?: number
  /** Slots shared by all readers for requests TypeScript holds (default 64). */
  readonly sharedSlots?: number
  readonly maxWriteBytes?: number
  readonly allowOther?: boolean
  /** A handler that never answers gets EIO after this long (default 60 s). */
  readonly requestTimeoutMs?: number
  /** A gated or failed write whose policy never answers gets EIO after this long (default 30 s). */
  readonly policyTimeoutMs?: number
  readonly log?: Logger
  readonly policy?: VolumePolicy
}

export type FuseTransport = 'dev' | 'uring'

/** Which transport serves the mount, and why not io_uring when it was asked for. */
export interface TransportState {
  readonly requested: FuseTransport
  readonly active: FuseTransport
  readonly queues: number
  readonly reason?: string
}

type HeldKind = 'request' | 'gate' | 'write-error'

/** A slot TypeScript holds, with the owner generation it was handed. */
interface Held {
  readonly generation: number
  readonly kind: HeldKind
  readonly startedMs: number
  readonly nodeid: number
}

const MAX_PAGES = 256
/** Entries per io_uring queue: the requests one CPU's queue has in flight at once. */
const RING_DEPTH = 32
/** /dev/fuse readers beside the rings: INIT, FORGET and INTERRUPT, and anything sent before
 * every queue is registered. */
const READERS_BESIDE_RINGS = 4
const EINTR = errnoNumber('EINTR')
const EIO = errnoNumber('EIO')

export class FuseSession {
  readonly mountpoint: string
  readonly ready: Promise<void>
  readonly closed: Promise<number>
  private readonly native: NativeSession
  private readonly layout: ArenaLayout
  private readonly arena: Uint8Array
  private readonly view: DataView
  private readonly log: Logger
  private readonly held = new Map<number, Held>()
  private readonly maps = new Map<number, VolumeMap>()
  private readonly watchdog: NodeJS.Timeout
  private readonly requestTimeoutMs: number
  private readonly policyTimeoutMs: number
  private policy: VolumePolicy
  private resolveReady!: () => void
  private resolveClosed!: (errno: number) => void
  private isClosed = false
  private transportState: TransportState

  private constructor(private readonly fs: FileSystem, private readonly options: MountOptions) {
    this.mountpoint = options.mountpoint
    this.log = options.log ?? silentLogger
    this.policy = options.policy ?? {}
    this.ready = new Promise((resolve) => { this.resolveReady = resolve })
    this.closed = new Promise((resolve) => { this.resolveClosed = resolve })
    // One blocking pread/pwrite per reader: the thread count is the backing queue depth (32 measured
    // best for 4 KiB random I/O at qd32 here; 16 gave 20% less).
    const uring = options.transport === 'uring'
    const threads = uring ? Math.min(options.threads ?? READERS_BESIDE_RINGS, READERS_BESIDE_RINGS)
      : options.threads ?? 32
    this.transportState = { requested: options.transport ?? 'dev', active: 'dev', queues: 0 }
    this.native = createNativeSession({ maxWrite: options.maxWriteBytes ?? MAX_PAGES * 4096,
      threads, slotsPerThread: options.slotsPerThread ?? 1, sharedSlots: options.sharedSlots ?? 64,
      ringDepth: uring ? RING_DEPTH : 0, onBatch: () => this.onBatch() })
    this.layout = this.native.layout
    this.arena = new Uint8Array(this.native.arena)
    this.view = new DataView(this.native.arena)
    this.requestTimeoutMs = options.requestTimeoutMs ?? 60_000
    this.policyTimeoutMs = options.policyTimeoutMs ?? 30_000
    const tick = Math.max(20, Math.min(this.requestTimeoutMs, this.policyTimeoutMs, 10_000) / 2)
    this.watchdog = setInterval(() => this.expire(), tick)
    this.watchdog.unref()
  }

  /** Mounts `fs` at `options.mountpoint`, detaching a dead mount left there first. */
  static async mount(fs: FileSystem, options: MountOptions): Promise<FuseSession> {
    cleanupMountpoint(options.mountpoint)
    const session = new FuseSession(fs, options)
    try {
      session.native.mount({ mountpoint: options.mountpoint, fsname: options.fsname ?? 'lvmfs',
        subtype: options.subtype ?? 'lvmfs', allowOther: options.allowOther ?? true,
        defaultPermissions: true })
    } catch (error) {
      session.shutdown()
      throw new LvmfsError('FUSE_MOUNT_FAILED', `cannot mount at "${options.mountpoint}"`,
        { detail: (error as Error).message, cause: error })
    }
    session.native.start()
    await session.ready
    return session
  }

  setPolicy(policy: VolumePolicy): void {
    this.policy = policy
  }

  mapVolume(nodeid: number, map: VolumeMap): void {
    this.native.mapVolume(nodeid, toNativeSpec(map))
    this.maps.set(nodeid, map)
  }

  unmapVolume(nodeid: number): void {
    this.native.unmapVolume(nodeid)
    this.maps.delete(nodeid)
  }

  /** The write-intent chunks native writes marked since the last call (see VolumeMap). */
  takeDirtyChunks(nodeid: number): DirtyChunkList | undefined {
    return this.native.takeDirtyChunks(nodeid)
  }

  setGate(nodeid: number, region: number, open: boolean): void {
    this.native.setGate(nodeid, region, open)
  }

  /** Resolves once every write admitted before this call has finished. */
  /** Publishes one entry of a thin LV's native table (see THIN_ENTRY_* and thinEntry). */
  thinSet(nodeid: number, block: number, entry: number): void {
    this.native.thinSet(nodeid, block, entry)
  }

  /** Every writable entry of the thin LV becomes shared: its next write into each is a miss. */
  thinClearWritable(nodeid: number): void {
    this.native.thinClearWritable(nodeid)
  }

  /** Forgets every entry of the thin LV (its mapping was replaced). */
  thinReset(nodeid: number): void {
    this.native.thinReset(nodeid)
  }

  async drainWrites(nodeid: number): Promise<void> {
    await this.native.drainWrites(nodeid)
  }

  async invalidateInode(nodeid: number, offset = 0, length = 0): Promise<void> {
    await this.native.notifyInvalInode(nodeid, offset, length)
  }

  async invalidateEntry(parent: number, name: string): Promise<void> {
    await this.native.notifyInvalEntry(parent, name)
  }

  get transport(): TransportState {
    return this.transportState
  }

  stats(): NativeStats {
    return this.native.stats()
  }

  volumeStats(nodeid: number): NativeVolumeStats | undefined {
    return this.native.volumeStats(nodeid)
  }

  /** Unmounts (lazily if asked) and waits until every native thread has stopped. */
  async unmount(options: { lazy?: boolean } = {}): Promise<void> {
    if (this.isClosed) return
    const result = await this.native.unmount(options.lazy ?? false)
    if (result !== 0) {
      throw new LvmfsError(result === -errnoNumber('EBUSY') ? 'ENGINE_BUSY' : 'FUSE_MOUNT_FAILED',
        `cannot unmount "${this.mountpoint}"`, { detail: `umount2 failed with errno ${-result}.` })
    }
    await this.closed
  }

  /** Aborts the connection without unmounting (what a crash looks like to the kernel). */
  abort(): void {
    this.shutdown()
  }

  private shutdown(): void {
    if (this.isClosed) return
    this.isClosed = true
    clearInterval(this.watchdog)
    this.native.close()
    this.held.clear()
    this.resolveClosed(0)
  }

  // --- slot ownership -------------------------------------------------------------------------

  private hold(slot: number, generation: number, kind: HeldKind, nodeid: number): void {
    this.held.set(slot, { generation, kind, startedMs: Date.now(), nodeid })
  }

  /** Takes back a slot this code was handed as `generation`: false once the watchdog or an
   * interrupt answered it (the caller then must not answer). */
  private settle(slot: number, generation: number): boolean {
    if (this.held.get(slot)?.generation !== generation) return false
    this.held.delete(slot)
    return true
  }

  // --- native events --------------------------------------------------------------------------

  private onBatch(): void {
    const { entryBytes } = this.layout
    for (;;) {
      const count = this.native.drain()
      if (count === 0) return
      for (let i = 0; i < count; i++) {
        // One bad entry must not strand the rest: the native side only schedules another batch
        // once this loop has drained the queue.
        try {
          this.onEntry(i * entryBytes)
        } catch (error) {
          this.log.error({ err: error }, 'native event handling failed')
        }
      }
    }
  }

  private onEntry(at: number): void {
    const v = this.view
    const f = this.layout.entry
    const kind = v.getUint32(at + f.kind, true)
    const slot = v.getUint32(at + f.slot, true)
    const nodeid = Number(v.getBigUint64(at + f.nodeid, true))
    const extent = v.getUint32(at + f.extent, true)
    const generation = v.getUint32(at + f.generation, true)
    switch (kind) {
      case EntryKind.REQUEST: return this.onRequest(slot, generation)
      case EntryKind.GATE: return void this.onGate(slot, generation, nodeid, extent)
      case EntryKind.THIN_MISS:
        return void this.onThinMiss(slot, generation, nodeid, extent, v.getUint32(at + f.copy, true))
      case EntryKind.WRITE_ERROR: return void this.onWriteError(slot, generation, nodeid)
      case EntryKind.READ_ERROR:
        this.policy.onReadError?.({ nodeid, extent, copy: v.getUint32(at + f.copy, true),
          errno: -v.getInt32(at + f.error, true) })
        return
      case EntryKind.REPLY_FAILED:
        // nodeid carries the request's unique and extent its opcode.
        this.log.error({ unique: nodeid, opcode: extent, errno: -v.getInt32(at + f.error, true) },
          'the kernel refused a reply')
        return
      case EntryKind.CLOSED: {
        // ENODEV: unmounted; ECONNABORTED: aborted (fusectl, or every fd closed); 0: stopped by close().
        const errno = v.getInt32(at + f.error, true)
        if (errno !== 0) this.log.warn({ errno, mountpoint: this.mountpoint }, 'FUSE connection ended')
        this.shutdown()
        return
      }
      default:
        this.log.error({ kind }, 'unknown native entry kind')
    }
  }

  private async onGate(slot: number, generation: number, nodeid: number, region: number): Promise<void> {
    this.hold(slot, generation, 'gate', nodeid)
    try {
      if (this.policy.onGate) await this.policy.onGate(nodeid, region)
      else this.native.setGate(nodeid, region, true)
      if (this.settle(slot, generation)) this.native.resume(slot, generation)
    } catch (error) {
      this.log.error({ err: error, nodeid, region }, 'write gate policy failed')
      if (this.settle(slot, generation)) this.native.reply(slot, generation, -errnoOf(error), 0)
    }
  }

  private async onThinMiss(slot: number, generation: number, nodeid: number, block: number,
    flags: number): Promise<void> {
    this.hold(slot, generation, 'gate', nodeid)
    try {
      if (!this.policy.onThinMiss) throw new LvmfsError('ENGINE_USAGE', 'no thin miss policy')
      const blocks = Math.max(1, flags >>> THIN_MISS_COUNT_SHIFT)
      const firstWhole = (flags & THIN_MISS_WHOLE_BLOCK) !== 0
      await this.policy.onThinMiss(nodeid, { block, write: (flags & THIN_MISS_WRITE) !== 0, blocks, firstWhole,
        lastWhole: blocks === 1 ? firstWhole : (flags & THIN_MISS_LAST_PARTIAL) === 0 })
      if (this.settle(slot, generation)) this.native.resume(slot, generation)
    } catch (error) {
      this.log.error({ err: error, nodeid, block }, 'thin miss policy failed')
      if (this.settle(slot, generation)) this.native.reply(slot, generation, -errnoOf(error), 0)
    }
  }

  private async onWriteError(slot: number, generation: number, nodeid: number): Promise<void> {
    this.hold(slot, generation, 'write-error', nodeid)
    const event = this.writeErrorEvent(slot, nodeid)
    let errno: number
    try {
      errno = this.policy.onWriteError ? await this.policy.onWriteError(event) : defaultWriteDecision(event)
    } catch (error) {
      this.log.error({ err: error, nodeid }, 'write error policy failed')
      errno = errnoOf(error)
    }
    if (event.lostExtents.length > 0 && errno === 0) errno = EIO
    if (this.settle(slot, generation)) this.native.finishWrite(slot, generation, -errno)
  }

  /** The failure records native code left at the start of the slot (native/arena.h). */
  private writeErrorEvent(slot: number, nodeid: number): WriteErrorEvent {
    const { meta, failure } = this.layout
    const metaAt = this.layout.slotMetaOffset + slot * this.layout.slotMetaBytes
    const count = this.view.getUint32(metaAt + meta.failureCount, true)
    const recordsAt = this.layout.slotsOffset + slot * this.layout.slotBytes
    const op = decodeHeader(this.requestBytes(slot)).opcode
    const failures: CopyFailure[] = []
    const lost = new Set<number>()
    const failedFds = new Map<number, number>()
    for (let i = 0; i < count; i++) {
      const at = recordsAt + i * failure.bytes
      const extent = this.view.getUint32(at + failure.extent, true)
      const copy = this.view.getUint32(at + failure.copy, true)
      const errno = -this.view.getInt32(at + failure.error, true)
      if (extent === failure.allExtents) failedFds.set(copy, errno)
      else if (copy !== failure.noCopy) failures.push({ extent, copy, errno })
      if ((this.view.getUint32(at + failure.flags, true) & failure.extentLost) !== 0) lost.add(extent)
    }
    if (failedFds.size > 0) this.expandSyncFailures(nodeid, failedFds, failures, lost)
    const name = op === Opcode.FSYNC ? 'FSYNC' : op === Opcode.FALLOCATE ? 'FALLOCATE' : 'WRITE'
    return { nodeid, op: name, failures, lostExtents: [...lost].sort((a, b) => a - b) }
  }

  /** A backing fd whose sync failed may have lost any write to it: every written copy on it
   * failed, and an extent with no fresh copy on another fd is lost. */
  private expandSyncFailures(nodeid: number, failedFds: ReadonlyMap<number, number>, failures: CopyFailure[],
    lost: Set<number>): void {
    const map = this.maps.get(nodeid)
    if (!map) {
      lost.add(0)
      return
    }
    map.extents.forEach((extent, index) => {
      let fresh = 0
      extent.copies.forEach((copy, c) => {
        const written = !copy.stale || copy.writeOnly === true
        const errno = failedFds.get(copy.fd)
        if (written && errno !== undefined) failures.push({ extent: index, copy: c, errno })
        else if (!copy.stale) fresh++
      })
      if (fresh === 0) lost.add(index)
    })
  }

  private requestBytes(slot: number): Uint8Array {
    const layout = this.layout
    const metaAt = layout.slotMetaOffset + slot * layout.slotMetaBytes
    const length = this.view.getUint32(metaAt + layout.meta.requestBytes, true)
    const start = layout.slotsOffset + slot * layout.slotBytes + layout.requestOffset
    return this.arena.subarray(start, start + length)
  }

  private payload(slot: number): Uint8Array {
    const layout = this.layout
    const start = layout.slotsOffset + slot * layout.slotBytes + layout.payloadOffset
    return this.arena.subarray(start, start + layout.maxWrite)
  }

  private onRequest(slot: number, generation: number): void {
    const bytes = this.requestBytes(slot)
    let request: Request
    try {
      request = decodeRequest(bytes)
    } catch (error) {
      this.log.error({ err: error }, 'malformed FUSE request')
      // Native code answers with the unique at bytes 8..16; without one there is no one to answer.
      if (bytes.length >= 16) this.native.reply(slot, generation, -EIO, 0)
      else this.native.release(slot, generation)
      return
    }
    if (request.body.op === 'INIT') return this.onInit(slot, generation, request.body)
    if (request.body.op === 'INTERRUPT') {
      this.onInterrupt(request.body.targetUnique)
      this.native.release(slot, generation)
      return
    }
    this.hold(slot, generation, 'request', request.header.nodeid)
    void dispatch(this.fs, request, this.payload(slot)).then(
      (outcome) => this.finish(slot, generation, request, outcome),
      (error: unknown) => this.finish(slot, generation, request, { errno: errnoOf(error), error }),
    )
  }

  /**
   * A gated write not yet admitted has touched no copy, so it can be answered EINTR at once; the
   * gate policy goes on, and its resume is then refused. Other requests are not interrupted: a
   * handler finishes promptly, and a write waiting on the write-error policy has reached some
   * copies, which must be marked stale before any answer (the policy watchdog bounds that wait).
   */
  private onInterrupt(unique: bigint): void {
    for (const [slot, held] of this.held) {
      if (held.kind !== 'gate' || decodeHeader(this.requestBytes(slot)).unique !== unique) continue
      if (this.settle(slot, held.generation)) this.native.reply(slot, held.generation, -EINTR, 0)
      return
    }
  }

  private finish(slot: number, generation: number, request: Request,
    outcome: { errno: number; payloadBytes?: number; noReply?: boolean; error?: unknown }): void {
    if (!this.settle(slot, generation)) return  // already answered by the watchdog
    if (outcome.noReply) {
      this.native.release(slot, generation)
      return
    }
    if (outcome.errno !== 0 && !(outcome.error instanceof LvmfsError) && outcome.error &&
        outcome.errno === EIO) {
      this.log.error({ err: outcome.error, op: request.body.op }, 'FUSE handler failed')
    }
    this.native.reply(slot, generation, -outcome.errno, outcome.errno === 0 ? outcome.payloadBytes ?? 0 : 0)
  }

  private expire(): void {
    const now = Date.now()
    for (const [slot, held] of this.held) {
      const limit = held.kind === 'request' ? this.requestTimeoutMs : this.policyTimeoutMs
      if (now - held.startedMs < limit) continue
      this.held.delete(slot)
      this.log.error(this.describeHeld(slot, held), held.kind === 'request'
        ? 'FUSE handler never answered; replying EIO'
        : `write ${held.kind === 'gate' ? 'gate' : 'error'} policy did not answer within ${limit} ms; replying EIO`)
      this.native.reply(slot, held.generation, -EIO, 0)
    }
  }

  private describeHeld(slot: number, held: Held): object {
    let request: Request | undefined
    try { request = decodeRequest(this.requestBytes(slot)) } catch { /* logged as it is */ }
    const body = request?.body
    const offset = body && 'offset' in body ? body.offset : undefined
    return { slot, nodeid: held.nodeid, lv: this.policy.describe?.(held.nodeid), op: body?.op, offset,
      waitedMs: Date.now() - held.startedMs }
  }

  private onInit(slot: number, generation: number, init: Extract<Request['body'], { op: 'INIT' }>): void {
    if (init.major !== FUSE_KERNEL_VERSION || init.minor < 31) {
      this.log.error({ major: init.major, minor: init.minor }, 'unsupported FUSE protocol version')
      this.native.reply(slot, generation, -errnoNumber('EPROTO'), 0)
      return
    }
    const wanted = InitFlag.ASYNC_READ | InitFlag.BIG_WRITES | InitFlag.ASYNC_DIO |
      InitFlag.PARALLEL_DIROPS | InitFlag.ABORT_ERROR | InitFlag.MAX_PAGES |
      InitFlag.EXPLICIT_INVAL_DATA | InitFlag.INIT_EXT
    const uring = this.transportState.requested === 'uring'
    const uringOffered = (init.flags2 & InitFlag2.OVER_IO_URING) !== 0
    const wanted2 = InitFlag2.DIRECT_IO_ALLOW_MMAP | (uring ? InitFlag2.OVER_IO_URING : 0)
    const length = encodeInit(this.payload(slot), {
      major: FUSE_KERNEL_VERSION, minor: Math.min(init.minor, FUSE_KERNEL_MINOR_VERSION),
      maxReadahead: init.maxReadahead, flags: (wanted & init.flags) >>> 0,
      flags2: (wanted2 & init.flags2) >>> 0,
      maxBackground: 128, congestionThreshold: 96, maxWrite: this.layout.maxWrite, timeGranNs: 1,
      maxPages: Math.ceil(this.layout.maxWrite / 4096),
    })
    this.native.reply(slot, generation, 0, length)
    if (uring) this.startRing(uringOffered)
    this.resolveReady()
  }

  /** After the INIT reply: the kernel has processed it, so the queues can register. */
  private startRing(offered: boolean): void {
    const requested = this.transportState.requested
    if (!offered) {
      this.transportState = { requested, active: 'dev', queues: 0,
        reason: 'the kernel did not offer FUSE_OVER_IO_URING (fuse.enable_uring is off)' }
      this.log.warn({ mountpoint: this.mountpoint }, `io_uring transport: ${this.transportState.reason}; serving through /dev/fuse`)
      return
    }
    try {
      const queues = this.native.startRing()
      this.transportState = { requested, active: 'uring', queues }
    } catch (error) {
      this.transportState = { requested, active: 'dev', queues: 0,
        reason: `the kernel refused the ring entries: ${(error as Error).message}` }
      this.log.warn({ err: error, mountpoint: this.mountpoint }, 'io_uring transport refused; serving through /dev/fuse')
    }
  }
}

/** Without a policy: acknowledge unless some extent reached no fresh copy. */
function defaultWriteDecision(event: WriteErrorEvent): number {
  return event.lostExtents.length > 0 ? EIO : 0
}
