import type { Command } from 'commander'
import { LvmfsError } from '../../errors/index.js'
import { absoluteDevicePath } from '../../io/index.js'
import { addDeviceOptions, deviceListWith, type DeviceOptions } from '../lvm-cli.js'
import type { DisplayItem } from '../report/display.js'
import { PV_FIELDS, type PvRow } from '../report/fields-pv.js'
import { parseUnits } from '../report/format.js'
import { addUnitsOption, printDisplay } from '../report/options.js'
import { gather } from '../report/sources.js'
import { pvRowsOf } from './pvs.js'

const ITEMS: readonly DisplayItem<PvRow>[] = [
  { label: 'PV Name', field: 'pv_name' },
  { label: 'VG Name', field: 'vg_name' },
  { label: 'PV Size', field: 'pv_size' },
  { label: 'Allocatable', field: 'pv_attr', text: (r) => (r.state === 'active' ? 'yes' : 'NO') },
  { label: 'PV State', field: 'pv_state', when: (r) => r.state !== undefined },
  { label: 'PV Status', field: 'pv_status' },
  { label: 'PE Size', field: 'pv_pe_size', when: (r) => r.ppSizeBytes > 0 },
  { label: 'Total PE', field: 'pv_pe_count' },
  { label: 'Free PE', field: 'pv_free', text: (r) => String(r.ppCount - r.allocatedPps) },
  { label: 'Allocated PE', field: 'pv_pe_alloc_count' },
  { label: 'Stale PE', field: 'stale' },
  { label: 'PV UUID', field: 'pv_uuid' },
]

/** `lvmfs pvdisplay [PV...] [--units U] [--json]`: LVM2's "--- Physical volume ---" blocks. */
export function register(program: Command): void {
  addUnitsOption(addDeviceOptions(program.command('pvdisplay').description('show physical volumes in detail')
    .argument('[pv...]', 'only these devices (they are always scanned)')))
    .action(async (only: string[], options: DeviceOptions & { units?: string }) => {
      parseUnits(options.units, false) // refused before any device is read
      const sources = await gather({ ...options, devices: deviceListWith(options, only).join(',') })
      const wanted = new Set(only.map((p) => absoluteDevicePath(p)))
      const rows = pvRowsOf(sources).filter((r) => wanted.size === 0 || wanted.has(absoluteDevicePath(r.path)))
      printDisplay({ title: 'Physical volume', keyWidth: 21, table: PV_FIELDS, items: ITEMS, jsonKey: 'pvs',
        key: (r) => r.path }, rows, options)
      const found = new Set(rows.map((r) => absoluteDevicePath(r.path)))
      const missing = only.find((p) => !found.has(absoluteDevicePath(p)))
      if (missing !== undefined) {
        const problem = sources.devices.find((d) => absoluteDevicePath(d.path) === absoluteDevicePath(missing))?.problem
        throw new LvmfsError('ENGINE_NOT_FOUND', `no physical volume on "${missing}"`, {
          ...(problem === undefined ? {} : { detail: problem }), context: { path: missing } })
      }
    })
}
