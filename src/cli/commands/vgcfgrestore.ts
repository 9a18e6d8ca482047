import type { Command } from 'commander'
import { LvmfsError, usageError } from '../../errors/index.js'
import {
  readBackupFile, restoreVgDescriptor, scanLabels, vgIdsByName, defaultOpener, type VgDescriptor,
} from '../../lvm/index.js'
import {
  addDeviceOptions, cliBackup, deviceList, print, refuseMounted, requireName, table, type DeviceOptions,
} from '../lvm-cli.js'

interface Options extends DeviceOptions {
  file?: string
  list?: boolean
}

/** The VG's id: from its PVs' descriptors when one is readable, else from the backups (a VG
 * whose every descriptor copy is gone is found by the name its newest backup has). */
async function vgIdOf(vgName: string, devices: readonly string[], options: Options): Promise<string> {
  const onDisk = (await vgIdsByName(await scanLabels(devices), defaultOpener)).get(vgName) ?? []
  const ids = onDisk.length > 0 ? onDisk : await cliBackup(options).vgIdsNamed(vgName)
  if (ids.length > 1) {
    throw new LvmfsError('LVM_INVALID_PARAM', `two volume groups are named "${vgName}"`, {
      detail: `VG ids ${ids.join(', ')}.`, hint: 'Restore one with -f FILE.' })
  }
  if (ids[0] === undefined) {
    throw new LvmfsError('ENGINE_NOT_FOUND', `no volume group "${vgName}" on the devices or in the backups`, {
      detail: `Backup directory: ${cliBackup(options).dir}.`, hint: 'Check --devices and --backup-dir.',
      context: { vg: vgName } })
  }
  return ids[0]
}

/** `lvmfs vgcfgrestore VG [-f FILE | --list]`: commits a backed-up descriptor (the newest one,
 * or FILE) onto the VG's PVs above every sequence number on them, so the next vary-on adopts
 * it. As LVM2, it refuses on an active VG: a mounted VG must be unmounted first. */
export function register(program: Command): void {
  addDeviceOptions(program.command('vgcfgrestore')
    .description("restore a volume group's descriptor from a backup (the VG must not be mounted)")
    .argument('<vg>', 'volume group name')
    .option('-f, --file <file>', 'restore this backup file (default: the newest backup of the VG)')
    .option('-l, --list', 'list the backups of the VG and change nothing'))
    .action(async (vgName: string, options: Options) => {
      requireName('volume group', vgName)
      if (options.list === true && options.file !== undefined) throw usageError('give --list or --file, not both')
      refuseMounted(vgName, 'vgcfgrestore')
      const devices = deviceList(options)
      const backups = cliBackup(options)
      if (options.list === true) {
        const entries = await backups.list(await vgIdOf(vgName, devices, options))
        const rows = entries.map((e) => ({ path: e.path, seq: e.seq, name: e.descriptor?.name ?? null,
          lvs: e.descriptor?.lvs.length ?? null, timestampMs: e.descriptor?.timestampMs ?? null,
          problem: e.problem ?? null }))
        print(options, { vg: vgName, backups: rows }, table(['Seq', 'VG', 'LVs', 'Written', 'File'],
          rows.map((r) => [String(r.seq), r.name ?? '-', r.lvs === null ? '-' : String(r.lvs),
            r.timestampMs === null ? `damaged: ${r.problem}` : new Date(r.timestampMs).toISOString(), r.path])))
        return
      }
      let descriptor: VgDescriptor
      let from: string
      if (options.file !== undefined) {
        descriptor = await readBackupFile(options.file)
        from = options.file
        if (descriptor.name !== vgName) {
          throw usageError(`backup "${options.file}" is of volume group "${descriptor.name}", not "${vgName}"`)
        }
      } else {
        const newest = (await backups.list(await vgIdOf(vgName, devices, options)))
          .filter((e) => e.descriptor !== undefined).at(-1)
        if (newest?.descriptor === undefined) {
          throw new LvmfsError('ENGINE_NOT_FOUND', `no readable backup of "${vgName}" in ${backups.dir}`, {
            context: { vg: vgName } })
        }
        descriptor = newest.descriptor
        from = newest.path
      }
      const restored = await restoreVgDescriptor({ descriptor, devices, backup: backups })
      print(options, { vg: vgName, vgId: restored.vgId, from, backupSeq: descriptor.seq, seq: restored.seq },
        `volume group "${vgName}" restored from ${from} (backup seq ${descriptor.seq}, committed as seq ` +
        `${restored.seq})\n`)
    })
}
