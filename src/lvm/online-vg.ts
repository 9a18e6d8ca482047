/**
 * OnlineVg: a varied-on volume group (implements VolumeGroup).
 *
 * Commit protocol (descriptor):
 *  1. The next descriptor is validated (assertion: a bug otherwise) and encoded once.
 *  2. Targets are the copy positions of the old and the new placement (they differ when PVs
 *     join, leave or are removed). Required: a majority of the old placement AND a majority of
 *     the new one (joint majority, so any later reader's majority intersects it whichever
 *     placement it believes). A forced vary-on requires only the new placement.
 *  3. If the reachable positions cannot form those majorities, nothing is written: the VG is
 *     forced off (LVM_FORCEOFF). A minority never receives a descriptor we know cannot commit.
 *  4. Each position gets the copy in the slot it does not currently use (the other slot keeps
 *     the previous copy), written in parallel, each fdatasync'd.
 *  5. If the successful writes are not a majority, the VG is forced off. Otherwise the commit is
 *     durable; positions that failed belong to PVs that are then marked MISSING in the status.
 * Status (VGSA) commits follow the same steps over the current placement.
 */
import { LvmfsError } from '../errors/index.js'
import type { BlockDevice, OpenOptions } from '../io/index.js'
import {
  MAX_AL_EXTENTS, MIN_BITMAP_CHUNK_LOG2, NAME_PATTERN, crc32c, encodeDescriptorBody, encodeVgdaCopy, encodeVgsaCopy,
  vgdaFrameBytes,
  vgdaSlotOffset, vgsaRecordBytes, vgsaSlotOffset, type PvLabel,
} from '../format/index.js'
import { PINNED_OVERSHOOT_LTGS, alExtentsCapacity } from '../format/mwc-log.js'
import { assert } from '../util/assert.js'
import { allocateLps } from './allocator.js'
import { writeSlots, type SlotWrite } from './copy-writer.js'
import { allocatedCount, assertValidDescriptor } from './descriptor.js'
import type {
  JsonValue, LvDescriptor, PpRef, PvState, StaleChange, VaryOnFlags, VgDescriptor, VgStatus,
} from './model.js'
import { isMajority, placeKey, standardPlacement } from './placement.js'
import { isStaleBit, normalizeStatus, statusEquals, statusToRecord, withStaleBits } from './status.js'
import type { LvChangeOptions, LvCreateOptions, VgChangeEvent, VgState, VolumeGroup } from './volume-group.js'
import { addPvsToVg, attachPv, releasePvFromVg } from './pv-ops.js'

export type DeviceOpener = (path: string, options: OpenOptions) => Promise<BlockDevice>

/** Runs one serialised mutation (shared VGs: under the DLM's VG lock EX, see shared-vg.ts). */
export type CommitGuard = <T>(mutation: () => Promise<T>) => Promise<T>

export interface PvRuntime {
  readonly device: BlockDevice
  readonly label: PvLabel
}

export interface OnlineVgInit {
  readonly descriptor: VgDescriptor
  readonly status: VgStatus
  readonly runtimes: Map<string, PvRuntime>
  readonly vgdaSlots: Map<string, 0 | 1>
  readonly vgsaSlots: Map<string, 0 | 1>
  readonly seqFloor: number
  readonly statusSeqFloor: number
  readonly flags: VaryOnFlags
  readonly opener: DeviceOpener
}

/** VGs online in this process, by vgId (a second vary-on finds the VG here). */
export const onlineVgs = new Map<string, OnlineVg>()

/** Bytes written by the last commit (benchmark). */
export const commitStats = { lastCommitBytes: 0 }

const SCHEDULES = ['p', 'ps', 'pr', 's']
const STRICT = ['y', 'n', 's']
const MWC = ['active', 'passive', 'off']

export function usage(message: string, detail?: string): LvmfsError {
  return new LvmfsError('ENGINE_USAGE', message, detail === undefined ? {} : { detail })
}

