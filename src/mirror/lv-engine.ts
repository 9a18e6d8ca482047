/**
 * The in-process LV I/O engine: the same semantics the native data path runs from a VolumeMap
 * (read policy with failover, write fan-out per schedule, MWC gating, stale marking), executed
 * in TypeScript on the PV BlockDevices. Used by tests, resync and the benchmark.
 *
 * Order of one write: take the LTG regions shared (waits out resync/scrub of those regions),
 * mark copies on absent PVs stale, set the passive dirty flag, pin the LTGs in the MWC log
 * (active), write every fresh copy plus write-through targets, mark failed copies stale, then
 * unpin and release. The write resolves (is acknowledged) only after all of that.
 *
 * Durability: as for a file, a write is durable after `flush()` resolves (every PV holding a
 * copy synced). A sync failure marks stale every copy on that PV written since its last sync.
 */
import type { LvDescriptor } from '../lvm/index.js'
import { LvmfsError, errnoOf } from '../errors/index.js'
import { assert } from '../util/index.js'
import { freshCopies, isCopyFresh, lvSizeBytes, readOrder, readPolicyOf, splitRange, type Piece } from './layout.js'
import type { MirrorVg } from './mirror-vg.js'
import { copyAddress } from './region-copy.js'

export interface OpenLvOptions {
  readonly readOnly?: boolean
  /** Called for regions a passive-MWC LV must sync before they are read (resync on read). */
  readonly syncRegionForRead?: (lv: LvDescriptor, region: number) => Promise<void>
  /** Called once at close; answers whether this was the last writer of the LV. */
  readonly onClose?: () => boolean
  /** Called at every read and write: the application I/O the resync controller watches. */
  readonly onIo?: () => void
}

export class MirroredLv {
  readonly #mirror: MirrorVg
  readonly #readOnly: boolean
  readonly #syncRegionForRead: ((lv: LvDescriptor, region: number) => Promise<void>) | undefined
  readonly #onClose: () => boolean
  readonly #onIo: (() => void) | undefined
  #lv: LvDescriptor
  #turn = 0
  #closed = false
  /** pvIndex -> PPs written since that PV's last successful sync. */
  readonly #unsynced = new Map<number, Map<number, { lp: number, copyIndex: number }>>()

  constructor(mirror: MirrorVg, lv: LvDescriptor, options: OpenLvOptions = {}) {
    this.#mirror = mirror
    this.#lv = lv
    this.#readOnly = options.readOnly ?? false
    this.#syncRegionForRead = options.syncRegionForRead
    this.#onClose = options.onClose ?? (() => true)
    this.#onIo = options.onIo
  }

  get descriptor(): LvDescriptor {
    return this.#lv
  }

  get sizeBytes(): number {
    return lvSizeBytes(this.#lv, this.#mirror.vg.ppSizeBytes)
  }

  #check(offsetBytes: number, lengthBytes: number): void {
    assert(!this.#closed, `LV ${this.#lv.name} used after close`)
    this.#mirror.assertOnline()
    this.#lv = this.#mirror.current(this.#lv)
    if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes + lengthBytes > this.sizeBytes) {
      throw new LvmfsError('MIRROR_BAD_RANGE', `range [${offsetBytes}, +${lengthBytes}) outside LV ${this.#lv.name}`,
        { detail: `The LV holds ${this.sizeBytes} bytes.`, context: { offsetBytes, lengthBytes } })
    }
  }

