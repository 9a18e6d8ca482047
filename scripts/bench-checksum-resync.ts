/**
 * Checksum resync benchmark, in-process (no FUSE), one run on one disk: a forced resync of a
 * 2-copy LV whose copies are identical (the state after a crash of a mostly idle mirror), with
 * and without --checksum (ChecksumNarrower as narrowRanges), passes interleaved.
 *
 * Per pass: wall time (ending with the targets' fdatasync, as resync does), the bytes resync
 * reports written (copiedBytes) and compared (comparedBytes), and what the process really sent
 * to storage (write_bytes of /proc/self/io, which counts the native threads too). Before each
 * pass the page cache of both PV files is dropped (`dd oflag=nocache count=0`), so the reads of
 * both variants come from the disk.
 *
 *   node --import tsx scripts/bench-checksum-resync.ts [--size 1G] [--passes 3] [--dir PATH] [--json]
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { parseSizeBytes } from '../src/cli/options.js'
import { pvCreate, vgCreate, varyOnVg } from '../src/lvm/index.js'
import { MirrorEngine } from '../src/mirror/index.js'
import { ChecksumNarrower } from '../src/mirror/checksum-diff.js'
import { nativeAddon } from '../src/native/addon.js'

const MiB = 1024 * 1024
const { values: options } = parseArgs({ options: {
  json: { type: 'boolean', default: false },
  size: { type: 'string' },
  passes: { type: 'string' },
  dir: { type: 'string' },
} })
const sizeBytes = parseSizeBytes(options.size ?? '1G', '--size')
const passes = Number(options.passes ?? '3')
const root = mkdtempSync(join(options.dir ?? tmpdir(), 'lvmfs-bench-checksum-'))
process.env['LVMFS_LOCK_DIR'] ??= join(root, 'locks')
const paths = [join(root, 'pv0.img'), join(root, 'pv1.img')]

function writeBytes(): number {
  const line = readFileSync('/proc/self/io', 'utf8').split('\n').find((entry) => entry.startsWith('write_bytes:'))
  return Number(line?.split(':')[1] ?? 0)
}

function dropCache(path: string): void {
  const run = spawnSync('dd', [`of=${path}`, 'oflag=nocache', 'conv=notrunc,fdatasync', 'count=0', 'status=none'])
  if (run.status !== 0) throw new Error(`dropping the page cache of ${path} failed`)
}

interface Pass { variant: 'plain' | 'checksum', seconds: number, copiedBytes: number, comparedBytes: number,
  storageWriteBytes: number }

async function main(): Promise<void> {
  for (const path of paths) {
    writeFileSync(path, '')
    truncateSync(path, sizeBytes + 64 * MiB)
    await pvCreate(path)
  }
  await vgCreate({ name: 'bench', paths, ppSizeBytes: 4 * MiB })
  const result = await varyOnVg({ vgName: 'bench', devices: paths, flags: { misspvVon: true, missnameVon: true } })
  if (result.vg === undefined) throw result.error ?? new Error(result.rc)
  const vg = result.vg
  const engine = await MirrorEngine.start(vg)
  await vg.lvCreate({ name: 'mir', lpCount: vg.lpCountForBytes(sizeBytes), copies: 2, mwc: 'off' })
  const lv = engine.open('mir')
  const block = randomBytes(4 * MiB)
  for (let offset = 0; offset < sizeBytes; offset += block.length) {
    block.writeUInt32LE(offset / block.length, 0)  // no two regions alike
    await lv.write(block, offset)
  }
  await lv.close()
  const runs: Pass[] = []
  for (let round = 0; round < passes; round++) {
    for (const variant of ['plain', 'checksum'] as const) {
      for (const path of paths) dropCache(path)
      const checksum = variant === 'checksum' ? new ChecksumNarrower(engine.mirror) : undefined
      const written = writeBytes()
      const start = performance.now()
      const report = await engine.forcedResync('mir', checksum ? { narrowRanges: checksum.narrowRanges } : {})
      const seconds = (performance.now() - start) / 1000
      if (report.failed.length > 0) throw new Error(`resync failed: ${JSON.stringify(report.failed)}`)
      const pass = { variant, seconds, copiedBytes: report.copiedBytes,
        comparedBytes: checksum?.totals().comparedBytes ?? 0, storageWriteBytes: writeBytes() - written }
      runs.push(pass)
      if (!options.json) {
        process.stdout.write(`${variant.padEnd(8)} ${seconds.toFixed(2).padStart(6)} s  ` +
          `${(sizeBytes / MiB / seconds).toFixed(0).padStart(5)} MiB/s of LV  copied ${pass.copiedBytes / MiB} MiB  ` +
          `compared ${pass.comparedBytes / MiB} MiB  sent to storage ${(pass.storageWriteBytes / MiB).toFixed(1)} MiB\n`)
      }
    }
  }
  await engine.stop()
  await vg.varyOff()
  const best = (variant: Pass['variant']): Pass =>
    runs.filter((run) => run.variant === variant).sort((a, b) => a.seconds - b.seconds)[0]!
  const summary = { sizeBytes, nativeHashes: typeof nativeAddon().blockHashes === 'function',
    plain: best('plain'), checksum: best('checksum'), speedup: best('plain').seconds / best('checksum').seconds, runs }
  if (options.json) process.stdout.write(JSON.stringify(summary, null, 2) + '\n')
  else process.stdout.write(`best: plain ${summary.plain.seconds.toFixed(2)} s, checksum ` +
    `${summary.checksum.seconds.toFixed(2)} s (${summary.speedup.toFixed(2)}x)\n`)
}

try {
  await main()
} finally {
  rmSync(root, { recursive: true, force: true })
}
