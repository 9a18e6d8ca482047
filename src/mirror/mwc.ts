/**
 * Active mirror write consistency: the activity log (AL). An in-memory set of active extents
 * (logical track groups, LTGs) per LV, and the per-PV writers of its records.
 *
 * Protocol (AIX active MWC, DRBD activity log):
 *  - Before a mirrored write touches an LTG that is not in the set, the LTG is added and a
 *    record listing it is written durably (writeDurable, or write + sync) to every PV that holds
 *    a copy of the LTG's LP. Only then does the data write start. A write into an LTG already
 *    in the set costs no metadata I/O.
 *  - Group commit: concurrent misses share one record write per PV (a caller waits for the
 *    first record whose snapshot was taken after its LTG entered the set).
 *  - Records are full snapshots (format/mwc-log.ts: the PV's active extents, every resync cursor,
 *    the write-intent bitmaps of its LPs), written round a ring of blocks, so a torn record
 *    leaves the previous one valid.
 *  - Each LV holds at most `alExtents` LTGs (descriptor field, default 1237 as DRBD; the engine
 *    option `cacheLtgs` overrides it for every LV). Eviction is lazy, LRU and batched: an LTG
 *    leaves the set only when room is needed and no write holds it; the PVs of dirty victims
 *    are synced before the record that drops them, so a power loss cannot leave an unlogged
 *    inconsistent LTG.
 *  - Look-ahead: a write to LTG n, once n is recorded, starts recording n+1..n+8 with one
 *    background record when n+1 is not logged yet, so sequential writers rarely wait for the
 *    log (a superset in the log only costs recovery time).
 *
 * Invariants: an LTG with pins > 0 is in every record written after its pin to the PVs of its
 * copies; seq only grows; a PV's writer never overwrites the blocks of its newest record.
 */
import type { BlockDevice } from '../io/index.js'
import type { LvDescriptor, VolumeGroup } from '../lvm/index.js'
import {
  DEFAULT_AL_EXTENTS, MWC_BLOCK_BYTES, MWC_MAX_CURSORS, PINNED_OVERSHOOT_LTGS, alExtentsCapacity, encodeMwcRecord,
  maxRecordBlocks, mwcRecordBytes, nextRecordBlock,
  scanMwcArea, WHOLE_LV, type DirtyChunks, type MwcEntry, type MwcRecord, type ResyncCursor,
} from '../format/index.js'
import { assert } from '../util/index.js'
import { isLvmfsError } from '../errors/index.js'

export { DEFAULT_AL_EXTENTS, PINNED_OVERSHOOT_LTGS, alExtentsCapacity } from '../format/index.js'
/** AIX's MWC cache size, the figure lvmfs used before the activity log. */
export const AIX_MWC_CACHE_LTGS = 62
export const DEFAULT_LTG_BYTES_MAX = 4 * 1024 * 1024
/** LTGs logged ahead of a sequential writer with one record. */
export const LOOK_AHEAD_LTGS = 8
export interface MwcOptions {
  /** Active extents of every LV, overriding the descriptors (tests). */
  readonly cacheLtgs?: number
  /** Called when a PV's log cannot be written; the engine marks the PV missing. */
  readonly onPvFailure?: (pvIndex: number, error: unknown) => Promise<void>
  /** The write-intent bitmaps a record for this PV must carry (read at every snapshot). */
  readonly dirtyOf?: (pvIndex: number) => DirtyChunks[]
}

interface CacheEntry {
  readonly lvId: number
  readonly ltgIndex: number
  readonly pvs: ReadonlySet<number>
  pins: number
  lastUseTick: number
  /** Flush epoch when the last write into this LTG completed (see #clean). */
  doneEpoch: number
  /** Resolves once a record holding this entry is durable on every PV in `pvs`. */
  recorded: Promise<void> | undefined
}

interface PvWriter {
  readonly areaBlocks: number
  newest: { blockIndex: number, blockCount: number } | null
  wantedGeneration: number
  durableGeneration: number
  inflight: Promise<void> | undefined
  /** The newest record on disk lists nothing (or there is none and the area reads as empty):
   * a clean record would change no meaning, only bytes, so writeClean skips the PV. */
  newestClean: boolean
}

const isCleanRecord = (record: Pick<MwcRecord, 'entries' | 'cursors' | 'dirty'>): boolean =>
  record.entries.length === 0 && record.cursors.length === 0 && record.dirty.length === 0