export class OnlineVg implements VolumeGroup {
  state: VgState = 'online'
  descriptor: VgDescriptor
  status: VgStatus
  readonly runtimes: Map<string, PvRuntime>
  readonly vgdaSlots: Map<string, 0 | 1>
  readonly vgsaSlots: Map<string, 0 | 1>
  seqFloor: number
  statusSeqFloor: number
  readonly noOpenLvs: boolean
  readonly autoResync: boolean
  readonly opener: DeviceOpener
  private chain: Promise<unknown> = Promise.resolve()
  private commitGuard: CommitGuard | undefined
  private readonly changeListeners = new Set<(event: VgChangeEvent) => void>()
  private readonly forceOffListeners = new Set<(error: Error) => void>()

  constructor(init: OnlineVgInit) {
    this.descriptor = init.descriptor
    this.status = init.status
    this.runtimes = init.runtimes
    this.vgdaSlots = init.vgdaSlots
    this.vgsaSlots = init.vgsaSlots
    this.seqFloor = init.seqFloor
    this.statusSeqFloor = init.statusSeqFloor
    this.noOpenLvs = init.flags.noopenLvs === true
    this.autoResync = init.flags.autoResync !== false
    this.opener = init.opener
  }

  get vgId(): string { return this.descriptor.vgId }
  get name(): string { return this.descriptor.name }
  get ppSizeBytes(): number { return this.descriptor.ppSizeBytes }

  pvState(pvIndex: number): PvState {
    const pv = this.descriptor.pvs[pvIndex]
    if (pv === undefined) throw usage(`no PV with index ${pvIndex}`)
    if (pv.removed) return 'removed'
    return this.status.missing[pvIndex] === true || !this.runtimes.has(pv.pvId) ? 'missing' : 'active'
  }

  device(pvIndex: number): BlockDevice | undefined {
    const pv = this.descriptor.pvs[pvIndex]
    return pv === undefined || this.pvState(pvIndex) !== 'active' ? undefined : this.runtimes.get(pv.pvId)?.device
  }

  private labelOf(pvIndex: number): PvLabel {
    const pv = this.descriptor.pvs[pvIndex]
    const label = pv === undefined ? undefined : this.runtimes.get(pv.pvId)?.label
    if (label === undefined) {
      throw new LvmfsError('LVM_PVSTATE', `PV ${pvIndex} of "${this.name}" is not reachable`, {
        context: { pvIndex } })
    }
    return label
  }

  ppOffsetBytes(pvIndex: number, pp: number): number {
    const label = this.labelOf(pvIndex)
    assert(pp >= 0 && pp < label.ppCount, `pp ${pp} inside PV ${pvIndex}`)
    return label.dataOffsetBytes + pp * this.ppSizeBytes
  }

  mwcArea(pvIndex: number): { offsetBytes: number; sizeBytes: number } {
    const label = this.labelOf(pvIndex)
    return { offsetBytes: label.mwcOffsetBytes, sizeBytes: label.mwcSizeBytes }
  }

  isStale(pvIndex: number, pp: number): boolean {
    return isStaleBit(this.status, pvIndex, pp)
  }

  lvByName(name: string): LvDescriptor | undefined {
    return this.descriptor.lvs.find((lv) => lv.name === name)
  }

  lvById(lvId: number): LvDescriptor | undefined {
    return this.descriptor.lvs.find((lv) => lv.lvId === lvId)
  }

  lpCountForBytes(bytes: number): number {
    return Math.ceil(bytes / this.ppSizeBytes)
  }

  onChange(listener: (event: VgChangeEvent) => void): () => void {
    this.changeListeners.add(listener)
    return () => this.changeListeners.delete(listener)
  }

  onForceOff(listener: (error: Error) => void): () => void {
    this.forceOffListeners.add(listener)
    return () => this.forceOffListeners.delete(listener)
  }

