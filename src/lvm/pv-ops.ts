/**
 * PV and VG creation and membership changes: pvcreate, vgcreate, vgextend/vgreduce helpers.
 *
 * Every operation validates all its inputs (devices, labels, sizes, names) before its first
 * write, so bad input changes nothing on disk. Order of writes when a PV joins a VG: label
 * first, then the descriptor commit; a crash in between leaves a PV whose label names a VG that
 * does not list it (vary-on reports it LVM_INVPVID; `pvcreate --force` reclaims it).
 */
import { LvmfsError, isLvmfsError, usageError } from '../errors/index.js'
import { openDevice, type BlockDevice } from '../io/index.js'
import {
  NAME_PATTERN, NAME_RULE, ZERO_ID, computeLayout, crc32c, encodeDescriptorBody, encodeVgdaCopy, encodeVgsaCopy,
  vgdaFrameBytes, vgdaSlotOffset, vgsaRecordBytes, vgsaSlotOffset, decodeDescriptorBody,
  MIN_PP_SIZE_LOG2, MAX_PP_SIZE_LOG2, LABEL_COPY_BYTES, type LayoutOptions, type PvLabel,
} from '../format/index.js'
import { newId } from './ids.js'
import { readLabel, readVgdaArea, readVgsaArea, writeLabel } from './metadata-io.js'
import type { VgDescriptor, VgStatus } from './model.js'
import type { DescriptorBackup } from './backup.js'
import type { CopySlots } from './commit.js'
import type { DeviceOpener, PvRuntime, PvSet } from './pv-set.js'
import { placeKey, standardPlacement } from './placement.js'
import { emptyStatus, statusToRecord } from './status.js'
import { writeSlots, type SlotWrite } from './copy-writer.js'

export const defaultOpener: DeviceOpener = (path, options) => openDevice(path, options)

export interface PvCreateOptions {
  readonly force?: boolean
  readonly layout?: LayoutOptions
  readonly opener?: DeviceOpener
}

/** What a device holds: a usable label; nothing (its first 64 KiB are zero); other data; or a
 * damaged or newer lvmfs label. Only blank devices are initialised implicitly (vgcreate,
 * vgextend); anything else needs an explicit pvcreate. */
type Probe = { kind: 'label'; label: PvLabel } | { kind: 'blank' } | { kind: 'bad'; error: LvmfsError }

const BLANK_CHECK_BYTES = 64 * 1024

async function probe(device: BlockDevice): Promise<Probe> {
  try {
    return { kind: 'label', label: await readLabel(device) }
  } catch (error) {
    if (!isLvmfsError(error)) throw error
    if (error.code !== 'ENGINE_CORRUPT' || error.context['reason'] !== 'magic') return { kind: 'bad', error }
    const head = new Uint8Array(Math.min(BLANK_CHECK_BYTES, device.sizeBytes))
    await device.read(head, 0)
    if (head.every((byte) => byte === 0)) return { kind: 'blank' }
    return { kind: 'bad', error: new LvmfsError('LVM_NOTPV', `"${device.path}" holds data but no lvmfs label`, {
      context: { path: device.path } }) }
  }
}

/** Best-effort VG name of a labelled PV, for messages ("already in VG x"). */
async function vgNameOf(device: BlockDevice, label: PvLabel): Promise<string> {
  for (const area of [0, 1] as const) {
    try {
      const read = await readVgdaArea(device, label, label.vgId, area)
      if (read.best) return decodeDescriptorBody(read.best.body).name
    } catch { /* a name is only decoration */ }
  }
  return `(VG id ${label.vgId})`
}

function minimumDeviceBytes(layout: LayoutOptions | undefined, ppSizeBytes = 2 ** MIN_PP_SIZE_LOG2): number {
  return computeLayout(layout).dataOffsetBytes + ppSizeBytes
}

function tooSmall(path: string, sizeBytes: number, needBytes: number): LvmfsError {
  return new LvmfsError('LVM_DEVTOOSMALL', `device "${path}" is too small`, {
    detail: `It has ${sizeBytes} bytes; metadata and one PP need ${needBytes}.`, context: { path, sizeBytes, needBytes } })
}