/** What the newest records on the PVs say after a crash. */
export interface MwcRecoveryInput {
  readonly entries: readonly MwcEntry[]
  readonly cursors: readonly ResyncCursor[]
  /** The newest record of every active PV that has one (write-intent bitmaps, per PV). */
  readonly records: ReadonlyArray<{ readonly pvIndex: number, readonly record: MwcRecord }>
  /** Active PVs whose area held bytes but no valid record: their LTGs are unknown. */
  readonly unreadablePvs: readonly number[]
}

function entryKey(lvId: number, ltgIndex: number): string {
  return `${lvId}:${ltgIndex}`
}

export function ltgBytesOf(ppSizeBytes: number, ltgBytesMax = DEFAULT_LTG_BYTES_MAX): number {
  const ltgBytes = Math.min(ppSizeBytes, ltgBytesMax)
  assert(ppSizeBytes % ltgBytes === 0, 'LTG size must divide the PP size')
  return ltgBytes
}

function count(counts: Map<number, number>, key: number, delta: number): void {
  const value = (counts.get(key) ?? 0) + delta
  if (value > 0) counts.set(key, value)
  else counts.delete(key)
}

export class MwcLog {
  readonly #vg: VolumeGroup
  readonly #cacheOverride: number | undefined
  readonly #onPvFailure: (pvIndex: number, error: unknown) => Promise<void>
  readonly #dirtyOf: (pvIndex: number) => DirtyChunks[]
  readonly #cache = new Map<string, CacheEntry>()
  /** lvId -> number of its entries in #cache. */
  readonly #perLv = new Map<number, number>()
  /** pvIndex -> number of entries with a copy on that PV (what its records list). */
  readonly #perPv = new Map<number, number>()
  readonly #writers = new Map<number, PvWriter>()
  readonly #cursors = new Map<string, ResyncCursor>()
  readonly #roomWaiters: Array<() => void> = []
  readonly ltgBytes: number
  #seq = 0
  #tick = 0
  #lookingAhead = false
  #epoch = 0
  readonly #cleanEpochs = new Map<number, number>()
  #recordsWritten = 0
  #evictions = 0

  constructor(vg: VolumeGroup, ltgBytes: number, options: MwcOptions = {}) {
    this.#vg = vg
    this.ltgBytes = ltgBytes
    this.#cacheOverride = options.cacheLtgs
    assert(options.cacheLtgs === undefined || options.cacheLtgs >= 1, 'MWC cache size out of range')
    this.#onPvFailure = options.onPvFailure ?? (async () => {})
    this.#dirtyOf = options.dirtyOf ?? (() => [])
  }

  get recordsWritten(): number {
    return this.#recordsWritten
  }

  /** LTGs dropped from the log to make room (each one cost a later miss if used again). */
  get evictions(): number {
    return this.#evictions
  }

  get cachedLtgs(): number {
    return this.#cache.size
  }

  cachedLtgsOf(lvId: number): number {
    return this.#perLv.get(lvId) ?? 0
  }

  /** The active extents an LV may hold (its descriptor's al-extents unless overridden). */
  alExtentsOf(lv: LvDescriptor): number {
    return this.#cacheOverride ?? lv.alExtents ?? DEFAULT_AL_EXTENTS
  }

