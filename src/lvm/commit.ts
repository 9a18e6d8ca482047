/**
 * The metadata commit protocol, apart from the VG that uses it.
 *
 *  1. Targets are the copy positions of the old and the new placement (they differ when PVs
 *     join, leave or are removed). Required: a majority of the old placement AND a majority of
 *     the new one (joint majority, so any later reader's majority intersects it whichever
 *     placement it believes). A forced vary-on requires only the new placement.
 *  2. If the reachable positions cannot form those majorities, nothing is written and the
 *     verdict is `refused`: a minority never receives a descriptor we know cannot commit.
 *  3. Each position gets the copy in the slot it does not currently use (the other slot keeps
 *     the previous copy), written in parallel, each fdatasync'd.
 *  4. If the successful writes are not a majority of every required set, the verdict is
 *     `lost`. Otherwise the commit is durable; positions that failed are reported so their PVs
 *     can be marked MISSING.
 * `refused` and `lost` both mean quorum is gone; the caller forces the VG off.
 * Status (VGSA) commits follow the same steps over the current placement.
 */
import { LvmfsError } from '../errors/index.js'
import {
  crc32c, encodeDescriptorBody, encodeVgdaCopy, encodeVgsaCopy, vgdaFrameBytes, vgdaSlotOffset, vgsaRecordBytes,
  vgsaSlotOffset,
} from '../format/index.js'
import { writeSlots, type SlotWrite } from './copy-writer.js'
import { assertValidDescriptor } from './descriptor.js'
import type { VgDescriptor, VgStatus } from './model.js'
import { isMajority, placeKey } from './placement.js'
import type { PvRuntime, PvSet } from './pv-set.js'
import { normalizeStatus, statusToRecord } from './status.js'

export type CommitVerdict<T> =
  | { readonly kind: 'committed'; readonly value: T; readonly failedPvIds: ReadonlySet<string> }
  | { readonly kind: 'refused' | 'lost'; readonly why: string }

/** Bytes written by the last descriptor commit (benchmark). */
export const commitStats = { lastCommitBytes: 0 }

type Slot = 0 | 1
type Area = 'vgda' | 'vgsa'

/** Which slot each copy position uses now, and the highest sequence numbers seen on disk
 * (a new commit always goes above both, even above copies that lost their quorum). */
export class CopySlots {
  readonly #slots: Record<Area, Map<string, Slot>> = { vgda: new Map(), vgsa: new Map() }
  #descriptorSeqFloor: number
  #statusSeqFloor: number

  constructor(descriptorSeqFloor: number, statusSeqFloor: number) {
    this.#descriptorSeqFloor = descriptorSeqFloor
    this.#statusSeqFloor = statusSeqFloor
  }