async function refuseLabelled(device: BlockDevice, label: PvLabel): Promise<never> {
  const inVg = label.vgId !== ZERO_ID
  throw new LvmfsError('LVM_PVINUSE', inVg
    ? `"${device.path}" is a PV of volume group ${await vgNameOf(device, label)}`
    : `"${device.path}" is already a PV (in no volume group)`, {
    hint: inVg ? 'Remove it from that VG first (vgreduce), or use pvcreate --force to destroy it.'
      : 'Use it directly with vgcreate/vgextend, or pvcreate --force to relabel it.',
    context: { path: device.path, pvId: label.pvId, vgId: label.vgId } })
}

/** Writes a fresh label (new pvId, no VG) and zeroes the metadata areas. */
async function writeNewLabel(device: BlockDevice, layout: LayoutOptions | undefined): Promise<PvLabel> {
  const l = computeLayout(layout)
  const label: PvLabel = { ...l, labelSeq: 1, pvId: newId(), vgId: ZERO_ID, deviceSizeBytes: device.sizeBytes,
    sectorBytes: device.sectorBytes, ppSizeLog2: 0, ppCount: 0, createdAtMs: Date.now() }
  await device.discard(0, l.dataOffsetBytes)
  await device.sync()
  await writeLabel(device, label)
  return label
}

export async function pvCreate(path: string, options: PvCreateOptions = {}): Promise<PvLabel> {
  const device = await (options.opener ?? defaultOpener)(path, { exclusive: true })
  try {
    const need = minimumDeviceBytes(options.layout)
    if (device.sizeBytes < need) throw tooSmall(path, device.sizeBytes, need)
    const found = await probe(device)
    if (options.force !== true) {
      if (found.kind === 'label') await refuseLabelled(device, found.label)
      if (found.kind === 'bad' && found.error.code === 'LVM_BADVERSION') throw found.error
    }
    return await writeNewLabel(device, options.layout)
  } finally {
    await device.close()
  }
}

/** pvremove: wipes the label of a PV that belongs to no VG (both label copies zeroed). Refuses a
 * PV whose label names a VG, naming the VG, and a device that is not an lvmfs PV. */
export async function pvRemove(path: string, options: { readonly opener?: DeviceOpener } = {}): Promise<PvLabel> {
  const device = await (options.opener ?? defaultOpener)(path, { exclusive: true })
  try {
    const found = await probe(device)
    if (found.kind === 'bad') throw found.error
    if (found.kind === 'blank') {
      throw new LvmfsError('LVM_NOTPV', `"${path}" is not an lvmfs PV`, { context: { path } })
    }
    if (found.label.vgId !== ZERO_ID) {
      throw new LvmfsError('LVM_PVINUSE', `"${path}" is a PV of volume group ${await vgNameOf(device, found.label)}`, {
        hint: 'Remove it from that VG first (vgreduce, or vgremove for the whole VG).',
        context: { path, pvId: found.label.pvId, vgId: found.label.vgId } })
    }
    await device.write(new Uint8Array(2 * LABEL_COPY_BYTES), 0)
    await device.sync()
    return found.label
  } finally {
    await device.close()
  }
}

export interface VgCreateOptions {
  readonly name: string
  readonly paths: readonly string[]
  readonly ppSizeBytes: number
  readonly layout?: LayoutOptions
  readonly opener?: DeviceOpener
  /** Mark the VG for shared use (several processes under the DLM; lvm/shared-vg.ts). */
  readonly shared?: boolean
  /** Receives the first descriptor (backup.ts). */
  readonly backup?: DescriptorBackup
}

export function validatePpSize(ppSizeBytes: number): number {
  const log2 = Math.log2(ppSizeBytes)
  if (!Number.isInteger(log2) || log2 < MIN_PP_SIZE_LOG2 || log2 > MAX_PP_SIZE_LOG2) {
    throw new LvmfsError('ENGINE_USAGE', `invalid PP size ${ppSizeBytes}`, {
      detail: `The PP size is a power of two from 64K to 16G; got ${ppSizeBytes} bytes.` })
  }
  return log2
}

