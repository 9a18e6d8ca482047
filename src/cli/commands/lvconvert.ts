import type { Command } from 'commander'
import { notFound, usageError } from '../../errors/index.js'
import { mergeThinSnapshot } from '../../engine/index.js'
import { refuseThin } from '../../lvm/index.js'
import { onlineVg } from '../io-context.js'
import { addLvCopies, dropLvCopies } from '../../mirror/index.js'
import { STRICTNESS, type Strictness } from '../../format/index.js'
import { addDeviceOptions, print, withVg, type DeviceOptions } from '../lvm-cli.js'
import {
  addRateOptions, failIfNotSynced, parseVgLv, progressBar, rateOption, renderResync, withMirror,
  type MirrorCliOptions,
} from '../mirror-cli.js'
import { parseIntegerOption } from '../options.js'
import { choice } from './lvcreate.js'
import { resolvePv } from './resync.js'

interface Options extends MirrorCliOptions, DeviceOptions {
  readonly copies?: string
  readonly strict?: string
  readonly pv?: string[]
  /** commander's `--no-sync` sets it false. */
  readonly sync?: boolean
  readonly merge?: boolean
}

/**
 * `lvmfs lvconvert VG/LV [--copies N [--pv PV...] [--no-sync]] [--strict y|n|s]`, online on a
 * mounted VG. --strict changes the placement rule first (the current placement must obey it).
 * More copies: the new PPs (on --pv PVs if given) start stale, then are resynced with progress
 * while the LV stays in use (`--no-sync` leaves them stale for a later resync or auto-resync).
 * Fewer copies: stale copies and copies on --pv PVs go first; the last fresh copy of an LP
 * never goes. LVM2 spells it `lvconvert -m N-1`.
 */
export function register(program: Command): void {
  addDeviceOptions(addRateOptions(program.command('lvconvert')
    .description('add or drop mirror copies of a logical volume while it is in use')
    .argument('<vg/lv>', 'the logical volume')
    .option('--copies <n>', 'copies per partition, 1 to 3')
    .option('--strict <y|n|s>', 'copy placement rule for new partitions (the current ones must follow it)')
    .option('--pv <pv...>', 'adding: put new copies on these PVs; dropping: drop the copies on these PVs first')
    .option('--no-sync', 'adding: leave the new copies stale (resync later)')
    .option('--merge', 'roll the origin of this thin snapshot back to it; the snapshot goes')))
    .action(async (path: string, options: Options) => {
      const { vgName, lvName } = parseVgLv(path)
      if (options.merge === true) {
        const origin = await withMirror(vgName, options, (engine) => {
          const lv = engine.vg.lvByName(lvName)
          if (lv === undefined) throw notFound('logical volume', lvName, vgName)
          return mergeThinSnapshot(engine, lv, (lvId) => onlineVg(vgName)?.isLvOpen?.(lvId) ?? false)
        })
        print(options, { vg: vgName, merged: lvName, origin: origin.name },
          `snapshot "${lvName}" merged into "${origin.name}"\n`)
        return
      }
      if (options.copies === undefined && options.strict === undefined) {
        throw usageError('nothing to convert', 'Give --copies N and/or --strict y|n|s.')
      }
      const strict = options.strict === undefined ? undefined : choice<Strictness>(options.strict, '--strict',
        STRICTNESS)
      if (options.copies === undefined) {
        const lv = await withVg(vgName, options, (vg) => vg.lvChange(lvName, { strict: strict! }))
        print(options, { vg: vgName, lv: lvName, copies: lv.copies, strict: lv.strict },
          `logical volume "${vgName}/${lvName}" now has strict ${lv.strict}\n`)
        return
      }
      const copies = parseIntegerOption(options.copies, '--copies', 1, 3)
      const bar = progressBar({ ...options, vgName })
      const result = await withMirror(vgName, options, async (engine) => {
        const lv = engine.mirror.lv(lvName)
        refuseThin(lv, 'lvconvert --copies')
        const pvs = options.pv?.map((text) => resolvePv(engine.vg.descriptor.pvs, text))
        if (strict !== undefined) await engine.vg.lvChange(lvName, { strict })
        if (copies === lv.copies) throw usageError(`"${vgName}/${lvName}" already has ${copies} copies`)
        if (copies < lv.copies) return { lv: await dropLvCopies(engine.mirror, lvName, copies, pvs) }
        const added = await addLvCopies(engine.mirror, lvName, copies, pvs)
        if (options.sync === false) return { lv: added }
        try {
          const resyncer = engine.resyncer({ ...rateOption(options), ...(bar.onProgress ? { onProgress: bar.onProgress }
            : {}) })
          return { lv: added, resync: await resyncer.resynclv(lvName, false) }
        } finally {
          bar.stop()
        }
      })
      const report = { vg: vgName, lv: lvName, copies: result.lv.copies, mwc: result.lv.mwc,
        ...(result.resync === undefined ? {} : { resync: result.resync }) }
      print(options, report, `logical volume "${vgName}/${lvName}" has ${result.lv.copies} ` +
        `${result.lv.copies === 1 ? 'copy' : 'copies'}\n` + (result.resync ? renderResync(result.resync) : ''))
      if (result.resync !== undefined) failIfNotSynced(result.resync)
    })
}
