/**
 * vgcfgrestore: commits a backed-up descriptor (backup.ts) onto the VG's PVs, with a sequence
 * number above every descriptor and status copy found on them, so the next vary-on adopts it.
 *
 * It works on a VG that is not varied on (its copies may all be damaged), and checks everything
 * before the first write: every PV the descriptor lists (and has not removed) must be present
 * with a label carrying that pvId, the VG's id, its PP size and PP count, and no other device
 * may carry the VG's id under a PV id the descriptor does not list. A PV that is absent could
 * come back with a newer copy, so it is refused too (LVM2 needs every PV as well).
 */
import { LvmfsError } from '../errors/index.js'
import type { VgsaRecord } from '../format/index.js'
import type { DescriptorBackup } from './backup.js'
import { CopySlots, MetadataCommitter } from './commit.js'
import { descriptorProblems } from './descriptor.js'
import { readLabel, readVgdaArea, readVgsaArea } from './metadata-io.js'
import type { VgDescriptor } from './model.js'
import { defaultOpener } from './pv-ops.js'
import { PvSet, type DeviceOpener, type PvRuntime } from './pv-set.js'
import { scanLabels } from './scan.js'
import { emptyStatus, statusFromRecords } from './status.js'

export interface RestoreRequest {
  readonly descriptor: VgDescriptor
  /** Devices to look for the VG's PVs on. */
  readonly devices: readonly string[]
  readonly opener?: DeviceOpener
  readonly backup?: DescriptorBackup
}

function pvError(code: 'LVM_PVSTATE' | 'LVM_MISSINGPV' | 'LVM_DUPPVID', message: string, hint: string,
  context: Record<string, unknown>): LvmfsError {
  return new LvmfsError(code, message, { hint, context })
}

/** The device of each listed PV, checked; throws naming the first PV that does not match. */
async function matchPvs(d: VgDescriptor, devices: readonly string[],
  opener: DeviceOpener): Promise<Map<string, string>> {
  const scanned = await scanLabels(devices, opener)
  const byPvId = new Map<string, string>()
  for (const s of scanned) {
    const label = s.label
    if (label === undefined) continue
    const index = d.pvs.findIndex((pv) => pv.pvId === label.pvId)
    if (index < 0) {
      if (label.vgId === d.vgId) {
        throw pvError('LVM_PVSTATE', `"${s.path}" is a PV of "${d.name}" that the backup does not list`,
          'The backup predates a vgextend; restore a newer one, or vgreduce the PV first.',
          { path: s.path, pvId: label.pvId })
      }
      continue
    }
    const pv = d.pvs[index]!
    if (pv.removed) continue
    if (byPvId.has(label.pvId)) {
      throw pvError('LVM_DUPPVID', `"${s.path}" and "${byPvId.get(label.pvId)}" carry the same PV id ${label.pvId}`,
        'One is a copy; narrow --devices.', { path: s.path, pvId: label.pvId })
    }
    if (label.vgId !== d.vgId || label.ppCount !== pv.ppCount || 2 ** label.ppSizeLog2 !== d.ppSizeBytes) {
      throw pvError('LVM_PVSTATE', `the label of "${s.path}" no longer matches PV ${pv.pvId} of "${d.name}"`,
        'It left the VG or was relabelled since the backup; the backup cannot be restored onto it.',
        { path: s.path, pvId: pv.pvId, labelVgId: label.vgId, labelPpCount: label.ppCount })
    }
    byPvId.set(label.pvId, s.path)
  }
  const absent = d.pvs.find((pv) => !pv.removed && !byPvId.has(pv.pvId))
  if (absent !== undefined) {
    throw pvError('LVM_MISSINGPV', `PV ${absent.pvId} of "${d.name}" (last seen at "${absent.lastPath}") is not found`,
      'Every PV of the backup must be present; check --devices.', { pvId: absent.pvId, lastPath: absent.lastPath })
  }
  return byPvId
}

/** Restores `descriptor`; returns the descriptor as committed (its new seq). */
export async function restoreVgDescriptor(request: RestoreRequest): Promise<VgDescriptor> {
  const d = request.descriptor
  const problems = descriptorProblems(d)
  if (problems.length > 0) {
    throw new LvmfsError('LVM_INVCONFIG', `the backup of "${d.name}" is inconsistent`, {
      detail: problems.slice(0, 5).join('; ') + '.' })
  }
  const opener = request.opener ?? defaultOpener
  const paths = await matchPvs(d, request.devices, opener)
  const runtimes: PvRuntime[] = []
  const pvs = new PvSet()
  try {
    for (const [pvId, path] of paths) {
      const device = await opener(path, { exclusive: true })
      let label
      try {
        label = await readLabel(device)
      } catch (error) {
        await device.close()
        throw error
      }
      pvs.add({ device, label })
      runtimes.push({ device, label })
      if (label.pvId !== pvId) throw new LvmfsError('LVM_PVSTATE', `"${path}" changed while restoring`, { context: { path } })
    }
    let seq = d.seq
    let statusSeq = 0
    const records: VgsaRecord[] = []
    const slots = new CopySlots(0, 0)
    for (const rt of runtimes) {
      for (const area of [0, 1] as const) {
        const vgda = await readVgdaArea(rt.device, rt.label, d.vgId, area).catch(() => undefined)
        if (vgda?.best) {
          seq = Math.max(seq, vgda.best.header.seq)
          slots.learn('vgda', rt.label.pvId, area, vgda.best.slot)
        }
        const vgsa = await readVgsaArea(rt.device, rt.label, d.vgId, area).catch(() => undefined)
        if (vgsa?.best) {
          statusSeq = Math.max(statusSeq, vgsa.best.record.seq)
          slots.learn('vgsa', rt.label.pvId, area, vgsa.best.slot)
          records.push(vgsa.best.record)
        }
      }
    }
    slots.raiseFloors(seq, statusSeq)
    const committer = new MetadataCommitter(pvs, slots, () => d.name)
    const verdict = await committer.commitDescriptor(d, d, true)
    if (verdict.kind !== 'committed' || verdict.failedPvIds.size > 0) {
      throw new LvmfsError('ENGINE_IO', `the restore of "${d.name}" did not reach every PV`, {
        detail: verdict.kind === 'committed' ? `Failed: ${[...verdict.failedPvIds].join(', ')}.` : verdict.why,
        hint: 'Check the devices and run vgcfgrestore again.' })
    }
    // Stale bits stay with their PPs (keyed by PV id); no PV is missing: every one is here.
    const status = records.length === 0 ? emptyStatus(verdict.value) : statusFromRecords(records, verdict.value)
    const statusVerdict = await committer.commitStatus(verdict.value,
      { ...status, missing: verdict.value.pvs.map(() => false) })
    if (statusVerdict.kind !== 'committed') {
      throw new LvmfsError('ENGINE_IO', `the status area of "${d.name}" could not be rewritten`, {
        detail: statusVerdict.why })
    }
    await request.backup?.save(verdict.value)
    return verdict.value
  } finally {
    await pvs.closeAll()
  }
}
