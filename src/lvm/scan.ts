/**
 * Read-only discovery for commands: which devices carry lvmfs labels, which VGs they form and
 * what each VG's adopted descriptor says. Never writes and never claims devices, so `pvs`,
 * `vgs` and `lvs` are safe next to a running daemon and on PVs left by a crashed process (the
 * VG view comes from the same quorum rules as vary-on, in read-only mode).
 */
import { LvmfsError, isLvmfsError } from '../errors/index.js'
import { ZERO_ID, decodeDescriptorBody, type PvLabel } from '../format/index.js'
import { readLabel, readVgdaArea } from './metadata-io.js'
import type { DeviceOpener } from './pv-set.js'
import { defaultOpener } from './pv-ops.js'
import { varyOnVg, type VaryOnResult } from './varyon.js'

export interface ScannedDevice {
  readonly path: string
  readonly sizeBytes?: number
  readonly label?: PvLabel
  /** Why there is no label (no device, not an lvmfs PV, damaged label). */
  readonly problem?: string
}

async function readDeviceLabel(path: string, opener: DeviceOpener): Promise<ScannedDevice> {
  let device
  try {
    device = await opener(path, { readOnly: true })
  } catch (error) {
    if (!isLvmfsError(error)) throw error
    return { path, problem: error.message }
  }
  try {
    return { path, sizeBytes: device.sizeBytes, label: await readLabel(device) }
  } catch (error) {
    if (!isLvmfsError(error)) throw error
    return { path, sizeBytes: device.sizeBytes, problem: error.context['reason'] === 'magic'
      ? 'not an lvmfs PV' : error.message }
  } finally {
    await device.close()
  }
}

export async function scanLabels(paths: readonly string[],
  opener: DeviceOpener = defaultOpener): Promise<ScannedDevice[]> {
  return Promise.all(paths.map((path) => readDeviceLabel(path, opener)))
}

/** The VG's name from its newest decodable descriptor copy on any device (vgrename changes it,
 * and a PV that missed the rename still holds the old name; vary-on decides everything else). */
async function nameHint(vgId: string, devices: readonly ScannedDevice[],
  opener: DeviceOpener): Promise<string | undefined> {
  let best: { seq: number; name: string } | undefined
  for (const scanned of devices) {
    if (scanned.label?.vgId !== vgId) continue
    const device = await opener(scanned.path, { readOnly: true }).catch(() => undefined)
    if (device === undefined) continue
    try {
      for (const area of [0, 1] as const) {
        const read = await readVgdaArea(device, scanned.label, vgId, area).catch(() => undefined)
        if (read?.best && (best === undefined || read.best.header.seq > best.seq)) {
          try {
            best = { seq: read.best.header.seq, name: decodeDescriptorBody(read.best.body).name }
          } catch { /* a damaged body gives no hint */ }
        }
      }
    } finally {
      await device.close()
    }
  }
  return best?.name
}

export async function vgIdsByName(devices: readonly ScannedDevice[],
  opener: DeviceOpener): Promise<Map<string, string[]>> {
  const ids = [...new Set(devices.flatMap((d) => (d.label && d.label.vgId !== ZERO_ID ? [d.label.vgId] : [])))]
  const byName = new Map<string, string[]>()
  for (const vgId of ids) {
    const name = await nameHint(vgId, devices, opener) ?? `#${vgId}`
    byName.set(name, [...(byName.get(name) ?? []), vgId])
  }
  return byName
}

/** The VG id of a name; undefined if no device has it. Two VGs with one name: LVM_INVALID_PARAM. */
export async function resolveVgId(name: string, paths: readonly string[],
  opener: DeviceOpener, scanned?: readonly ScannedDevice[]): Promise<string | undefined> {
  const ids = (await vgIdsByName(scanned ?? await scanLabels(paths, opener), opener)).get(name) ?? []
  if (ids.length > 1) {
    throw new LvmfsError('LVM_INVALID_PARAM', `two volume groups are named "${name}"`, {
      detail: `VG ids ${ids.join(', ')}.`, hint: 'Name the VG by id, or narrow --devices.' })
  }
  return ids[0]
}

export async function devicesOfVg(vgId: string, paths: readonly string[], opener: DeviceOpener): Promise<string[]> {
  return (await scanLabels(paths, opener)).filter((d) => d.label?.vgId === vgId).map((d) => d.path)
}

export interface ScannedVg {
  readonly vgId: string
  readonly name: string
  readonly result: VaryOnResult
}

/** Everything on the devices: labels, and each VG as a read-only vary-on sees it. */
export async function scanDevices(paths: readonly string[], opener: DeviceOpener = defaultOpener): Promise<{
  devices: ScannedDevice[]; vgs: ScannedVg[] }> {
  const devices = await scanLabels(paths, opener)
  const vgs: ScannedVg[] = []
  for (const [name, ids] of await vgIdsByName(devices, opener)) {
    for (const vgId of ids) {
      const vvgIn = devices.filter((d) => d.label?.vgId === vgId).map((d) => ({ name: d.path }))
      const result = await varyOnVg({ vgId, vvgIn, readOnly: true, opener,
        flags: { misspvVon: true, missnameVon: true } })
      vgs.push({ vgId, name: result.descriptor?.name ?? name, result })
    }
  }
  return { devices, vgs }
}
