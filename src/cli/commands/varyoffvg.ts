import type { Command } from 'commander'
import { LvmfsError, isLvmfsError } from '../../errors/index.js'
import { isRemoteDevicePath, openFileDevice } from '../../io/index.js'
import { scanDevices } from '../../lvm/index.js'
import { addDeviceOptions, deviceList, print, requireName, requireVgExists, type DeviceOptions } from '../lvm-cli.js'

/**
 * `lvmfs varyoffvg VG`. A CLI command holds a VG only while it runs, so a VG is "on" only
 * inside a long-lived process (the mount daemon), which varies it off when it stops. This verb
 * reports whether some process holds the VG's PVs (exit 5, naming the pid) or not (exit 0).
 */
export function register(program: Command): void {
  addDeviceOptions(program.command('varyoffvg')
    .description('check that no process holds a volume group varied on')
    .argument('<vg>', 'volume group name'))
    .action(async (vgName: string, options: DeviceOptions) => {
      requireName('volume group', vgName)
      const devices = deviceList(options)
      await requireVgExists(vgName, devices)
      const { vgs } = await scanDevices(devices)
      const vg = vgs.find((v) => v.name === vgName)!
      for (const out of vg.result.vvgOut) {
        // A remote PV has no exclusive claim to probe: the claims of the local PVs, or the
        // shared VG's lock, tell whether a daemon holds the VG.
        if (out.name === null || isRemoteDevicePath(out.name)) continue
        try {
          const device = await openFileDevice(out.name, { exclusive: true, readOnly: true })
          await device.close()
        } catch (error) {
          if (isLvmfsError(error) && error.code === 'ENGINE_BUSY') {
            throw new LvmfsError('ENGINE_BUSY', `volume group "${vgName}" is varied on by another process`, {
              detail: error.message, hint: 'Stop (unmount) that process to vary the VG off.', context: error.context })
          }
        }
      }
      print(options, { vg: vgName, state: 'offline' }, `volume group "${vgName}" is varied off\n`)
    })
}