export function validateVgName(name: string): void {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    throw usageError(`invalid volume group name "${String(name)}"`, NAME_RULE)
  }
}

interface Joiner { device: BlockDevice; label: PvLabel | undefined; ppCount: number }

/** Opens and checks devices that are to join a VG; writes nothing. Closes them on error. */
async function openJoiners(paths: readonly string[], ppSizeLog2: number, layout: LayoutOptions | undefined,
  opener: DeviceOpener, knownPvIds: ReadonlySet<string>): Promise<Joiner[]> {
  if (paths.length === 0) throw new LvmfsError('ENGINE_USAGE', 'no devices given')
  if (new Set(paths).size !== paths.length) throw new LvmfsError('ENGINE_USAGE', 'a device is given twice')
  const joiners: Joiner[] = []
  try {
    const seen = new Set(knownPvIds)
    for (const path of paths) {
      const device = await opener(path, { exclusive: true })
      joiners.push({ device, label: undefined, ppCount: 0 })
      const found = await probe(device)
      if (found.kind === 'bad' && found.error.code === 'LVM_BADVERSION') throw found.error
      if (found.kind === 'bad') {
        throw new LvmfsError('LVM_NOTPV', `"${path}" is not a usable lvmfs PV`, {
          detail: found.error.message, hint: 'Use pvcreate (--force for a damaged label) to initialise it; ' +
            'this destroys its data.',
          context: { path }, cause: found.error })
      }
      const label = found.kind === 'label' ? found.label : undefined
      if (label !== undefined && label.vgId !== ZERO_ID) await refuseLabelled(device, label)
      if (label !== undefined && seen.has(label.pvId)) {
        throw new LvmfsError('LVM_DUPPVID', `"${path}" has the same PV id as another PV (${label.pvId})`, {
          hint: 'It is probably a copy of another PV; pvcreate --force gives it a new id.', context: { path } })
      }
      if (label !== undefined) seen.add(label.pvId)
      const dataOffset = label?.dataOffsetBytes ?? computeLayout(layout).dataOffsetBytes
      const ppCount = Math.floor((device.sizeBytes - dataOffset) / 2 ** ppSizeLog2)
      if (ppCount < 1) throw tooSmall(path, device.sizeBytes, dataOffset + 2 ** ppSizeLog2)
      if (ppCount >= 2 ** 32) throw new LvmfsError('ENGINE_USAGE', `"${path}" would have too many PPs`)
      joiners[joiners.length - 1] = { device, label, ppCount }
    }
    return joiners
  } catch (error) {
    await Promise.all(joiners.map((j) => j.device.close()))
    throw error
  }
}

async function labelJoiners(joiners: Joiner[], vgId: string, ppSizeLog2: number,
  layout: LayoutOptions | undefined): Promise<PvRuntime[]> {
  const out: PvRuntime[] = []
  for (const j of joiners) {
    const base = j.label ?? await writeNewLabel(j.device, layout)
    const label: PvLabel = { ...base, labelSeq: base.labelSeq + 1, vgId, ppSizeLog2, ppCount: j.ppCount }
    await writeLabel(j.device, label)
    out.push({ device: j.device, label })
  }
  return out
}