  /** Runs mutations one at a time, in call order, each inside the commit guard if one is set. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const guarded = (): Promise<T> => {
      this.assertOnline()
      return fn()
    }
    const run = this.chain.then(() => (this.commitGuard === undefined ? guarded() : this.commitGuard(guarded)))
    this.chain = run.catch(() => undefined)
    return run
  }

  /** Shared VGs: every later mutation runs inside `guard` (which takes the VG lock EX and
   * reloads the descriptor when another process moved it). */
  setCommitGuard(guard: CommitGuard | undefined): void {
    this.commitGuard = guard
  }

  /** Runs `fn` in the mutation order but outside the commit guard (shared-vg.ts reloads). */
  unguarded<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(() => {
      this.assertOnline()
      return fn()
    })
    this.chain = run.catch(() => undefined)
    return run
  }

  assertOnline(): void {
    if (this.state === 'forcedoff') {
      throw new LvmfsError('LVM_FORCEOFF', `volume group "${this.name}" was forced off after losing quorum`)
    }
    if (this.state === 'offline') throw new LvmfsError('LVM_OFFLINE', `volume group "${this.name}" is varied off`)
  }

  private requireLv(name: string): LvDescriptor {
    const lv = this.lvByName(name)
    if (lv === undefined) {
      throw new LvmfsError('ENGINE_NOT_FOUND', `logical volume "${name}" not found in "${this.name}"`, {
        context: { vg: this.name, lv: name } })
    }
    return lv
  }

  activePvIndexes(): number[] {
    return this.descriptor.pvs.flatMap((_, i) => (this.pvState(i) === 'active' ? [i] : []))
  }

  // ---- LV mutations ----

  lvCreate(options: LvCreateOptions): Promise<LvDescriptor> {
    return this.serial(async () => {
      const copies = options.copies ?? 1
      validateLvOptions(options, copies)
      if (this.lvByName(options.name) !== undefined) {
        throw new LvmfsError('ENGINE_EXISTS', `logical volume "${options.name}" already exists in "${this.name}"`)
      }
      const d = this.descriptor
      const active = this.activePvIndexes()
      const allowed = options.pvIndexes === undefined ? active : options.pvIndexes.filter((i) => active.includes(i))
      const strict = options.strict ?? 'y'
      const lps = allocateLps(d, { lpCount: options.lpCount, copies, strict, allowedPvs: allowed })
      const lv: LvDescriptor = { lvId: d.nextLvId, name: options.name, copies, strict,
        schedule: options.schedule ?? 'p', mwc: options.mwc ?? (copies > 1 ? 'active' : 'off'), lps,
        ext: options.ext ?? {},
        ...(options.alExtents === undefined ? {} : { alExtents: options.alExtents }),
        ...(options.bitmapChunkBytes === undefined ? {} : { bitmapChunkBytes: options.bitmapChunkBytes }) }
      this.validateLogOptions(lv)
      await this.commitDescriptor({ ...d, lvs: [...d.lvs, lv], nextLvId: d.nextLvId + 1 })
      return lv
    })
  }

  lvExtend(lvName: string, addLps: number): Promise<LvDescriptor> {
    return this.serial(async () => {
      const lv = this.requireLv(lvName)
      if (!Number.isSafeInteger(addLps) || addLps < 1) throw usage(`invalid extension of "${lvName}": ${addLps} LPs`)
      const more = allocateLps(this.descriptor, { lpCount: addLps, copies: lv.copies, strict: lv.strict,
        allowedPvs: this.activePvIndexes(), existing: lv.lps })
      return this.replaceLv(lv, { ...lv, lps: [...lv.lps, ...more] })
    })
  }

  lvReduce(lvName: string, removeLps: number): Promise<LvDescriptor> {
    return this.serial(async () => {
      const lv = this.requireLv(lvName)
      if (!Number.isSafeInteger(removeLps) || removeLps < 1 || removeLps >= lv.lps.length) {
        throw usage(`invalid reduction of "${lvName}": ${removeLps} of ${lv.lps.length} LPs`,
          'An LV keeps at least one LP; use lvremove to delete it.')
      }
      return this.replaceLv(lv, { ...lv, lps: lv.lps.slice(0, lv.lps.length - removeLps) })
    })
  }

  /**
   * Exchanges the physical partitions of LP pairs of one LV in a single descriptor commit, so a
   * crash leaves either every pair exchanged or none. Stale bits belong to PPs and move with
   * them. Replication uses it to publish partitions staged beside the live ones at once.
   */
  lvSwapLps(lvName: string, pairs: ReadonlyArray<readonly [number, number]>): Promise<LvDescriptor> {
    return this.serial(async () => {
      const lv = this.requireLv(lvName)
      const lps = [...lv.lps]
      const seen = new Set<number>()
      for (const [a, b] of pairs) {
        if (a === b) throw usage(`LP ${a} of "${lvName}" cannot be exchanged with itself`)
        for (const lp of [a, b]) {
          if (!Number.isSafeInteger(lp) || lp < 0 || lp >= lps.length) {
            throw usage(`invalid LP ${lp} of "${lvName}" (it has ${lps.length})`)
          }
          if (seen.has(lp)) throw usage(`LP ${lp} of "${lvName}" appears in more than one exchange`)
          seen.add(lp)
        }
        const first = lps[a]!
        lps[a] = lps[b]!
        lps[b] = first
      }
      if (pairs.length === 0) return lv
      return this.replaceLv(lv, { ...lv, lps })
    })
  }

  lvRemove(lvName: string): Promise<void> {
    return this.serial(async () => {
      const lv = this.requireLv(lvName)
      await this.commitDescriptor({ ...this.descriptor, lvs: this.descriptor.lvs.filter((x) => x !== lv) })
    })
  }

  lvRename(lvName: string, newName: string): Promise<LvDescriptor> {
    return this.serial(async () => {
      const lv = this.requireLv(lvName)
      if (!NAME_PATTERN.test(newName)) throw usage(`invalid LV name "${newName}"`, nameRule)
      if (this.lvByName(newName) !== undefined) {
        throw new LvmfsError('ENGINE_EXISTS', `logical volume "${newName}" already exists in "${this.name}"`)
      }
      return this.replaceLv(lv, { ...lv, name: newName })
    })
  }

  lvChange(lvName: string, change: LvChangeOptions): Promise<LvDescriptor> {
    return this.serial(async () => {
      const lv = this.requireLv(lvName)
      if (change.mwc !== undefined && !MWC.includes(change.mwc)) throw usage(`invalid mwc "${change.mwc}"`)
      if (change.mwc === undefined && change.alExtents === undefined && change.bitmapChunkBytes === undefined) {
        throw usage(`nothing to change on "${lvName}"`, 'Give --mwc, --al-extents or --bitmap-chunk.')
      }
      const next: LvDescriptor = { ...lv, ...(change.mwc === undefined ? {} : { mwc: change.mwc }),
        ...(change.alExtents === undefined ? {} : { alExtents: change.alExtents }),
        ...(change.bitmapChunkBytes === undefined ? {} : { bitmapChunkBytes: change.bitmapChunkBytes }) }
      this.validateLogOptions(next)
      return this.replaceLv(lv, next)
    })
  }

  /** al-extents within what one activity-log record on the LV's PVs can list; the bitmap
   * chunk a power of two that divides the PP. */
  private validateLogOptions(lv: LvDescriptor): void {
    if (lv.alExtents !== undefined) {
      const pvs = [...new Set(lv.lps.flatMap((copies) => copies.map((copy) => copy.pvIndex)))]
        .filter((pvIndex) => this.pvState(pvIndex) === 'active')
      const capacity = Math.min(MAX_AL_EXTENTS, ...pvs.map((pvIndex) =>
        alExtentsCapacity(this.mwcArea(pvIndex).sizeBytes) - 2 * PINNED_OVERSHOOT_LTGS))
      if (!Number.isSafeInteger(lv.alExtents) || lv.alExtents < 1 || lv.alExtents > capacity) {
        throw new LvmfsError('LVM_INVALID_PARAM', `invalid al-extents ${lv.alExtents} for "${lv.name}"`, {
          detail: `The activity log of this LV's PVs holds 1 to ${capacity} extents.`,
          context: { field: 'alExtents', value: lv.alExtents, max: capacity } })
      }
    }
    const chunk = lv.bitmapChunkBytes
    if (chunk !== undefined && (!Number.isSafeInteger(chunk) || chunk < 2 ** MIN_BITMAP_CHUNK_LOG2 ||
        !Number.isInteger(Math.log2(chunk)) || chunk > this.ppSizeBytes)) {
      throw new LvmfsError('LVM_INVALID_PARAM', `invalid bitmap chunk ${chunk} for "${lv.name}"`, {
        detail: `A power of two from ${2 ** MIN_BITMAP_CHUNK_LOG2} bytes up to the PP size (${this.ppSizeBytes}).`,
        context: { field: 'bitmapChunkBytes', value: chunk } })
    }
  }

  lvSetExt(lvName: string, ext: { readonly [key: string]: JsonValue }): Promise<LvDescriptor> {
    return this.serial(async () => {
      const lv = this.requireLv(lvName)
      if (typeof ext !== 'object' || ext === null || Array.isArray(ext)) throw usage('ext must be a JSON object')
      return this.replaceLv(lv, { ...lv, ext: JSON.parse(JSON.stringify(ext)) as typeof ext })
    })
  }

  private async replaceLv(old: LvDescriptor, next: LvDescriptor): Promise<LvDescriptor> {
    await this.commitDescriptor({ ...this.descriptor,
      lvs: this.descriptor.lvs.map((lv) => (lv === old ? next : lv)) })
    return next
  }

  // ---- status mutations ----

  markStale(changes: readonly StaleChange[]): Promise<void> {
    return this.serial(() => this.changeStale(changes, true))
  }

  clearStale(changes: readonly StaleChange[]): Promise<void> {
    return this.serial(() => this.changeStale(changes, false))
  }

  private async changeStale(changes: readonly StaleChange[], value: boolean): Promise<void> {
    for (const c of changes) {
      const pv = this.descriptor.pvs[c.pvIndex]
      if (pv === undefined || !Number.isSafeInteger(c.pp) || c.pp < 0 || c.pp >= pv.ppCount) {
        throw usage(`no PP ${c.pp} on PV ${c.pvIndex}`)
      }
    }
    const next = withStaleBits(this.status, changes, value)
    if (!statusEquals(next, this.status)) await this.commitStatus(next)
  }

  setLvDirty(lvId: number, dirty: boolean): Promise<void> {
    return this.serial(async () => {
      if (this.lvById(lvId) === undefined) throw usage(`no LV with id ${lvId}`)
      const set = new Set(this.status.dirtyLvs)
      if (dirty) set.add(lvId)
      else set.delete(lvId)
      if (set.size === this.status.dirtyLvs.length) return
      await this.commitStatus({ ...this.status, dirtyLvs: [...set].sort((a, b) => a - b) })
    })
  }

  setPvState(pvIndex: number, state: PvState): Promise<void> {
    return this.serial(async () => {
      const current = this.pvState(pvIndex)
      if (current === state) return
      const pv = this.descriptor.pvs[pvIndex]!
      if (state === 'missing') {
        await this.dropDevice(pv.pvId)
        await this.commitStatus(withMissing(this.status, [pvIndex], true))
      } else if (state === 'removed') {
        await this.dropDevice(pv.pvId)
        await this.commitPvRemoval([pvIndex], false)
      } else {
        await this.returnPv(pvIndex, pv.lastPath)
      }
    })
  }

  /** Brings a MISSING or REMOVED PV back: its device must open and carry the right label. */
  async returnPv(pvIndex: number, path: string, device?: BlockDevice): Promise<void> {
    const pv = this.descriptor.pvs[pvIndex]!
    if (!this.runtimes.has(pv.pvId)) {
      this.runtimes.set(pv.pvId, await attachPv(this, pv.pvId, path, device))
    }
    // Rewrite its copies from the current descriptor and status (they are stale).
    const pvs = this.descriptor.pvs.map((p, i) => (i === pvIndex ? { ...p, removed: false, lastPath: path } : p))
    await this.commitDescriptor({ ...this.descriptor, pvs, descriptorCopies: standardPlacement(pvs) },
      { status: withMissing(this.status, [pvIndex], false) })
    await this.commitStatus(this.status, true)
  }

  /** Marks PVs removed and drops their descriptor copies (forced vary-on, setPvState). */
  async commitPvRemoval(pvIndexes: readonly number[], force: boolean): Promise<void> {
    const pvs = this.descriptor.pvs.map((p, i) => (pvIndexes.includes(i) ? { ...p, removed: true } : p))
    await this.commitDescriptor({ ...this.descriptor, pvs, descriptorCopies: standardPlacement(pvs) }, { force })
    await this.commitStatus(withMissing(this.status, pvIndexes, false), true)
  }

  // ---- VG membership ----

  vgExtend(paths: readonly string[]): Promise<void> {
    return this.serial(() => addPvsToVg(this, paths))
  }

  vgReduce(pvIndex: number): Promise<void> {
    return this.serial(async () => {
      const d = this.descriptor
      const pv = d.pvs[pvIndex]
      if (pv === undefined) throw usage(`no PV with index ${pvIndex} in "${this.name}"`)
      const allocated = allocatedCount(d, pvIndex)
      if (allocated > 0) {
        throw new LvmfsError('LVM_PVHASPPS', `PV "${pv.lastPath}" still holds ${allocated} allocated PPs`, {
          hint: 'Move or remove the LVs on it first.', context: { pvId: pv.pvId, allocated } })
      }
      if (d.pvs.filter((p, i) => i !== pvIndex && !p.removed).length === 0) {
        throw usage(`cannot remove the last PV of "${this.name}"`)
      }
      const pvs = d.pvs.filter((_, i) => i !== pvIndex)
      const shift = (ref: PpRef): PpRef => (ref.pvIndex > pvIndex ? { pvIndex: ref.pvIndex - 1, pp: ref.pp } : ref)
      const lvs = d.lvs.map((lv) => ({ ...lv, lps: lv.lps.map((copies) => copies.map(shift)) }))
      const next = { ...d, pvs, lvs, descriptorCopies: standardPlacement(pvs) }
      const status: VgStatus = { ...this.status, missing: this.status.missing.filter((_, i) => i !== pvIndex),
        stale: this.status.stale.filter((_, i) => i !== pvIndex) }
      await this.commitDescriptor(next, { status })
      await this.commitStatus(this.status, true)
      const runtime = this.runtimes.get(pv.pvId)
      this.runtimes.delete(pv.pvId)
      if (runtime !== undefined) await releasePvFromVg(runtime)
    })
  }

  async varyOff(): Promise<void> {
    await this.chain
    if (this.state === 'online') this.state = 'offline'
    await this.closeAll()
  }

  // ---- commits ----

  private descriptorPlaces(d: VgDescriptor): string[] {
    return d.descriptorCopies.map((c) => placeKey(d.pvs[c.pvIndex]!.pvId, c.area))
  }

  private reachable(key: string): PvRuntime | undefined {
    // A MISSING or REMOVED PV never has a runtime (its device is dropped when it goes).
    return this.runtimes.get(key.slice(0, key.indexOf(':')))
  }

  /** Commits a descriptor (see the module comment). `force`: only the new placement counts.
   * `status`: the status re-indexed for `nextIn` when PVs join or leave. */
  async commitDescriptor(nextIn: VgDescriptor,
    options: { force?: boolean; status?: VgStatus } = {}): Promise<void> {
    const next: VgDescriptor = { ...nextIn, seq: this.seqFloor + 1, timestampMs: Date.now() }
    assertValidDescriptor(next)
    const oldPlaces = this.descriptorPlaces(this.descriptor)
    const newPlaces = this.descriptorPlaces(next)
    const required = options.force === true ? [newPlaces] : [oldPlaces, newPlaces]
    const targets = [...new Set([...oldPlaces, ...newPlaces])]
    this.checkReachableMajority(required)
    const body = encodeDescriptorBody(next)
    const bodyCrc = crc32c(body)
    const jobs: SlotWrite[] = []
    for (const key of targets) {
      const rt = this.reachable(key)
      if (rt === undefined) continue
      if (vgdaFrameBytes(body.length) > rt.label.vgdaSlotBytes) {
        throw new LvmfsError('LVM_VGDASPACE', `descriptor of "${this.name}" does not fit the VGDA of "${rt.device.path}"`, {
          detail: `Needs ${vgdaFrameBytes(body.length)} bytes; the slot holds ${rt.label.vgdaSlotBytes}.` })
      }
      const area = Number(key.slice(key.indexOf(':') + 1)) as 0 | 1
      const slot = (1 - (this.vgdaSlots.get(key) ?? 1)) as 0 | 1
      jobs.push({ key, device: rt.device, offsetBytes: vgdaSlotOffset(rt.label, area, slot),
        bytes: encodeVgdaCopy({ vgId: next.vgId, seq: next.seq, timestampMs: next.timestampMs, body, bodyCrc,
          self: { pvId: rt.label.pvId, area, slot } }) })
    }
    const outcome = await writeSlots(jobs)
    commitStats.lastCommitBytes = outcome.bytesWritten
    this.seqFloor = next.seq
    for (const key of outcome.ok) this.vgdaSlots.set(key, (1 - (this.vgdaSlots.get(key) ?? 1)) as 0 | 1)
    for (const set of required) {
      if (!isMajority(set.filter((k) => outcome.ok.has(k)).length, set.length)) {
        throw await this.forceOff(`a descriptor commit reached ${outcome.ok.size} of ${targets.length} copies`)
      }
    }
    this.descriptor = next
    this.status = normalizeStatus(options.status ?? this.status, next)
    this.emit('descriptor')
    await this.handleFailedWrites(outcome.failed)
  }

  /** Commits a status record to the current placement. `always`: write even if unchanged. */
  async commitStatus(nextIn: VgStatus, always = false): Promise<void> {
    const normalized = normalizeStatus(nextIn, this.descriptor)
    if (!always && statusEquals(normalized, this.status)) return
    const next: VgStatus = { ...normalized, seq: this.statusSeqFloor + 1 }
    const places = this.descriptorPlaces(this.descriptor)
    this.checkReachableMajority([places])
    const record = statusToRecord(next, this.descriptor)
    const size = vgsaRecordBytes(record.pvs, record.dirtyLvs.length)
    const jobs: SlotWrite[] = []
    for (const key of places) {
      const rt = this.reachable(key)
      if (rt === undefined) continue
      if (size > rt.label.vgsaSlotBytes) {
        throw new LvmfsError('LVM_VGDASPACE', `status area of "${this.name}" does not fit "${rt.device.path}"`)
      }
      const area = Number(key.slice(key.indexOf(':') + 1)) as 0 | 1
      const slot = (1 - (this.vgsaSlots.get(key) ?? 1)) as 0 | 1
      jobs.push({ key, device: rt.device, offsetBytes: vgsaSlotOffset(rt.label, area, slot),
        bytes: encodeVgsaCopy(record, { pvId: rt.label.pvId, area, slot }) })
    }
    const outcome = await writeSlots(jobs)
    this.statusSeqFloor = next.seq
    for (const key of outcome.ok) this.vgsaSlots.set(key, (1 - (this.vgsaSlots.get(key) ?? 1)) as 0 | 1)
    if (!isMajority(places.filter((k) => outcome.ok.has(k)).length, places.length)) {
      throw await this.forceOff(`a status commit reached ${outcome.ok.size} of ${places.length} copies`)
    }
    this.status = next
    this.emit('status')
    await this.handleFailedWrites(outcome.failed)
  }

  private checkReachableMajority(required: readonly string[][]): void {
    for (const set of required) {
      const reachable = set.filter((key) => this.reachable(key) !== undefined).length
      if (!isMajority(reachable, set.length)) {
        // Nothing written: we know the commit cannot reach a majority.
        throw this.forceOffSync(`only ${reachable} of ${set.length} descriptor copies are reachable`)
      }
    }
  }

  /** PVs whose copy write failed are dropped and marked MISSING (AIX: the VGSAs on the other
   * PVs record the failed PV). Bounded: each round removes at least one device. */
  private async handleFailedWrites(failed: ReadonlyMap<string, unknown>): Promise<void> {
    if (failed.size === 0) return
    const pvIds = new Set([...failed.keys()].map((key) => key.slice(0, key.indexOf(':'))))
    const indexes: number[] = []
    for (const pvId of pvIds) {
      await this.dropDevice(pvId)
      const i = this.descriptor.pvs.findIndex((p) => p.pvId === pvId)
      if (i >= 0) indexes.push(i)
    }
    if (indexes.length > 0) await this.commitStatus(withMissing(this.status, indexes, true))
  }

  private async dropDevice(pvId: string): Promise<void> {
    const rt = this.runtimes.get(pvId)
    this.runtimes.delete(pvId)
    await rt?.device.close().catch(() => undefined)
  }

  private forceOffSync(why: string): LvmfsError {
    const error = new LvmfsError('LVM_FORCEOFF', `quorum lost: volume group "${this.name}" forced off`, {
      detail: `${why}; a majority is needed.`,
      hint: 'Restore the PVs, then vary the volume group on again.', context: { vg: this.name } })
    if (this.state !== 'online') return error
    this.state = 'forcedoff'
    onlineVgs.delete(this.vgId)
    for (const listener of this.forceOffListeners) listener(error)
    void this.closeAll()
    return error
  }

  private async forceOff(why: string): Promise<LvmfsError> {
    const error = this.forceOffSync(why)
    await this.closeAll()
    return error
  }

  private async closeAll(): Promise<void> {
    onlineVgs.delete(this.vgId)
    const runtimes = [...this.runtimes.values()]
    this.runtimes.clear()
    await Promise.all(runtimes.map((rt) => rt.device.close().catch(() => undefined)))
  }

  /** Tells listeners about a new descriptor or status (commits, and reloads in shared-vg.ts). */
  emit(kind: VgChangeEvent['kind']): void {
    const event = { kind, descriptor: this.descriptor, status: this.status }
    for (const listener of this.changeListeners) listener(event)
  }
}

