import type { Command } from 'commander'
import type { MwcPolicy, Schedule, Strictness } from '../../lvm/index.js'
import { parseIntegerOption, parseSizeBytes } from '../options.js'
import { addDeviceOptions, humanBytes, print, requireName, withVg, type DeviceOptions } from '../lvm-cli.js'
import { LvmfsError } from '../../errors/index.js'
import { MAX_FULL_QUEUE_SECONDS, createThinLv, createThinPool, snapshotThinLv } from '../../engine/index.js'
import { DEFAULT_CHUNK_BYTES, MAX_CHUNK_BYTES, MIN_CHUNK_BYTES, type ThinPoolFormat } from '../../thin/index.js'
import { withMirror } from '../mirror-cli.js'

interface Options extends DeviceOptions {
  size?: string
  thinpool?: boolean
  chunk?: string
  metadataSize?: string
  autoextendThreshold?: string
  autoextendPercent?: string
  queueWhenFull?: string
  thin?: string
  virtualSize?: string
  snapshot?: string
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
    .option('-L, --size <size>', 'size with K, M, G or T suffix (rounded up to whole PPs)')
    .option('-c, --copies <n>', 'copies of each logical partition, 1 to 3', '1')
    .option('--strict <y|n|s>', 'copies on different PVs (y), anywhere (n), or separate PV sets (s)', 'y')
    .option('--schedule <p|ps|pr|s>', 'mirror scheduling policy', 'p')
    .option('--mwc <active|passive|off>', 'mirror write consistency (default active for mirrors, else off)')
    .option('--al-extents <n>', 'activity-log size in 4 MiB extents for MWC active (default 1237)')
    .option('--bitmap-chunk <size>', 'write-intent bitmap chunk (default 64K)')
    .option('--thinpool', 'create a thin pool of --size (its data and metadata)')
    .option('--chunk <size>', 'thin pool block size, 64K to 1G, a power of two (default 64K)')
    .option('--metadata-size <size>', 'thin pool metadata area (default: 48 bytes per block, at least 4M)')
    .option('--autoextend-threshold <percent>', 'grow the thin pool when its data use reaches this (default 0: never)')
    .option('--autoextend-percent <percent>', 'grow the thin pool by this share of its size (default 20)')
    .option('--queue-when-full <seconds>', 'a full thin pool holds writes this long for space before ENOSPC ' +
      `(default 0: fail at once; at most ${MAX_FULL_QUEUE_SECONDS})`)
    .option('-T, --thin <pool>', 'create a thin LV of --virtual-size in this thin pool')
    .option('-V, --virtual-size <size>', 'size of a thin LV (may exceed the pool)')
    .option('-s, --snapshot <origin>', 'create a snapshot of this thin LV'))
    .action(async (vgName: string, lvName: string, options: Options) => {
      requireName('volume group', vgName)
      requireName('logical volume', lvName)
      if (options.thin !== undefined || options.snapshot !== undefined) return createThin(vgName, lvName, options)
      if (options.size === undefined) throw new LvmfsError('ENGINE_USAGE', 'lvcreate needs --size (or --thin POOL --virtual-size, or --snapshot ORIGIN)')
      const bytes = parseSizeBytes(options.size, '--size')
      const copies = parseIntegerOption(options.copies, '--copies', 1, 3) as 1 | 2 | 3
      const strict = choice<Strictness>(options.strict, '--strict', ['y', 'n', 's'])
      const schedule = choice<Schedule>(options.schedule, '--schedule', ['p', 'ps', 'pr', 's'])
      const mwc = options.mwc === undefined ? undefined : choice<MwcPolicy>(options.mwc, '--mwc', ['active', 'passive', 'off'])
      const log = logOptions(options)
      if (options.thinpool === true) {
        const format = thinPoolFormat(options, bytes)
        const lv = await withMirror(vgName, options, (engine) => createThinPool(engine, { name: lvName,
          lpCount: engine.vg.lpCountForBytes(bytes),
          copies, strict, schedule, ...(mwc === undefined ? {} : { mwc }), ...log, format,
          autoextendThreshold: percentOption(options.autoextendThreshold, '--autoextend-threshold', 0),
          autoextendPercent: percentOption(options.autoextendPercent, '--autoextend-percent', 20),
          fullQueueSeconds: options.queueWhenFull === undefined ? 0
            : parseIntegerOption(options.queueWhenFull, '--queue-when-full', 0, MAX_FULL_QUEUE_SECONDS) }))
        print(options, { vg: vgName, lv: lvName, lvId: lv.lvId, lps: lv.lps.length, chunkBytes: format.chunkBytes,
          metadataBytes: format.metadataBytes },
          `thin pool "${lvName}" created in "${vgName}" (${lv.lps.length} LPs, ${humanBytes(format.chunkBytes)} blocks, ${humanBytes(format.metadataBytes)} metadata)\n`)
        return
      }
      const lv = await withVg(vgName, options, (vg) => vg.lvCreate({ name: lvName, lpCount: vg.lpCountForBytes(bytes),
        copies, strict, schedule, ...(mwc === undefined ? {} : { mwc }), ...log }))
      print(options, { vg: vgName, lv: lvName, lvId: lv.lvId, lps: lv.lps.length },
        `logical volume "${lvName}" created in "${vgName}" (${lv.lps.length} LPs, ${copies} copies)\n`)
    })
}