export async function vgCreate(options: VgCreateOptions): Promise<VgDescriptor> {
  validateVgName(options.name)
  const ppSizeLog2 = validatePpSize(options.ppSizeBytes)
  const opener = options.opener ?? defaultOpener
  const joiners = await openJoiners(options.paths, ppSizeLog2, options.layout, opener, new Set())
  try {
    const vgId = newId()
    const pvs = joiners.map((j) => ({ pvId: j.label?.pvId ?? newId(), lastPath: j.device.path,
      ppCount: j.ppCount, removed: false }))
    const draft: VgDescriptor = { vgId, name: options.name, seq: 1, timestampMs: Date.now(),
      ppSizeBytes: options.ppSizeBytes, pvs, lvs: [], nextLvId: 1, descriptorCopies: standardPlacement(pvs),
      ...(options.shared === true ? { shared: true } : {}) }
    checkFits(draft, emptyStatus(draft, 1), joiners.map((j) => j.label ?? { ...computeLayout(options.layout) }))
    const runtimes = await labelJoiners(joiners, vgId, ppSizeLog2, options.layout)
    const d: VgDescriptor = { ...draft, pvs: pvs.map((p, i) => ({ ...p, pvId: runtimes[i]!.label.pvId })) }
    await writeInitialCopies(d, emptyStatus(d, 1), runtimes)
    await options.backup?.save(d)
    return d
  } finally {
    await Promise.all(joiners.map((j) => j.device.close()))
  }
}

function checkFits(d: VgDescriptor, status: VgStatus,
  layouts: ReadonlyArray<{ vgdaSlotBytes: number; vgsaSlotBytes: number }>): void {
  const bodyBytes = encodeDescriptorBody(d).length
  const record = statusToRecord(status, d)
  for (const l of layouts) {
    if (vgdaFrameBytes(bodyBytes) > l.vgdaSlotBytes || vgsaRecordBytes(record.pvs, 0) > l.vgsaSlotBytes) {
      throw new LvmfsError('LVM_VGDASPACE', `the metadata of "${d.name}" does not fit a PV's metadata area`, {
        hint: 'Use larger metadata areas (pvcreate --metadata-size) or fewer, larger PPs.' })
    }
  }
}

/** vgcreate: status copies first, then descriptor copies, slot 0 everywhere; all must land. */
async function writeInitialCopies(d: VgDescriptor, status: VgStatus, runtimes: PvRuntime[]): Promise<void> {
  const byId = new Map(runtimes.map((rt) => [rt.label.pvId, rt]))
  const record = statusToRecord(status, d)
  const body = encodeDescriptorBody(d)
  const bodyCrc = crc32c(body)
  const vgsaJobs: SlotWrite[] = []
  const vgdaJobs: SlotWrite[] = []
  for (const place of d.descriptorCopies) {
    const rt = byId.get(d.pvs[place.pvIndex]!.pvId)!
    const self = { pvId: rt.label.pvId, area: place.area, slot: 0 }
    const key = placeKey(rt.label.pvId, place.area)
    vgsaJobs.push({ key, device: rt.device, offsetBytes: vgsaSlotOffset(rt.label, place.area, 0),
      bytes: encodeVgsaCopy(record, self) })
    vgdaJobs.push({ key, device: rt.device, offsetBytes: vgdaSlotOffset(rt.label, place.area, 0),
      bytes: encodeVgdaCopy({ vgId: d.vgId, seq: d.seq, timestampMs: d.timestampMs, body, bodyCrc, self }) })
  }
  for (const jobs of [vgsaJobs, vgdaJobs]) {
    const outcome = await writeSlots(jobs)
    const [first] = outcome.failed.values()
    if (first !== undefined) throw first instanceof Error ? first : new Error(String(first))
  }
}

/** What membership changes need of an online VG (OnlineVg; an interface so the two modules do
 * not import each other). */
export interface MembershipHost {
  readonly vgId: string
  readonly name: string
  readonly descriptor: VgDescriptor
  readonly status: VgStatus
  readonly pvs: PvSet
  readonly slots: CopySlots
  readonly opener: DeviceOpener
  commitDescriptor(next: VgDescriptor, options?: { status?: VgStatus }): Promise<void>
  commitStatus(next: VgStatus, always?: boolean): Promise<void>
}

