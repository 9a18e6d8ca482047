import type { Command } from 'commander'
import { resolve } from 'node:path'
import { LvmfsError } from '../../errors/index.js'
import { runDaemon, spawnDaemon } from '../../engine/daemon.js'
import { PV_STATUS, type VaryOnResult } from '../../lvm/index.js'
import { forwardedCommandHandlers } from '../forward.js'
import { addDeviceOptions, deviceList, print, requireName, requireVgExists, table, type DeviceOptions } from '../lvm-cli.js'
import { parseIntegerOption } from '../options.js'

interface Options extends DeviceOptions {
  force?: boolean
  resync: boolean
  missingOk?: boolean
  nonameOk?: boolean
  open: boolean
  foreground?: boolean
  threads: string
  direct: boolean
}

function printVaryOn(options: Options, vgName: string, mountpoint: string, rc: string,
  vvgOut: VaryOnResult['vvgOut']): void {
  const rows = vvgOut.map((o) => [o.pvId, o.name ?? '-', o.status, String(PV_STATUS[o.status])])
  const allActive = vvgOut.every((o) => o.status === 'LVM_PVACTIVE')
  print(options, { vg: vgName, mountpoint, rc, vvgOut },
    (allActive ? '' : table(['PV id', 'Name', 'Status', 'Code'], rows)) +
    `volume group "${vgName}" mounted at ${mountpoint} (${rc})\n`)
}

/**
 * `lvmfs mount VG MOUNTPOINT [--devices ...] [vary-on flags] [--foreground]`: varies the VG on
 * and serves each LV as MOUNTPOINT/<lv>. Without --foreground it starts a background daemon
 * (log in /var/log/lvmfs/VG.log, pid in /run/lvmfs/VG.pid) and returns once it has mounted.
 */
export function register(program: Command): void {
  addDeviceOptions(program.command('mount')
    .description('vary a volume group on and serve its logical volumes as files through FUSE')
    .argument('<vg>', 'volume group name')
    .argument('<mountpoint>', 'an existing directory')
    .option('-f, --force', 'vary on without a quorum; missing PVs become REMOVED (risky)')
    .option('--no-resync', 'do not resynchronise stale partitions after vary-on (auto_resync false)')
    .option('--missing-ok', 'vary on although PVs are missing (misspv_von)')
    .option('--noname-ok', 'treat member PVs not found among the devices as missing (missname_von)')
    .option('--no-open', 'management only: logical volumes cannot be opened (noopen_lvs)')
    .option('--foreground', 'run the daemon in this process, logging to stderr')
    .option('--threads <n>', 'native FUSE reader threads', '8')
    .option('--no-direct', 'use the page cache for backing I/O instead of O_DIRECT'))
    .action(async (vgName: string, mountpointArg: string, options: Options) => {
      requireName('volume group', vgName)
      const mountpoint = resolve(mountpointArg)
      const threads = parseIntegerOption(options.threads, '--threads', 1, 64)
      const devices = deviceList(options).map((device) => resolve(device))
      await requireVgExists(vgName, devices)
      const force = options.force === true
      const flags = { override: force, misspvVon: force || options.missingOk === true,
        missnameVon: force || options.nonameOk === true, autoResync: options.resync, noopenLvs: !options.open }
      if (options.foreground !== true) {
        const argv = [process.argv[1]!, 'mount', vgName, mountpoint, '--foreground', '--devices', devices.join(','),
          '--threads', String(threads), ...(force ? ['--force'] : []), ...(options.resync ? [] : ['--no-resync']),
          ...(options.missingOk === true ? ['--missing-ok'] : []), ...(options.nonameOk === true ? ['--noname-ok'] : []),
          ...(options.open ? [] : ['--no-open']), ...(options.direct ? [] : ['--no-direct'])]
        const message = await spawnDaemon(vgName, argv)
        if (message.error) {
          throw new LvmfsError(message.error.code as 'ENGINE_IO', message.error.message.replace(/^[A-Z_]+: /, ''), {
            ...(message.error.detail ? { detail: message.error.detail } : {}),
            ...(message.error.hint ? { hint: message.error.hint } : {}) })
        }
        const ready = message.ready!
        printVaryOn(options, vgName, mountpoint, ready.rc, ready.vvgOut as VaryOnResult['vvgOut'])
        return
      }
      try {
        const exitCode = await runDaemon({ vgName, mountpoint, devices, flags, threads, directBacking: options.direct,
          logToStderr: process.send === undefined, handlers: forwardedCommandHandlers,
          onReady: (result) => {
            if (process.send) process.send({ ready: { rc: result.rc, vvgOut: result.vvgOut } })
            else printVaryOn(options, vgName, mountpoint, result.rc, result.vvgOut)
          } })
        process.exitCode = exitCode
      } catch (error) {
        if (process.send && error instanceof LvmfsError) process.send({ error: error.toJSON() })
        throw error
      }
    })
}
