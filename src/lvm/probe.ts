/**
 * Step 2 of vary-on: probe each vvg_in entry. Opens the device (exclusively unless read-only),
 * reads its label and classifies it provisionally (AIX statuses used before quorum is known:
 * LVM_PVNOTFND, LVM_PVNOTINVG, LVM_PVINVG; and LVM_DUPPVID / LVM_NAMIDNMTCH, which do not
 * depend on the descriptor). Devices that cannot be members are closed at once.
 */
import { LvmfsError, isLvmfsError } from '../errors/index.js'
import { statDeviceEntry, type BlockDevice, type OpenOptions } from '../io/index.js'
import { ZERO_ID, type PvLabel } from '../format/index.js'
import { readLabel, type ReadStats } from './metadata-io.js'
import type { DeviceOpener } from './pv-set.js'
import type { PvStatusName, VvgIn } from './model.js'

export interface Probe {
  readonly entry: VvgIn
  /** Given pvId, else the label's, else ZERO_ID. */
  pvId: string
  status: PvStatusName
  device?: BlockDevice
  label?: PvLabel
  /** Why the device is not found (diagnostics). */
  problem?: string
}

/** A vary-on step failed in a way that has its own return code. */
export class RcError extends Error {
  constructor(readonly error: LvmfsError) {
    super(error.message)
  }
}

/** How a probe opens devices: read-only (scans), with the exclusive claim (vary-on), or
 * read-write without the claim (shared vary-on: the DLM's VG lock serialises the writers). */
export type ProbeAccess = 'readOnly' | 'exclusive' | 'shared'

function openOptions(access: ProbeAccess): OpenOptions {
  return access === 'readOnly' ? { readOnly: true } : access === 'exclusive' ? { exclusive: true } : {}
}

async function openEntry(name: string, opener: DeviceOpener, access: ProbeAccess): Promise<BlockDevice | string> {
  const entry = await statDeviceEntry(name)
  if (entry.kind === 'other') {
    throw new RcError(new LvmfsError('LVM_NOTCHARDEV', `"${name}" is not a block device or regular file`, {
      context: { path: name } }))
  }
  if (entry.kind === 'invalid') {
    throw new RcError(new LvmfsError('LVM_INV_DEVENT', `cannot examine device "${name}"`, {
      context: { path: name }, cause: entry.error }))
  }
  if (entry.kind === 'absent') return 'does not exist'
  try {
    return await opener(name, openOptions(access))
  } catch (error) {
    if (!isLvmfsError(error)) throw error
    if (error.code === 'ENGINE_BUSY') {
      throw new RcError(new LvmfsError('LVM_INVCONFIG', `"${name}" is held by another process`, {
        detail: error.message, hint: 'Vary the volume group off there first.', context: error.context, cause: error }))
    }
    if (error.code === 'LVM_MAPFOPN' || error.code === 'LVM_MAPFRDWR') throw new RcError(error)
    return error.message
  }
}

/** Memory devices in tests have no directory entry: an opener may accept any name; then the
 * stat step is skipped by passing `statEntries: false`. */
export async function probeEntries(vvgIn: readonly VvgIn[], vgId: string, opener: DeviceOpener,
  options: { readOnly: boolean; shared?: boolean; statEntries: boolean; stats?: ReadStats }): Promise<Probe[]> {
  const access: ProbeAccess = options.readOnly ? 'readOnly' : options.shared === true ? 'shared' : 'exclusive'
  const probes: Probe[] = []
  try {
    for (const entry of vvgIn) {
      const probe: Probe = { entry, pvId: entry.pvId ?? ZERO_ID, status: 'LVM_PVNOTFND' }
      probes.push(probe)
      if (entry.pvId !== undefined && probes.slice(0, -1).some((p) => p.entry.pvId === entry.pvId)) {
        probe.status = 'LVM_DUPPVID'
        continue
      }
      const opened = options.statEntries ? await openEntry(entry.name, opener, access)
        : await openWithoutStat(entry.name, opener, access)
      if (typeof opened === 'string') {
        probe.problem = opened
        continue
      }
      await classify(probe, opened, vgId, probes, options.stats)
    }
    return probes
  } catch (error) {
    await closeProbes(probes)
    throw error
  }
}

async function openWithoutStat(name: string, opener: DeviceOpener, access: ProbeAccess): Promise<BlockDevice | string> {
  try {
    return await opener(name, openOptions(access))
  } catch (error) {
    if (isLvmfsError(error) && error.code === 'ENGINE_BUSY') {
      throw new RcError(new LvmfsError('LVM_INVCONFIG', `"${name}" is held by another process`, { cause: error }))
    }
    return isLvmfsError(error) ? error.message : String(error)
  }
}

async function classify(probe: Probe, device: BlockDevice, vgId: string, probes: Probe[],
  stats: ReadStats | undefined): Promise<void> {
  let label: PvLabel
  try {
    label = await readLabel(device, stats)
  } catch (error) {
    if (!isLvmfsError(error)) throw error
    probe.problem = error.message
    await device.close()
    return
  }
  if (probe.entry.pvId !== undefined && label.pvId !== probe.entry.pvId) {
    probe.status = 'LVM_NAMIDNMTCH'
    probe.problem = `label carries PV id ${label.pvId}`
    await device.close()
    return
  }
  const needBytes = label.dataOffsetBytes + label.ppCount * 2 ** label.ppSizeLog2
  if (label.vgId !== ZERO_ID && device.sizeBytes < needBytes) {
    probe.pvId = label.pvId
    probe.problem = `device has ${device.sizeBytes} bytes, its label needs ${needBytes} (truncated?)`
    await device.close()
    return
  }
  probe.pvId = label.pvId
  probe.label = label
  if (probe.entry.pvId === undefined) {
    // Two devices with one PV id (a copied PV image): never pick one silently.
    const twins = probes.filter((p) => p !== probe && p.entry.pvId === undefined && p.label?.pvId === label.pvId)
    if (twins.length > 0) {
      for (const p of [...twins, probe]) {
        p.status = 'LVM_DUPPVID'
        p.problem = `devices ${[...twins, probe].map((t) => `"${t.entry.name}"`).join(', ')} carry one PV id`
        await p.device?.close()
        delete p.device
      }
      await device.close()
      return
    }
  }
  probe.device = device
  if (label.vgId === vgId) {
    probe.status = 'LVM_PVINVG'
  } else {
    probe.status = 'LVM_PVNOTINVG'
    await device.close()
    delete probe.device
  }
}

export async function closeProbes(probes: readonly Probe[]): Promise<void> {
  await Promise.all(probes.map((p) => p.device?.close().catch(() => undefined)))
}