/** vgextend on an online VG: label the new PVs, commit the descriptor, then the status. */
export async function addPvsToVg(vg: MembershipHost, paths: readonly string[]): Promise<void> {
  const d = vg.descriptor
  const ppSizeLog2 = Math.log2(d.ppSizeBytes)
  for (const path of paths) {
    const member = vg.pvs.byPath(path)
    if (member !== undefined) {
      throw new LvmfsError('LVM_PVINUSE', `"${path}" is already a PV of volume group ${vg.name}`, {
        context: { path, pvId: member.label.pvId } })
    }
  }
  // Blank devices get the same metadata layout as the VG's existing PVs.
  const model = vg.pvs.runtimes()[0]?.label
  const layout = model === undefined ? undefined
    : { vgdaSlotBytes: model.vgdaSlotBytes, vgsaSlotBytes: model.vgsaSlotBytes, mwcSizeBytes: model.mwcSizeBytes }
  const joiners = await openJoiners(paths, ppSizeLog2, layout, vg.opener, new Set(d.pvs.map((p) => p.pvId)))
  let runtimes: PvRuntime[] = []
  try {
    const draftPvs = [...d.pvs, ...joiners.map((j) => ({ pvId: j.label?.pvId ?? newId(), lastPath: j.device.path,
      ppCount: j.ppCount, removed: false }))]
    const draft = { ...d, pvs: draftPvs, descriptorCopies: standardPlacement(draftPvs) }
    const status = extendStatus(vg.status, draft)
    checkFits(draft, status, joiners.map((j) => j.label ?? computeLayout(layout)))
    runtimes = await labelJoiners(joiners, d.vgId, ppSizeLog2, layout)
    for (const rt of runtimes) vg.pvs.add(rt)
    const pvs = [...d.pvs, ...runtimes.map((rt) => ({ pvId: rt.label.pvId, lastPath: rt.device.path,
      ppCount: rt.label.ppCount, removed: false }))]
    await vg.commitDescriptor({ ...d, pvs, descriptorCopies: standardPlacement(pvs) }, { status })
    await vg.commitStatus(vg.status, true)
  } catch (error) {
    for (const rt of runtimes) {
      if (!vg.descriptor.pvs.some((p) => p.pvId === rt.label.pvId)) {
        vg.pvs.detach(rt.label.pvId)
        await releasePvFromVg(rt).catch(() => undefined)
      }
    }
    if (runtimes.length === 0) await Promise.all(joiners.map((j) => j.device.close()))
    throw error
  }
}

function extendStatus(status: VgStatus, d: VgDescriptor): VgStatus {
  const fresh = emptyStatus(d)
  return { ...status, missing: d.pvs.map((_, i) => status.missing[i] ?? false),
    stale: d.pvs.map((_, i) => status.stale[i] ?? fresh.stale[i]!) }
}

/** Gives a PV back to no VG (label rewrite) and closes it. */
export async function releasePvFromVg(rt: PvRuntime): Promise<void> {
  try {
    await writeLabel(rt.device, { ...rt.label, labelSeq: rt.label.labelSeq + 1, vgId: ZERO_ID, ppSizeLog2: 0,
      ppCount: 0 })
  } finally {
    await rt.device.close()
  }
}

/** Opens a returning PV and checks its label; learns which slots it uses. */
export async function attachPv(vg: MembershipHost, pvId: string, path: string,
  given?: BlockDevice): Promise<PvRuntime> {
  const device = given ?? await vg.opener(path, { exclusive: true })
  try {
    const label = await readLabel(device)
    if (label.pvId !== pvId || label.vgId !== vg.vgId) {
      throw new LvmfsError('LVM_PVSTATE', `"${path}" is not PV ${pvId} of "${vg.name}"`, {
        context: { path, pvId, labelPvId: label.pvId, labelVgId: label.vgId } })
    }
    for (const area of [0, 1] as const) {
      const vgda = await readVgdaArea(device, label, vg.vgId, area)
      if (vgda.best) vg.slots.learn('vgda', pvId, area, vgda.best.slot)
      const vgsa = await readVgsaArea(device, label, vg.vgId, area)
      if (vgsa.best) vg.slots.learn('vgsa', pvId, area, vgsa.best.slot)
    }
    return { device, label }
  } catch (error) {
    if (given === undefined) await device.close()
    throw error
  }
}
