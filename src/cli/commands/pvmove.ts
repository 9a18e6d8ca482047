import type { Command } from 'commander'
import { LvmfsError } from '../../errors/index.js'
import { movePvOff, type MoveReport } from '../../mirror/index.js'
import { addDeviceOptions, humanBytes, print, requireName, type DeviceOptions } from '../lvm-cli.js'
import { progressBar, withMirror } from '../mirror-cli.js'
import { resolvePv } from './resync.js'

interface Options extends DeviceOptions {
  readonly name?: string
  readonly abort?: boolean
}

/** Moves running in this process (the daemon, for a mounted VG), so `--abort` can stop one. */
const running = new Map<string, AbortController>()

/**
 * `lvmfs pvmove VG PV [DEST...] [-n LV] [--abort]`: moves every partition off PV, one LP at a
 * time, while the LVs stay in use (each LP's regions are held exclusive while its data is
 * copied and its new place committed). Each LP moved is committed on its own, so after a crash
 * or --abort the same command resumes with what is left. LVM2 names the VG by the PV; lvmfs
 * names it first, like vgreduce.
 */
export function register(program: Command): void {
  addDeviceOptions(program.command('pvmove')
    .description('move the partitions of a physical volume to other PVs, online')
    .argument('<vg>', 'volume group')
    .argument('<pv>', 'the PV to empty (device path, PV id or index)')
    .argument('[dest...]', 'PVs to move to (default: any other active PV)')
    .option('-n, --name <lv>', 'only the partitions of this logical volume')
    .option('--abort', 'stop a pvmove running on this VG after the partition it is moving'))
    .action(async (vgName: string, pvText: string, destTexts: string[], options: Options) => {
      requireName('volume group', vgName)
      const key = `${vgName}:${pvText}`
      if (options.abort === true) {
        const move = running.get(key)
        if (move === undefined) {
          throw new LvmfsError('ENGINE_NOT_FOUND', `no pvmove of "${pvText}" is running on "${vgName}"`, {
            hint: 'A pvmove stopped by a crash or --abort resumes when run again.', context: { vg: vgName, pv: pvText } })
        }
        move.abort()
        print(options, { vg: vgName, pv: pvText, aborting: true }, `pvmove of "${pvText}" stops after this partition\n`)
        return
      }
      if (running.has(key)) {
        throw new LvmfsError('ENGINE_BUSY', `a pvmove of "${pvText}" is already running on "${vgName}"`)
      }
      const controller = new AbortController()
      running.set(key, controller)
      const bar = progressBar({ ...options, vgName })
      let report: MoveReport
      try {
        report = await withMirror(vgName, options, async (engine) => {
          const pvs = engine.vg.descriptor.pvs
          const from = resolvePv(pvs, pvText)
          const to = destTexts.map((text) => resolvePv(pvs, text))
          if (to.includes(from)) throw new LvmfsError('ENGINE_USAGE', `"${pvText}" is both source and destination`)
          return await movePvOff(engine.mirror, from, { ...(to.length > 0 ? { to } : {}),
            ...(options.name === undefined ? {} : { lv: options.name }), signal: controller.signal,
            onProgress: (p) => bar.onProgress?.({ doneBytes: p.movedBytes,
              totalBytes: p.totalLps * engine.vg.ppSizeBytes, copiedBytes: p.movedBytes, lv: p.lv, lp: p.lp }) })
        })
      } finally {
        bar.stop()
        running.delete(key)
      }
      print(options, { vg: vgName, pv: pvText, ...report }, `moved ${report.movedLps} partition(s) ` +
        `(${humanBytes(report.movedBytes)}) off "${pvText}"` +
        (report.remainingLps > 0 ? `; ${report.remainingLps} left${report.aborted ? ' (aborted)' : ''}` : '') + '\n')
    })
}