export function withMissing(status: VgStatus, pvIndexes: readonly number[], value: boolean): VgStatus {
  return { ...status, missing: status.missing.map((m, i) => (pvIndexes.includes(i) ? value : m)) }
}

const nameRule = 'Names are 1-127 characters from [A-Za-z0-9_.+-] and do not start with "-", "." or "+".'

function validateLvOptions(options: LvCreateOptions, copies: number): void {
  if (typeof options.name !== 'string' || !NAME_PATTERN.test(options.name)) {
    throw usage(`invalid LV name "${String(options.name)}"`, nameRule)
  }
  if (!Number.isSafeInteger(options.lpCount) || options.lpCount < 1 || options.lpCount > 2 ** 31) {
    throw usage(`invalid LV size: ${options.lpCount} LPs`, 'An LV has at least one LP.')
  }
  if (copies === 0 || !Number.isSafeInteger(copies) || copies < 0) throw usage(`invalid copies: ${copies}`)
  if (copies > 3) {
    throw new LvmfsError('LVM_NOALLOCLP', `an LV has at most 3 copies, not ${copies}`)
  }
  if (options.strict !== undefined && !STRICT.includes(options.strict)) throw usage(`invalid strict "${options.strict}"`)
  if (options.schedule !== undefined && !SCHEDULES.includes(options.schedule)) {
    throw usage(`invalid schedule "${options.schedule}"`)
  }
  if (options.mwc !== undefined && !MWC.includes(options.mwc)) throw usage(`invalid mwc "${options.mwc}"`)
}
