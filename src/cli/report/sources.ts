/**
 * Where the reports' data comes from: a read-only scan of the devices, overlaid, for the VG a
 * forwarded command runs against, with the daemon's online VG (its in-memory descriptor and
 * status are never behind the disk) and its replication engine (marks and lag live only there).
 */
import type { LvmfsError } from '../../errors/index.js'
import { scanDevices, type PvState, type ScannedDevice, type VgDescriptor, type VgStatus,
  type VvgOut } from '../../lvm/index.js'
import type { ReplicaStatus } from '../../replication/index.js'
import { onlineVg } from '../io-context.js'
import { deviceList, type DeviceOptions } from '../lvm-cli.js'

export interface VgView {
  readonly name: string
  readonly vgId: string
  readonly rc: string
  readonly descriptor?: VgDescriptor
  readonly status?: VgStatus
  readonly vvgOut: readonly VvgOut[]
  readonly copies?: { readonly present: number; readonly total: number; readonly bad: readonly string[] }
  readonly error?: LvmfsError
  /** Served by the daemon this command runs in. */
  readonly active: boolean
  readonly pvState?: (pvIndex: number) => PvState
}

export interface Sources {
  readonly devices: readonly ScannedDevice[]
  readonly vgs: readonly VgView[]
  /** `vg/lv` -> the replication engine's status of that replica. */
  readonly live: ReadonlyMap<string, ReplicaStatus>
}

export async function gather(options: DeviceOptions): Promise<Sources> {
  const { devices, vgs } = await scanDevices(deviceList(options))
  const live = new Map<string, ReplicaStatus>()
  const views: VgView[] = []
  for (const vg of vgs) {
    const online = onlineVg(vg.name)
    const r = vg.result
    const base = { name: vg.name, vgId: vg.vgId, rc: r.rc, vvgOut: r.vvgOut,
      ...(r.copies === undefined ? {} : { copies: r.copies }) }
    if (online === undefined || online.vg.vgId !== vg.vgId) {
      views.push({ ...base, active: false, ...(r.error === undefined ? {} : { error: r.error }),
        ...(r.descriptor === undefined ? {} : { descriptor: r.descriptor }),
        ...(r.status === undefined ? {} : { status: r.status }) })
      continue
    }
    views.push({ ...base, active: true, descriptor: online.vg.descriptor, status: online.vg.status,
      pvState: (pvIndex) => online.vg.pvState(pvIndex) })
    for (const status of await online.replication?.statuses(vg.name) ?? []) {
      live.set(`${status.vg}/${status.lv}`, status)
    }
  }
  return { devices, vgs: views, live }
}
