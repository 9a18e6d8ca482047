import type { Command } from 'commander'
import { resolve } from 'node:path'
import { LvmfsError } from '../../errors/index.js'
import { stdout } from '../io-context.js'
import { addDeviceOptions, deviceListWith, type DeviceOptions } from '../lvm-cli.js'
import { displayJson, renderDisplay, type DisplayItem } from '../report/display.js'
import type { PvRow } from '../report/fields-pv.js'
import { PV_FIELDS } from '../report/fields-pv.js'
import { parseUnits } from '../report/format.js'
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
  addDeviceOptions(program.command('pvdisplay').description('show physical volumes in detail')
    .argument('[pv...]', 'only these devices (they are always scanned)'))
    .option('--units <unit>', 'size units: h|H|r|R human, b, s sectors, k|m|g|t|p|e (1024), K|M|G|T|P|E (1000)')
    .action(async (only: string[], options: DeviceOptions & { units?: string }) => {
      const units = parseUnits(options.units, false)
      const sources = await gather({ ...options, devices: deviceListWith(options, only).join(',') })
      const wanted = new Set(only.map((p) => resolve(p)))
      const rows = pvRowsOf(sources).filter((r) => wanted.size === 0 || wanted.has(resolve(r.path)))
        .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
      stdout().write(options.json === true
        ? JSON.stringify({ pvs: rows.map((r) => displayJson(PV_FIELDS, ITEMS, r)) }) + '\n'
        : renderDisplay('Physical volume', 21, PV_FIELDS, ITEMS, rows, units))
      const found = new Set(rows.map((r) => resolve(r.path)))
      const missing = only.find((p) => !found.has(resolve(p)))
      if (missing !== undefined) {
        const problem = sources.devices.find((d) => resolve(d.path) === resolve(missing))?.problem
        throw new LvmfsError('ENGINE_NOT_FOUND', `no physical volume on "${missing}"`, {
          ...(problem === undefined ? {} : { detail: problem }), context: { path: missing } })
      }
    })
}