  #regions(offsetBytes: number, lengthBytes: number): { first: number, last: number } {
    const ltg = this.#mirror.ltgBytes
    return { first: Math.floor(offsetBytes / ltg), last: Math.floor((offsetBytes + lengthBytes - 1) / ltg) }
  }

  #mirrored(): boolean {
    return this.#lv.copies > 1
  }

  async read(buffer: Uint8Array, offsetBytes: number): Promise<void> {
    this.#check(offsetBytes, buffer.length)
    if (buffer.length === 0) return
    this.#onIo?.()
    const { first, last } = this.#regions(offsetBytes, buffer.length)
    if (this.#syncRegionForRead !== undefined) {
      for (let region = first; region <= last; region++) {
        if (this.#mirror.isRegionPending(this.#lv.lvId, region)) await this.#syncRegionForRead(this.#lv, region)
      }
    }
    const release = this.#mirrored() ? await this.#mirror.locksOf(this.#lv.lvId).shared(first, last) : () => {}
    try {
      const pieces = splitRange(offsetBytes, buffer.length, this.#mirror.vg.ppSizeBytes)
      await Promise.all(pieces.map((piece) => this.#readPiece(buffer, piece)))
    } finally {
      release()
    }
  }

  async #readPiece(buffer: Uint8Array, piece: Piece): Promise<void> {
    const copies = this.#lv.lps[piece.lp]!
    const target = buffer.subarray(piece.bufferOffsetBytes, piece.bufferOffsetBytes + piece.lengthBytes)
    const order = readOrder(readPolicyOf(this.#lv.schedule), copies.length, this.#turn++)
    let lastError: unknown
    for (const copyIndex of order) {
      if (!isCopyFresh(this.#mirror.vg, copies[copyIndex]!)) continue
      try {
        const at = copyAddress(this.#mirror.vg, this.#lv, piece.lp, copyIndex, piece.offsetInLpBytes)
        await at.device.read(target, at.offsetBytes)
        return
      } catch (error) {
        lastError = error
        const decision = await this.#mirror.onCopyError(this.#lv, piece.lp, copyIndex, errnoOf(error), false)
        if (decision === 'fail') break
      }
    }
    throw this.#noFreshCopy(piece, 'read', lastError)
  }

  #noFreshCopy(piece: Piece, what: string, cause: unknown): LvmfsError {
    return new LvmfsError('MIRROR_NO_FRESH_COPY', `cannot ${what} LP ${piece.lp} of LV ${this.#lv.name}: ` +
      'no fresh copy left', { cause, context: { lv: this.#lv.name, lp: piece.lp },
      hint: 'Bring the missing PVs back (vary on again) and run lvmfs syncvg.' })
  }

  async write(buffer: Uint8Array, offsetBytes: number): Promise<void> {
    if (this.#readOnly) throw new LvmfsError('MIRROR_READ_ONLY', `LV ${this.#lv.name} is open read-only`)
    this.#check(offsetBytes, buffer.length)
    if (buffer.length === 0) return
    this.#onIo?.()
    const { first, last } = this.#regions(offsetBytes, buffer.length)
    const mirrored = this.#mirrored()
    const release = mirrored ? await this.#mirror.locksOf(this.#lv.lvId).shared(first, last) : () => {}
    const ltgs: number[] = []
    try {
      const pieces = splitRange(offsetBytes, buffer.length, this.#mirror.vg.ppSizeBytes)
      if (mirrored && this.#lv.mwc !== 'active') await this.#mirror.ensureLvDirty(this.#lv)
      if (mirrored && this.#lv.mwc === 'active') {
        const wanted: number[] = []
        for (let region = first; region <= last; region++) wanted.push(region)
        await this.#mirror.mwc.pin(this.#lv, wanted)
        ltgs.push(...wanted) // pinned: unpinned below (a failed pin leaves nothing pinned)
      }
      await Promise.all(pieces.map((piece) => this.#writePiece(buffer, piece)))
    } finally {
      if (ltgs.length > 0) this.#mirror.mwc.unpin(this.#lv, ltgs)
      release()
    }
  }

  async #writePiece(buffer: Uint8Array, piece: Piece): Promise<void> {
    // After the MWC pin, which may have just marked a PV missing.
    await this.#mirror.markAbsentCopiesStale(this.#lv, piece.lp)
    const fresh = freshCopies(this.#mirror.vg, this.#lv, piece.lp)
    if (fresh.length === 0) throw this.#noFreshCopy(piece, 'write', undefined)
    const through = [...this.#mirror.writeThroughOf(this.#lv.lvId, piece.lp)]
      .filter((index) => !fresh.includes(index) && this.#mirror.vg.pvState(this.#lv.lps[piece.lp]![index]!.pvIndex) === 'active')
    const data = buffer.subarray(piece.bufferOffsetBytes, piece.bufferOffsetBytes + piece.lengthBytes)
    const failures: Array<{ copyIndex: number, error: unknown }> = []
    const writeOne = async (copyIndex: number): Promise<void> => {
      try {
        const at = copyAddress(this.#mirror.vg, this.#lv, piece.lp, copyIndex, piece.offsetInLpBytes)
        await at.device.write(data, at.offsetBytes)
        this.#noteUnsynced(piece.lp, copyIndex)
      } catch (error) {
        failures.push({ copyIndex, error })
      }
    }
    const targets = [...fresh, ...through]
    if (this.#lv.schedule === 's') for (const copyIndex of targets) await writeOne(copyIndex)
    else await Promise.all(targets.map(writeOne))
    // Some copy missed this write (stale, absent or failed): its chunks go in the write-intent
    // bitmap before the write completes (and so before its LTG can leave the activity log).
    if (targets.length < this.#lv.lps[piece.lp]!.length || failures.length > 0) {
      const lvOffset = piece.lp * this.#mirror.vg.ppSizeBytes + piece.offsetInLpBytes
      this.#mirror.bitmaps.mark(this.#lv, lvOffset, piece.lengthBytes)
    }
    let failed: unknown
    for (const { copyIndex, error } of failures) {
      const decision = await this.#mirror.onCopyError(this.#lv, piece.lp, copyIndex, errnoOf(error), true)
      if (decision === 'fail' && !through.includes(copyIndex)) failed = error
    }
    if (failed !== undefined) throw this.#noFreshCopy(piece, 'write', failed)
  }

  #noteUnsynced(lp: number, copyIndex: number): void {
    const copy = this.#lv.lps[lp]![copyIndex]!
    let pps = this.#unsynced.get(copy.pvIndex)
    if (pps === undefined) {
      pps = new Map()
      this.#unsynced.set(copy.pvIndex, pps)
    }
    pps.set(copy.pp, { lp, copyIndex })
  }

  /** Makes every acknowledged write durable on every copy that took it. */
  async flush(): Promise<void> {
    assert(!this.#closed, `LV ${this.#lv.name} used after close`)
    this.#mirror.assertOnline()
    const pvs = new Set<number>(this.#unsynced.keys())
    for (const copies of this.#lv.lps) for (const copy of copies) pvs.add(copy.pvIndex)
    const epoch = this.#mirror.mwc.flushStarted()
    let failed: unknown
    let anyFailed = false
    await Promise.all([...pvs].map(async (pvIndex) => {
      const written = this.#unsynced.get(pvIndex) ?? new Map<number, { lp: number, copyIndex: number }>()
      this.#unsynced.delete(pvIndex)
      const device = this.#mirror.vg.device(pvIndex)
      if (device === undefined) {
        anyFailed = true // an absent PV was not synced: its LTGs do not count as clean
        return
      }
      try {
        await device.sync()
      } catch (error) {
        anyFailed = true
        for (const { lp, copyIndex } of written.values()) {
          // Any write since the last sync may be lost on this copy: the whole LP is suspect.
          this.#mirror.bitmaps.mark(this.#lv, lp * this.#mirror.vg.ppSizeBytes, this.#mirror.vg.ppSizeBytes)
          const decision = await this.#mirror.onCopyError(this.#lv, lp, copyIndex, errnoOf(error), true)
          if (decision === 'fail') failed = error
        }
      }
    }))
    // Every PV of the LV synced: the LV's LTGs written before the flush began are clean.
    if (!anyFailed) this.#mirror.mwc.flushDone(this.#lv.lvId, epoch)
    if (failed !== undefined) {
      throw new LvmfsError('MIRROR_NO_FRESH_COPY', `flush of LV ${this.#lv.name} failed on the last fresh copy`,
        { cause: failed })
    }
  }

  /** Flushes, then (passive MWC / off, when no forced resync is pending) clears the dirty flag. */
  async close(): Promise<void> {
    if (this.#closed) return
    const online = this.#mirror.vg.state === 'online'
    if (!this.#readOnly && online) await this.flush()
    this.#closed = true
    const last = this.#onClose()
    if (!this.#readOnly && online && last && this.#mirrored() && this.#lv.mwc !== 'active' &&
        !this.#mirror.forcedPending(this.#lv.lvId)) {
      await this.#mirror.clearLvDirty(this.#lv)
    }
  }
}
