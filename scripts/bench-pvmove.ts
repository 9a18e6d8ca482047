/**
 * pvmove benchmark, in process (no FUSE), one run on one disk: a 1-copy LV is moved from one
 * PV file to another, against `dd` copying the same bytes between the same files with O_DIRECT
 * (the floor of any move: read once, write once), passes interleaved. pvmove also pays, per
 * partition, an fdatasync of the new PP and a descriptor commit on every PV.
 *
 *   node --import tsx scripts/bench-pvmove.ts [--size 1G] [--passes 2] [--dir PATH] [--json]
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { parseSizeBytes } from '../src/cli/options.js'
import { pvCreate, vgCreate, varyOnVg } from '../src/lvm/index.js'
import { MirrorEngine, movePvOff } from '../src/mirror/index.js'

const MiB = 1024 * 1024
const PP = 4 * MiB
const { values: options } = parseArgs({ options: {
  json: { type: 'boolean', default: false },
  size: { type: 'string' },
  passes: { type: 'string' },
  dir: { type: 'string' },
} })
const sizeBytes = parseSizeBytes(options.size ?? '1G', '--size')
const passes = Number(options.passes ?? '2')
const root = mkdtempSync(join(options.dir ?? tmpdir(), 'lvmfs-bench-pvmove-'))
process.env['LVMFS_LOCK_DIR'] ??= join(root, 'locks')
process.env['LVMFS_BACKUP_DIR'] ??= join(root, 'backup')
const paths = [join(root, 'pv0.img'), join(root, 'pv1.img')]

async function withEngine<T>(fn: (engine: MirrorEngine) => Promise<T>): Promise<T> {
  const vg = (await varyOnVg({ vgName: 'bench', devices: paths, flags: { misspvVon: true, missnameVon: true } })).vg!
  const engine = await MirrorEngine.start(vg)
  try {
    return await fn(engine)
  } finally {
    await engine.stop()
    await vg.varyOff()
  }
}

function dropCache(): void {
  for (const path of paths) spawnSync('dd', [`of=${path}`, 'oflag=nocache', 'conv=notrunc,fdatasync', 'count=0'])
}

/** dd of the LV's bytes from one PV file to the other, O_DIRECT both sides, like pvmove. */
function ddSeconds(fromOffset: number, toOffset: number): number {
  const started = process.hrtime.bigint()
  const run = spawnSync('dd', [`if=${paths[0]}`, `of=${paths[1]}`, 'bs=4M', `count=${sizeBytes / PP}`,
    `skip=${fromOffset}`, `seek=${toOffset}`, 'iflag=direct,skip_bytes', 'oflag=direct,seek_bytes',
    'conv=notrunc,fdatasync'])
  if (run.status !== 0) throw new Error(`dd failed: ${run.stderr}`)
  return Number(process.hrtime.bigint() - started) / 1e9
}

try {
  for (const path of paths) {
    writeFileSync(path, '')
    truncateSync(path, sizeBytes + 64 * MiB)
    await pvCreate(path)
  }
  await vgCreate({ name: 'bench', paths, ppSizeBytes: PP })
  const offsets = await withEngine(async (engine) => {
    await engine.vg.lvCreate({ name: 'lv', lpCount: sizeBytes / PP, copies: 1, pvIndexes: [0] })
    return [engine.vg.ppOffsetBytes(0, 0), engine.vg.ppOffsetBytes(1, 0)] as const
  })
  // Real bytes to move (sparse holes would read as free).
  spawnSync('dd', ['if=/dev/urandom', `of=${paths[0]}`, 'bs=4M', `count=${sizeBytes / PP}`,
    `seek=${offsets[0]}`, 'oflag=seek_bytes', 'conv=notrunc,fdatasync'])
  const rows: Array<{ pass: number; ddMiBs: number; pvmoveMiBs: number; ratio: number }> = []
  let from = 0
  for (let pass = 1; pass <= passes; pass++) {
    dropCache()
    const dd = ddSeconds(offsets[0], offsets[1])
    dropCache()
    const started = process.hrtime.bigint()
    const report = await withEngine((engine) => movePvOff(engine.mirror, from, { to: [1 - from] }))
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    if (report.remainingLps !== 0) throw new Error('pvmove left partitions behind')
    from = 1 - from
    const row = { pass, ddMiBs: sizeBytes / MiB / dd, pvmoveMiBs: sizeBytes / MiB / seconds, ratio: dd / seconds }
    rows.push(row)
    if (options.json) console.log(JSON.stringify(row))
    else console.log(`pass ${pass}: dd ${row.ddMiBs.toFixed(0)} MiB/s, pvmove ${row.pvmoveMiBs.toFixed(0)} MiB/s, ` +
      `ratio ${row.ratio.toFixed(2)}`)
  }
} finally {
  rmSync(root, { recursive: true, force: true })
}
