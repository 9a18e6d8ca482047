import type { Command } from 'commander'
import { addDeviceOptions, type DeviceOptions } from '../lvm-cli.js'
import type { DisplayItem } from '../report/display.js'
import { LV_FIELDS, type LvRow } from '../report/fields-lv.js'
import { parseUnits } from '../report/format.js'
import { addUnitsOption, printDisplay } from '../report/options.js'
import { selectLvs } from './lvs.js'

const SCHEDULE = { p: 'parallel', ps: 'parallel write, sequential read', pr: 'parallel, round-robin read',
  s: 'sequential' } as const
const STRICT = { y: 'strict', n: 'non-strict', s: 'superstrict' } as const

const mirrored = (r: LvRow): boolean => r.lv.copies > 1

const ITEMS: readonly DisplayItem<LvRow>[] = [
  { label: 'LV Name', field: 'lv_name' },
  { label: 'VG Name', field: 'vg_name' },
  { label: 'LV Id', field: 'lv_id' },
  { label: 'LV Write Access', field: 'lv_attr', text: () => 'read/write' },
  { label: 'LV Status', field: 'lv_active', text: (r) => (r.active ? 'available' : 'NOT available') },
  { label: 'LV Size', field: 'lv_size' },
  { label: 'Current LE', field: 'lp_count' },
  { label: 'Mirrored volumes', field: 'copies', when: mirrored },
  { label: 'Copy sync percent', field: 'sync_percent', when: mirrored },
  { label: 'Stale PPs', field: 'stale' },
  { label: 'Allocation', field: 'strict', text: (r) => STRICT[r.lv.strict] },
  { label: 'Scheduling', field: 'schedule', text: (r) => SCHEDULE[r.lv.schedule] },
  { label: 'Mirror write consist.', field: 'mwc' },
  { label: 'Active extents (AL)', field: 'al_extents', when: (r) => mirrored(r) && r.lv.mwc === 'active' },
  { label: 'Dirty (passive MWC)', field: 'dirty', when: (r) => r.lv.mwc === 'passive' },
  { label: 'Replica of', field: 'origin', when: (r) => r.replica !== undefined },
  { label: 'Replica type', field: 'replica_type', when: (r) => r.replica !== undefined },
  { label: 'Replica sync', field: 'sync_state', when: (r) => r.replica !== undefined },
  { label: 'Low-water mark', field: 'lwm', when: (r) => r.replica?.lwm !== undefined },
  { label: 'Lag', field: 'lag', when: (r) => r.replica?.lag !== undefined },
]

/** `lvmfs lvdisplay [VG[/LV]] [--units U] [--json]`: LVM2's "--- Logical volume ---" blocks. */
export function register(program: Command): void {
  addUnitsOption(addDeviceOptions(program.command('lvdisplay').description('show logical volumes in detail')
    .argument('[vg]', 'only this volume group (or VG/LV)')))
    .action(async (only: string | undefined, options: DeviceOptions & { units?: string }) => {
      parseUnits(options.units, false) // refused before any device is read
      const { rows, failed } = await selectLvs(only, options)
      printDisplay({ title: 'Logical volume', keyWidth: 22, table: LV_FIELDS, items: ITEMS, jsonKey: 'lvs',
        key: (r) => `${r.vg}/${r.lv.name}` }, rows, options)
      if (failed) throw failed
    })
}