const MIB = 1024 * 1024

function percentOption(text: string | undefined, what: string, fallback: number): number {
  return text === undefined ? fallback : parseIntegerOption(text, what, 0, 100)
}

/** Chunk and metadata sizes of a new pool; metadata defaults to LVM2's rule of thumb (48 bytes a block). */
function thinPoolFormat(options: Options, requestedBytes: number): ThinPoolFormat {
  const chunkBytes = options.chunk === undefined ? DEFAULT_CHUNK_BYTES : parseSizeBytes(options.chunk, '--chunk')
  if (chunkBytes < MIN_CHUNK_BYTES || chunkBytes > MAX_CHUNK_BYTES || (chunkBytes & (chunkBytes - 1)) !== 0) {
    throw new LvmfsError('ENGINE_USAGE', `invalid --chunk ${options.chunk ?? ''}`, {
      detail: `A thin pool block is a power of two from ${humanBytes(MIN_CHUNK_BYTES)} to ${humanBytes(MAX_CHUNK_BYTES)}.` })
  }
  const metadataBytes = options.metadataSize === undefined
    ? Math.max(4 * MIB, Math.ceil((requestedBytes / chunkBytes) * 48 / MIB) * MIB)
    : parseSizeBytes(options.metadataSize, '--metadata-size')
  if (metadataBytes % 4096 !== 0 || metadataBytes < 256 * 1024) {
    throw new LvmfsError('ENGINE_USAGE', `invalid --metadata-size ${options.metadataSize ?? ''}`, {
      detail: 'The metadata area is a multiple of 4K and at least 256K.' })
  }
  return { chunkBytes, metadataBytes }
}

async function createThin(vgName: string, lvName: string, options: Options): Promise<void> {
  if (options.snapshot !== undefined) {
    const origin = options.snapshot.includes('/') ? options.snapshot.split('/')[1]! : options.snapshot
    const lv = await withMirror(vgName, options, (engine) => snapshotThinLv(engine, lvName, origin))
    print(options, { vg: vgName, lv: lvName, lvId: lv.lvId, origin }, `snapshot "${lvName}" of "${origin}" created in "${vgName}"\n`)
    return
  }
  if (options.virtualSize === undefined) throw new LvmfsError('ENGINE_USAGE', 'lvcreate --thin needs --virtual-size')
  const virtualBytes = parseSizeBytes(options.virtualSize, '--virtual-size')
  const pool = options.thin!.includes('/') ? options.thin!.split('/')[1]! : options.thin!
  const lv = await withMirror(vgName, options, (engine) => createThinLv(engine, lvName, pool, virtualBytes))
  print(options, { vg: vgName, lv: lvName, lvId: lv.lvId, pool, virtualBytes },
    `thin logical volume "${lvName}" created in pool "${pool}" of "${vgName}" (${humanBytes(virtualBytes)} virtual)\n`)
}
