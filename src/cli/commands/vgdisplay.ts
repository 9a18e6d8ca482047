import type { Command } from 'commander'
import { addDeviceOptions, type DeviceOptions } from '../lvm-cli.js'
import { countAndSize, type DisplayItem } from '../report/display.js'
import { VG_FIELDS, allocatedPps, totalPps, type VgRow } from '../report/fields-vg.js'
import { parseUnits } from '../report/format.js'
import { addUnitsOption, printDisplay } from '../report/options.js'
import { gather } from '../report/sources.js'
import { vgFailure, vgRowOf } from './vgs.js'

const ppSize = (r: VgRow): number => r.descriptor?.ppSizeBytes ?? 0

const ITEMS: readonly DisplayItem<VgRow>[] = [
  { label: 'VG Name', field: 'vg_name' },
  { label: 'Metadata Copies', field: 'quorum' },
  { label: 'Metadata Sequence No', field: 'vg_seqno' },
  { label: 'VG Access', field: 'vg_attr', text: () => 'read/write' },
  { label: 'VG State', field: 'vg_state' },
  { label: 'Shared', field: 'vg_shared', when: (r) => r.descriptor?.shared === true },
  { label: 'Cur LV', field: 'lv_count' },
  { label: 'Cur PV', field: 'pv_count' },
  { label: 'Missing PV', field: 'vg_missing_pv_count' },
  { label: 'VG Size', field: 'vg_size' },
  { label: 'PE Size', field: 'vg_extent_size' },
  { label: 'Total PE', field: 'vg_extent_count' },
  { label: 'Alloc PE / Size', field: 'vg_alloc_count', text: (r, u) => countAndSize(allocatedPps(r), ppSize(r), u) },
  { label: 'Free  PE / Size', field: 'vg_free_count',
    text: (r, u) => countAndSize(totalPps(r) - allocatedPps(r), ppSize(r), u) },
  { label: 'VG UUID', field: 'vg_uuid' },
]

/** `lvmfs vgdisplay [VG] [--units U] [--json]`: LVM2's "--- Volume group ---" blocks. */
export function register(program: Command): void {
  addUnitsOption(addDeviceOptions(program.command('vgdisplay').description('show volume groups in detail')
    .argument('[vg]', 'only this volume group')))
    .action(async (only: string | undefined, options: DeviceOptions & { units?: string }) => {
      parseUnits(options.units, false) // refused before any device is read
      const vgs = (await gather(options)).vgs.filter((vg) => only === undefined || vg.name === only)
      printDisplay({ title: 'Volume group', keyWidth: 21, table: VG_FIELDS, items: ITEMS, jsonKey: 'vgs',
        key: (r) => r.name }, vgs.map(vgRowOf), options)
      const failed = vgFailure(vgs)
      if (failed) throw failed
    })
}
