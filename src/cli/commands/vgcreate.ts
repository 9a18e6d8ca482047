import type { Command } from 'commander'
import { LvmfsError } from '../../errors/index.js'
import { scanDevices, validatePpSize, validateVgName, vgCreate } from '../../lvm/index.js'
import { parseSizeBytes } from '../options.js'
import { addDeviceOptions, cliBackup, deviceListWith, print, type DeviceOptions } from '../lvm-cli.js'

/** `lvmfs vgcreate VG DEV... [--pp-size 4M] [--shared]`: a new VG (blank, all-zero devices are pvcreate'd). */
export function register(program: Command): void {
  addDeviceOptions(program.command('vgcreate')
    .description('create a volume group on devices')
    .argument('<vg>', 'volume group name')
    .argument('<devices...>', 'PVs, or blank (all-zero) devices, to put in it')
    .option('-s, --pp-size <size>', 'physical partition size, a power of two from 64K to 16G', '4M')
    .option('--shared', 'several processes may serve its LVs at once (lvmfs mount --lvs), under the DLM'))
    .action(async (vgName: string, devices: string[],
      options: DeviceOptions & { ppSize: string; shared?: boolean }) => {
      validateVgName(vgName)
      const ppSizeBytes = parseSizeBytes(options.ppSize, '--pp-size')
      validatePpSize(ppSizeBytes)
      const { vgs } = await scanDevices(deviceListWith(options, devices))
      if (vgs.some((vg) => vg.name === vgName)) {
        throw new LvmfsError('ENGINE_EXISTS', `volume group "${vgName}" already exists`, { context: { vg: vgName } })
      }
      const d = await vgCreate({ name: vgName, paths: devices, ppSizeBytes, shared: options.shared === true,
        backup: cliBackup(options) })
      print(options, { vg: vgName, vgId: d.vgId, pvs: d.pvs, shared: d.shared === true },
        `${options.shared === true ? 'shared ' : ''}volume group "${vgName}" created on ${d.pvs.length} PV(s), ` +
        `PP size ${options.ppSize}\n`)
    })
}