  #pvId(pvIndex: number): string {
    const pv = this.#vg.descriptor.pvs[pvIndex]
    assert(pv !== undefined, `PV index ${pvIndex} out of range`)
    return pv.pvId
  }

  #areaBlocks(pvIndex: number): number {
    const blocks = Math.floor(this.#vg.mwcArea(pvIndex).sizeBytes / MWC_BLOCK_BYTES)
    assert(blocks >= 2, `MWC area of PV ${pvIndex} holds fewer than two blocks`)
    return blocks
  }

  /** Reads the newest record of every active PV; sets seq and ring positions past them. */
  async readRecovery(): Promise<MwcRecoveryInput> {
    const entries = new Map<string, MwcEntry>()
    const records: Array<{ pvIndex: number, record: MwcRecord }> = []
    const unreadablePvs: number[] = []
    let newest: MwcRecord | undefined
    for (let pvIndex = 0; pvIndex < this.#vg.descriptor.pvs.length; pvIndex++) {
      const device = this.#vg.device(pvIndex)
      if (device === undefined || this.#vg.pvState(pvIndex) !== 'active') continue
      const area = Buffer.alloc(this.#areaBlocks(pvIndex) * MWC_BLOCK_BYTES)
      await device.read(area, this.#vg.mwcArea(pvIndex).offsetBytes)
      const scan = scanMwcArea(area, { vgId: this.#vg.vgId, pvId: this.#pvId(pvIndex) })
      if (scan.unreadable) unreadablePvs.push(pvIndex)
      const found = scan.newest
      this.#writer(pvIndex).newestClean = !scan.unreadable && (found === null || isCleanRecord(found.record))
      if (found === null) continue
      this.#writer(pvIndex).newest = { blockIndex: found.blockIndex, blockCount: found.blockCount }
      this.#seq = Math.max(this.#seq, found.record.seq)
      for (const entry of found.record.entries) entries.set(entryKey(entry.lvId, entry.ltgIndex), entry)
      records.push({ pvIndex, record: found.record })
      if (newest === undefined || found.record.seq > newest.seq) newest = found.record
    }
    return { entries: [...entries.values()], cursors: newest?.cursors ?? [], records, unreadablePvs }
  }

  #writer(pvIndex: number): PvWriter {
    let writer = this.#writers.get(pvIndex)
    if (writer === undefined) {
      writer = { areaBlocks: this.#areaBlocks(pvIndex), newest: null, wantedGeneration: 0,
        durableGeneration: 0, inflight: undefined, newestClean: false }
      this.#writers.set(pvIndex, writer)
    }
    return writer
  }

  #snapshot(pvIndex: number, maxBytes: number): MwcRecord {
    const entries: MwcEntry[] = []
    for (const entry of this.#cache.values()) {
      if (entry.pvs.has(pvIndex)) entries.push({ lvId: entry.lvId, ltgIndex: entry.ltgIndex })
    }
    const cursors = [...this.#cursors.values()]
    assert(cursors.length <= MWC_MAX_CURSORS, 'too many concurrent resyncs for the MWC record')
    let dirty = this.#dirtyOf(pvIndex)
    if (mwcRecordBytes({ entries: entries.length, cursors: cursors.length, dirty }) > maxBytes) {
      // Bitmaps that do not fit become one whole-LV marker per LV: those LVs' stale LPs resync
      // whole, which is what they would without a bitmap. Never drop an LV silently: an older
      // record's bitmap of it would then be trusted.
      const lvIds = [...new Set(dirty.map((chunks) => chunks.lvId))]
      dirty = lvIds.map((lvId) => ({ lvId, lp: WHOLE_LV, chunkBytesLog2: 16, bits: new Uint8Array(0) }))
    }
    assert(mwcRecordBytes({ entries: entries.length, cursors: cursors.length, dirty }) <= maxBytes,
      `the activity log of PV ${pvIndex} holds more extents than its MWC area can record`)
    this.#seq += 1
    return { seq: this.#seq, entries, cursors, dirty }
  }

  async #writeRecord(pvIndex: number, device: BlockDevice, writer: PvWriter): Promise<void> {
    const record = this.#snapshot(pvIndex, maxRecordBlocks(writer.areaBlocks) * MWC_BLOCK_BYTES)
    const blockCount = Math.ceil(mwcRecordBytes({ entries: record.entries.length, cursors: record.cursors.length,
      dirty: record.dirty }) / MWC_BLOCK_BYTES)
    const blockIndex = nextRecordBlock(writer.newest, blockCount, writer.areaBlocks)
    const bytes = encodeMwcRecord(record, { vgId: this.#vg.vgId, pvId: this.#pvId(pvIndex), blockIndex })
    const offsetBytes = this.#vg.mwcArea(pvIndex).offsetBytes + blockIndex * MWC_BLOCK_BYTES
    // Range-limited durability when the device offers it: fdatasync would also flush every
    // dirty data page of the PV, which makes each new LTG wait for the disk.
    if (device.writeDurable !== undefined) await device.writeDurable(bytes, offsetBytes)
    else {
      await device.write(bytes, offsetBytes)
      await device.sync()
    }
    writer.newest = { blockIndex, blockCount }
    writer.newestClean = isCleanRecord(record)
    this.#recordsWritten += 1
  }

  /**
   * Group commit on one PV: resolves once a record whose snapshot was taken after this call
   * started is durable. Concurrent callers share record writes.
   */
  async commitPv(pvIndex: number): Promise<void> {
    const device = this.#vg.device(pvIndex)
    if (device === undefined || this.#vg.pvState(pvIndex) !== 'active') return
    const writer = this.#writer(pvIndex)
    const target = ++writer.wantedGeneration
    while (writer.durableGeneration < target) {
      if (writer.inflight !== undefined) {
        await writer.inflight.catch(() => {})
        continue
      }
      const generation = writer.wantedGeneration
      writer.inflight = this.#writeRecord(pvIndex, device, writer).then(() => {
        writer.durableGeneration = Math.max(writer.durableGeneration, generation)
      }).finally(() => {
        writer.inflight = undefined
      })
      try {
        await writer.inflight
      } catch (error) {
        // Only a device error means the PV failed; anything else is a defect of ours, and
        // marking a healthy PV missing for it would force the VG off (the 128-entry overflow did).
        if (!isLvmfsError(error, 'ENGINE_IO')) throw error
        await this.#onPvFailure(pvIndex, error)
        return
      }
    }
  }

  #pvsOf(lv: LvDescriptor, ltgIndex: number): Set<number> {
    const lp = Math.floor((ltgIndex * this.ltgBytes) / this.#vg.ppSizeBytes)
    const copies = lv.lps[lp]
    assert(copies !== undefined, `LTG ${ltgIndex} beyond LV ${lv.name}`)
    return new Set(copies.map((copy) => copy.pvIndex))
  }

  async #commitPvs(pvs: Iterable<number>): Promise<void> {
    await Promise.all([...pvs].map((pvIndex) => this.commitPv(pvIndex)))
  }

  #add(entry: CacheEntry): void {
    this.#cache.set(entryKey(entry.lvId, entry.ltgIndex), entry)
    this.#perLv.set(entry.lvId, this.cachedLtgsOf(entry.lvId) + 1)
    for (const pvIndex of entry.pvs) this.#perPv.set(pvIndex, (this.#perPv.get(pvIndex) ?? 0) + 1)
  }

  #delete(entry: CacheEntry): void {
    this.#cache.delete(entryKey(entry.lvId, entry.ltgIndex))
    count(this.#perLv, entry.lvId, -1)
    for (const pvIndex of entry.pvs) count(this.#perPv, pvIndex, -1)
  }

  /** Entries the records of one PV may list before pins must evict other LVs' extents: the
   * record capacity of its area less what pinned overshoot and open resyncs may add. */
  #pvSoftLimit(pvIndex: number): number {
    // A PV that is not active gets no records (its copies are stale), so it bounds nothing.
    if (this.#vg.pvState(pvIndex) !== 'active') return Number.POSITIVE_INFINITY
    return Math.max(1, alExtentsCapacity(this.#vg.mwcArea(pvIndex).sizeBytes) - 2 * PINNED_OVERSHOOT_LTGS)
  }

  /** Whether one more LTG of `lv` (with copies on `pvs`) needs room made first. */
  #full(lv: LvDescriptor, pvs: ReadonlySet<number>): boolean {
    if (this.cachedLtgsOf(lv.lvId) >= this.alExtentsOf(lv)) return true
    for (const pvIndex of pvs) if ((this.#perPv.get(pvIndex) ?? 0) >= this.#pvSoftLimit(pvIndex)) return true
    return false
  }

  /** Beyond the soft sizes, while every candidate is pinned: how far pins may go before waiting
   * (`extra`: what one write larger than the log needs beyond it). */
  #overshootLeft(lv: LvDescriptor, pvs: ReadonlySet<number>, extra: number): boolean {
    const overshoot = PINNED_OVERSHOOT_LTGS + extra
    if (this.cachedLtgsOf(lv.lvId) >= this.alExtentsOf(lv) + overshoot) return false
    for (const pvIndex of pvs) {
      if ((this.#perPv.get(pvIndex) ?? 0) >= this.#pvSoftLimit(pvIndex) + overshoot) return false
    }
    return true
  }

  /**
   * Makes room for one more LTG of `lv` on `pvs`: syncs the PVs of the oldest idle LTGs (of the
   * LV when the LV is at its al-extents, else of any LV sharing a full PV), then drops them.
   */
  async #makeRoom(lv: LvDescriptor, pvs: ReadonlySet<number>, extra = 0): Promise<void> {
    const limit = this.alExtentsOf(lv)
    while (this.#full(lv, pvs)) {
      const ownLimit = this.cachedLtgsOf(lv.lvId) >= limit
      const fullPvs = [...pvs].filter((pvIndex) => (this.#perPv.get(pvIndex) ?? 0) >= this.#pvSoftLimit(pvIndex))
      const idle = [...this.#cache.values()].filter((entry) => entry.pins === 0 &&
        (ownLimit ? entry.lvId === lv.lvId : fullPvs.some((pvIndex) => entry.pvs.has(pvIndex))))
      if (idle.length === 0) {
        // Every LTG has a write in flight: go past the soft size rather than make writers that
        // already pinned part of their LTGs wait for each other, up to the pinned overshoot.
        if (this.#overshootLeft(lv, pvs, extra)) return
        await new Promise<void>((wake) => this.#roomWaiters.push(wake))
        continue
      }
      // Clean LTGs (flushed since their last write) first, then least recently used; a batch
      // at a time so one sync pays for many evictions.
      idle.sort((a, b) => Number(this.#clean(b)) - Number(this.#clean(a)) || a.lastUseTick - b.lastUseTick)
      const victims = idle.slice(0, Math.max(1, Math.min(64, Math.floor(limit / 4))))
        .map((entry) => ({ entry, tick: entry.lastUseTick }))
      const toSync = new Set<number>()
      for (const { entry } of victims) if (!this.#clean(entry)) for (const pvIndex of entry.pvs) toSync.add(pvIndex)
      // The victims' data must be durable before a record stops listing them (clean ones already
      // are); a victim used again while the sync ran may hold newer, unsynced data and stays.
      await Promise.all([...toSync].map((pvIndex) => this.#vg.device(pvIndex)?.sync()))
      for (const { entry, tick } of victims) {
        // Another makeRoom may have dropped this entry meanwhile and a pin re-created the key:
        // only the very entry chosen as a victim may be deleted.
        const key = entryKey(entry.lvId, entry.ltgIndex)
        if (entry.pins === 0 && entry.lastUseTick === tick && this.#cache.get(key) === entry) {
          this.#delete(entry)
          this.#evictions += 1
        }
      }
    }
  }

  /** Pins the LTGs a write touches; resolves when every one is durably logged. On failure
   * nothing stays pinned. A write spanning more LTGs than the LV's log holds is let past the
   * bound by its own size (it needs every one of them at once). */
  async pin(lv: LvDescriptor, ltgIndexes: readonly number[]): Promise<void> {
    const waits: Array<Promise<void>> = []
    const pinned: CacheEntry[] = []
    const extra = Math.max(0, ltgIndexes.length - this.alExtentsOf(lv))
    try {
      for (const ltgIndex of ltgIndexes) {
        let entry = this.#cache.get(entryKey(lv.lvId, ltgIndex))
        const pvs = this.#pvsOf(lv, ltgIndex)
        // Concurrent pins all wait in makeRoom and wake together: re-check after each wait, so no
        // LV holds more entries than its limit plus the pinned overshoot.
        while (entry === undefined && this.#full(lv, pvs)) {
          await this.#makeRoom(lv, pvs, extra)
          entry = this.#cache.get(entryKey(lv.lvId, ltgIndex))
          // No await between this check and the insert below.
          if (this.#overshootLeft(lv, pvs, extra)) break
        }
        if (entry === undefined) {
          entry = { lvId: lv.lvId, ltgIndex, pvs, pins: 0, lastUseTick: 0, doneEpoch: 0, recorded: undefined }
          this.#add(entry)
          entry.recorded = this.#commitPvs(pvs)
          // Awaited below; this only keeps an early rejection from counting as unhandled.
          entry.recorded.catch(() => {})
        }
        entry.pins += 1
        entry.lastUseTick = ++this.#tick
        pinned.push(entry)
        waits.push(entry.recorded!)
      }
      await Promise.all(waits)
    } catch (error) {
      for (const entry of pinned) entry.pins -= 1
      this.#wakeRoomWaiters()
      throw error
    }
    const last = ltgIndexes[ltgIndexes.length - 1]
    if (last !== undefined) this.#lookAhead(lv, last + 1)
  }

  /** Sequential look-ahead: when the LTG after a write is not logged yet, log the next
   * LOOK_AHEAD_LTGS at once in the background (making room first), so a sequential writer
   * needs one record per LOOK_AHEAD_LTGS LTGs and does not wait for it. */
  #lookAhead(lv: LvDescriptor, first: number): void {
    const endLtg = Math.ceil((lv.lps.length * this.#vg.ppSizeBytes) / this.ltgBytes)
    if (first >= endLtg || this.#cache.has(entryKey(lv.lvId, first)) || this.#lookingAhead) return
    this.#lookingAhead = true
    const run = async (): Promise<void> => {
      await this.#makeRoom(lv, this.#pvsOf(lv, first))
      const pvs = new Set<number>()
      const added: CacheEntry[] = []
      for (let ltgIndex = first; ltgIndex < Math.min(endLtg, first + LOOK_AHEAD_LTGS); ltgIndex++) {
        const entryPvs = this.#pvsOf(lv, ltgIndex)
        if (this.#cache.has(entryKey(lv.lvId, ltgIndex)) || this.#full(lv, entryPvs)) continue
        const entry: CacheEntry = { lvId: lv.lvId, ltgIndex, pvs: entryPvs, pins: 0,
          lastUseTick: ++this.#tick, doneEpoch: 0, recorded: undefined }
        this.#add(entry)
        for (const pvIndex of entry.pvs) pvs.add(pvIndex)
        added.push(entry)
      }
      const recorded = this.#commitPvs(pvs)
      for (const entry of added) entry.recorded = recorded
      await recorded
    }
    run().catch(() => {}).finally(() => { this.#lookingAhead = false })
  }

  unpin(lv: LvDescriptor, ltgIndexes: readonly number[]): void {
    for (const ltgIndex of ltgIndexes) {
      const entry = this.#cache.get(entryKey(lv.lvId, ltgIndex))
      assert(entry !== undefined && entry.pins > 0, `LTG ${ltgIndex} of LV ${lv.name} unpinned but not pinned`)
      entry.pins -= 1
      entry.doneEpoch = this.#epoch
    }
    this.#wakeRoomWaiters()
  }

  #wakeRoomWaiters(): void {
    while (this.#roomWaiters.length > 0) this.#roomWaiters.shift()!()
  }

  /**
   * Flush bookkeeping, so eviction can skip the sync for LTGs an application flush already made
   * durable: `flushStarted` before syncing the PVs of an LV, `flushDone` after every sync of
   * that flush succeeded. A write completed (unpinned) before the flush started is covered.
   */
  flushStarted(): number {
    const captured = this.#epoch
    this.#epoch += 1
    return captured
  }

  flushDone(lvId: number, captured: number): void {
    this.#cleanEpochs.set(lvId, Math.max(this.#cleanEpochs.get(lvId) ?? -1, captured))
  }

  #clean(entry: CacheEntry): boolean {
    return entry.pins === 0 && entry.doneEpoch <= (this.#cleanEpochs.get(entry.lvId) ?? -1)
  }

  /** Sets (or with offset undefined, removes) the resync cursor of one LP and makes it durable
   * on every active PV. */
  async setCursor(lvId: number, lp: number, cursor: ResyncCursor | undefined): Promise<void> {
    const key = `${lvId}:${lp}`
    if (cursor === undefined) this.#cursors.delete(key)
    else this.#cursors.set(key, cursor)
    await this.#commitPvs(this.#activePvs())
  }

  /** Removes several cursors with one durable record per active PV. */
  async dropCursors(keys: readonly string[]): Promise<void> {
    for (const key of keys) this.#cursors.delete(key)
    await this.#commitPvs(this.#activePvs())
  }

  cursor(lvId: number, lp: number): ResyncCursor | undefined {
    return this.#cursors.get(`${lvId}:${lp}`)
  }

  cursors(): ResyncCursor[] {
    return [...this.#cursors.values()]
  }

  /** Re-adopts a cursor found at vary-on (written again with the next record; no I/O here). */
  restoreCursor(cursor: ResyncCursor): void {
    this.#cursors.set(`${cursor.lvId}:${cursor.lp}`, cursor)
  }

  /** Writes a record with no idle LTG entries to every active PV (after MWC recovery; at stop). */
  async writeClean(): Promise<void> {
    await Promise.all(this.#activePvs().map((pvIndex) => this.#vg.device(pvIndex)?.sync()))
    // LTGs still pinned (a native gate left open) stay in the log: their writes may be in flight.
    for (const entry of [...this.#cache.values()]) if (entry.pins === 0) this.#delete(entry)
    // A session that logged nothing leaves the PVs byte for byte as it found them.
    await this.#commitPvs(this.#activePvs().filter((pvIndex) => !this.#writer(pvIndex).newestClean ||
      !this.#wouldBeClean(pvIndex)))
  }

  #wouldBeClean(pvIndex: number): boolean {
    return this.#cursors.size === 0 && this.#dirtyOf(pvIndex).length === 0 &&
      ![...this.#cache.values()].some((entry) => entry.pvs.has(pvIndex))
  }

  #activePvs(): number[] {
    const pvs: number[] = []
    for (let pvIndex = 0; pvIndex < this.#vg.descriptor.pvs.length; pvIndex++) {
      if (this.#vg.pvState(pvIndex) === 'active') pvs.push(pvIndex)
    }
    return pvs
  }
}