  get descriptorSeqFloor(): number { return this.#descriptorSeqFloor }
  get statusSeqFloor(): number { return this.#statusSeqFloor }

  /** Records the slot holding the newest copy found on disk at `pvId:area`. */
  learn(area: Area, pvId: string, copyArea: number, slot: Slot): void {
    this.#slots[area].set(placeKey(pvId, copyArea), slot)
  }

  /** Learns the slots of every copy area read from disk (vary-on, a shared VG's reload). */
  learnAll(areas: ReadonlyArray<{ readonly pvId: string; readonly area: number;
    readonly vgda: { readonly slot: Slot } | null; readonly vgsa: { readonly slot: Slot } | null }>): void {
    for (const a of areas) {
      if (a.vgda) this.learn('vgda', a.pvId, a.area, a.vgda.slot)
      if (a.vgsa) this.learn('vgsa', a.pvId, a.area, a.vgsa.slot)
    }
  }

  raiseFloors(descriptorSeq: number, statusSeq: number): void {
    this.#descriptorSeqFloor = Math.max(this.#descriptorSeqFloor, descriptorSeq)
    this.#statusSeqFloor = Math.max(this.#statusSeqFloor, statusSeq)
  }

  /** The slot the next commit writes at `key`: the one not holding the current copy. */
  nextSlot(area: Area, key: string): Slot {
    return (1 - (this.#slots[area].get(key) ?? 1)) as Slot
  }

  wrote(area: Area, keys: Iterable<string>, seq: number): void {
    for (const key of keys) this.#slots[area].set(key, this.nextSlot(area, key))
    if (area === 'vgda') this.#descriptorSeqFloor = seq
    else this.#statusSeqFloor = seq
  }
}

export function placesOf(d: VgDescriptor): string[] {
  return d.descriptorCopies.map((c) => placeKey(d.pvs[c.pvIndex]!.pvId, c.area))
}

const pvIdOfKey = (key: string): string => key.slice(0, key.indexOf(':'))
const areaOfKey = (key: string): 0 | 1 => Number(key.slice(key.indexOf(':') + 1)) as 0 | 1

/** The position sets that must each reach a majority (joint majority unless forced). */
export function requiredSets(current: VgDescriptor, next: VgDescriptor, force: boolean): string[][] {
  return force ? [placesOf(next)] : [placesOf(current), placesOf(next)]
}

/** Why `required` cannot reach a majority with the positions `has` accepts, or undefined. */
export function majorityShortfall(required: readonly string[][], has: (key: string) => boolean,
  what: (count: number, total: number) => string): string | undefined {
  for (const set of required) {
    const count = set.filter(has).length
    if (!isMajority(count, set.length)) return what(count, set.length)
  }
  return undefined
}

export class MetadataCommitter {
  constructor(private readonly pvs: PvSet, readonly slots: CopySlots, private readonly vgName: () => string) {}

  async commitDescriptor(current: VgDescriptor, nextIn: VgDescriptor, force: boolean):
    Promise<CommitVerdict<VgDescriptor>> {
    const next: VgDescriptor = { ...nextIn, seq: this.slots.descriptorSeqFloor + 1, timestampMs: Date.now() }
    assertValidDescriptor(next)
    const required = requiredSets(current, next, force)
    const targets = [...new Set(required.flat())]
    const refused = this.#unreachable(required)
    if (refused !== undefined) return { kind: 'refused', why: refused }
    const body = encodeDescriptorBody(next)
    const bodyCrc = crc32c(body)
    const jobs = this.#jobs(targets, (rt, key) => {
      if (vgdaFrameBytes(body.length) > rt.label.vgdaSlotBytes) {
        throw new LvmfsError('LVM_VGDASPACE',
          `descriptor of "${this.vgName()}" does not fit the VGDA of "${rt.device.path}"`, {
            detail: `Needs ${vgdaFrameBytes(body.length)} bytes; the slot holds ${rt.label.vgdaSlotBytes}.` })
      }
      const self = { pvId: rt.label.pvId, area: areaOfKey(key), slot: this.slots.nextSlot('vgda', key) }
      return { offsetBytes: vgdaSlotOffset(rt.label, self.area, self.slot),
        bytes: encodeVgdaCopy({ vgId: next.vgId, seq: next.seq, timestampMs: next.timestampMs, body, bodyCrc, self }) }
    })
    const outcome = await writeSlots(jobs)
    commitStats.lastCommitBytes = outcome.bytesWritten
    this.slots.wrote('vgda', outcome.ok, next.seq)
    const lost = majorityShortfall(required, (key) => outcome.ok.has(key),
      () => `a descriptor commit reached ${outcome.ok.size} of ${targets.length} copies`)
    if (lost !== undefined) return { kind: 'lost', why: lost }
    return { kind: 'committed', value: next, failedPvIds: pvIdsOf(outcome.failed.keys()) }
  }

  /** Commits a status record (normalized for `descriptor`) to the current placement. */
  async commitStatus(descriptor: VgDescriptor, nextIn: VgStatus): Promise<CommitVerdict<VgStatus>> {
    const next: VgStatus = { ...normalizeStatus(nextIn, descriptor), seq: this.slots.statusSeqFloor + 1 }
    const places = placesOf(descriptor)
    const refused = this.#unreachable([places])
    if (refused !== undefined) return { kind: 'refused', why: refused }
    const record = statusToRecord(next, descriptor)
    const size = vgsaRecordBytes(record.pvs, record.dirtyLvs.length)
    const jobs = this.#jobs(places, (rt, key) => {
      if (size > rt.label.vgsaSlotBytes) {
        throw new LvmfsError('LVM_VGDASPACE', `status area of "${this.vgName()}" does not fit "${rt.device.path}"`)
      }
      const self = { pvId: rt.label.pvId, area: areaOfKey(key), slot: this.slots.nextSlot('vgsa', key) }
      return { offsetBytes: vgsaSlotOffset(rt.label, self.area, self.slot), bytes: encodeVgsaCopy(record, self) }
    })
    const outcome = await writeSlots(jobs)
    this.slots.wrote('vgsa', outcome.ok, next.seq)
    const lost = majorityShortfall([places], (key) => outcome.ok.has(key),
      () => `a status commit reached ${outcome.ok.size} of ${places.length} copies`)
    if (lost !== undefined) return { kind: 'lost', why: lost }
    return { kind: 'committed', value: next, failedPvIds: pvIdsOf(outcome.failed.keys()) }
  }

  #unreachable(required: readonly string[][]): string | undefined {
    return majorityShortfall(required, (key) => this.pvs.has(pvIdOfKey(key)),
      (count, total) => `only ${count} of ${total} descriptor copies are reachable`)
  }

  /** One write per reachable position (a MISSING or REMOVED PV has no runtime, so no write). */
  #jobs(keys: readonly string[],
    encode: (rt: PvRuntime, key: string) => { offsetBytes: number; bytes: Uint8Array }): SlotWrite[] {
    return keys.flatMap((key) => {
      const rt = this.pvs.get(pvIdOfKey(key))
      return rt === undefined ? [] : [{ key, device: rt.device, ...encode(rt, key) }]
    })
  }
}

function pvIdsOf(keys: Iterable<string>): Set<string> {
  return new Set([...keys].map(pvIdOfKey))
}
