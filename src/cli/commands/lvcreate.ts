import type { Command } from 'commander'
import type { MwcPolicy, Schedule, Strictness } from '../../lvm/index.js'
import { parseIntegerOption, parseSizeBytes } from '../options.js'
import { addDeviceOptions, print, requireName, withVg, type DeviceOptions } from '../lvm-cli.js'
import { LvmfsError } from '../../errors/index.js'

interface Options extends DeviceOptions {
  size: string
  copies: string
  strict: string
  schedule: string
  mwc?: string
  alExtents?: string
  bitmapChunk?: string
}

export function choice<T extends string>(value: string, what: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new LvmfsError('ENGINE_USAGE', `invalid ${what} "${value}"`, { detail: `Expected one of ${allowed.join(', ')}.` })
  }
  return value as T
}

/** The activity-log and bitmap options shared by lvcreate and lvchange. */
export function logOptions(options: { alExtents?: string, bitmapChunk?: string }):
  { alExtents?: number, bitmapChunkBytes?: number } {
  return {
    ...(options.alExtents === undefined ? {} : { alExtents: parseIntegerOption(options.alExtents, '--al-extents', 1, 65535) }),
    ...(options.bitmapChunk === undefined ? {} : { bitmapChunkBytes: parseSizeBytes(options.bitmapChunk, '--bitmap-chunk') }),
  }
}

/** `lvmfs lvcreate VG LV --size 1G [--copies 1|2|3] [--strict y|n|s] [--schedule p|ps|pr|s] [--mwc ...]` */
export function register(program: Command): void {
  addDeviceOptions(program.command('lvcreate')
    .description('create a logical volume')
    .argument('<vg>', 'volume group name')
    .argument('<lv>', 'logical volume name')
    .requiredOption('-L, --size <size>', 'size with K, M, G or T suffix (rounded up to whole PPs)')
    .option('-c, --copies <n>', 'copies of each logical partition, 1 to 3', '1')
    .option('--strict <y|n|s>', 'copies on different PVs (y), anywhere (n), or separate PV sets (s)', 'y')
    .option('--schedule <p|ps|pr|s>', 'mirror scheduling policy', 'p')
    .option('--mwc <active|passive|off>', 'mirror write consistency (default active for mirrors, else off)')
    .option('--al-extents <n>', 'activity-log size in 4 MiB extents for MWC active (default 1237)')
    .option('--bitmap-chunk <size>', 'write-intent bitmap chunk (default 64K)'))
    .action(async (vgName: string, lvName: string, options: Options) => {
      requireName('volume group', vgName)
      requireName('logical volume', lvName)
      const bytes = parseSizeBytes(options.size, '--size')
      const copies = parseIntegerOption(options.copies, '--copies', 1, 3) as 1 | 2 | 3
      const strict = choice<Strictness>(options.strict, '--strict', ['y', 'n', 's'])
      const schedule = choice<Schedule>(options.schedule, '--schedule', ['p', 'ps', 'pr', 's'])
      const mwc = options.mwc === undefined ? undefined : choice<MwcPolicy>(options.mwc, '--mwc', ['active', 'passive', 'off'])
      const log = logOptions(options)
      const lv = await withVg(vgName, options, (vg) => vg.lvCreate({ name: lvName, lpCount: vg.lpCountForBytes(bytes),
        copies, strict, schedule, ...(mwc === undefined ? {} : { mwc }), ...log }))
      print(options, { vg: vgName, lv: lvName, lvId: lv.lvId, lps: lv.lps.length },
        `logical volume "${lvName}" created in "${vgName}" (${lv.lps.length} LPs, ${copies} copies)\n`)
    })
}
