/**
 * Mirror benchmark, in-process (no FUSE), every figure from the same run on the same disk:
 *
 *   raw file write/read at 1 MiB and 4 KiB (FileHandle, final fdatasync)   baseline
 *   linear LV (1 copy) write/read at 1 MiB and 4 KiB                        target >= 90% of raw
 *   2-copy LV, MWC active, write at 1 MiB (both PVs on this one disk)       target >= 90% of raw/2
 *   2-copy LV, MWC off, write at 1 MiB                                      MWC cost < 10%
 *   resync of a 1 GiB LV vs `dd bs=1M conv=fdatasync` of 1 GiB              target >= 95% of dd
 *     (the native copier with its defaults, and for contrast: one and four regions in flight,
 *     copy_file_range, the TypeScript read/write path; dd and the variants interleave, best of 3)
 *
 * Each write/read figure is the best of three passes (1 MiB) or two (4 KiB), after an
 * unmeasured warm-up write; the first pass over a sparse target also pays block allocation.
 * Passes of the compared targets interleave (raw, linear, 2-copy active, 2-copy off, raw, ...)
 * so load changes on a shared machine hit them alike.
 * Every write test ends with a flush (fdatasync) inside the timed section, so figures are
 * durable throughput. Reads follow writes and come mostly from the page cache (they measure
 * the engine's CPU overhead, not the disk). Files live in --dir (default: the OS temp dir).
 *
 *   npm run bench:mirror [-- --json] [--size 256M] [--resync 1G] [--dir PATH] [--only resync]
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { parseSizeBytes } from '../src/cli/options.js'
import { pvCreate, vgCreate, varyOnVg, type VolumeGroup } from '../src/lvm/index.js'
import { MirrorEngine, type ResyncOptions } from '../src/mirror/index.js'

const MiB = 1024 * 1024
const { values: options } = parseArgs({ options: {
  json: { type: 'boolean', default: false },
  size: { type: 'string' },
  resync: { type: 'string' },
  dir: { type: 'string' },
  only: { type: 'string' },
} })
if (options.only !== undefined && options.only !== 'resync') throw new Error('--only takes "resync"')
const json = options.json
const sizeBytes = parseSizeBytes(options.size ?? '256M', '--size')
const resyncBytes = parseSizeBytes(options.resync ?? '1G', '--resync')
const smallBytes = Math.min(sizeBytes, 64 * MiB)
const resyncLabel = resyncBytes % 2 ** 30 === 0 ? `${resyncBytes / 2 ** 30} GiB` : `${resyncBytes / MiB} MiB`
const RESYNC = `resync ${resyncLabel} LV`
const DD = `dd copy ${resyncLabel} (bs=1M, fdatasync)`
const root = mkdtempSync(join(options.dir ?? tmpdir(), 'lvmfs-bench-mirror-'))
process.env['LVMFS_LOCK_DIR'] ??= join(root, 'locks')

interface Figure { name: string, bytes: number, seconds: number, mibPerSecond: number }
const figures: Figure[] = []

interface Target {
  write(buffer: Uint8Array, offsetBytes: number): Promise<unknown>
  read(buffer: Uint8Array, offsetBytes: number): Promise<unknown>
  flush(): Promise<void>
}

interface Pass { write: number, read: number }

/** One pass: write everything (then flush), read everything; MiB/s of each. */
async function pass(target: Target, totalBytes: number, blockBytes: number): Promise<Pass> {
  const block = randomBytes(blockBytes)
  let start = performance.now()
  for (let offset = 0; offset < totalBytes; offset += blockBytes) await target.write(block, offset)
  await target.flush()
  const write = totalBytes / MiB / ((performance.now() - start) / 1000)
  const buffer = Buffer.alloc(blockBytes)
  start = performance.now()
  for (let offset = 0; offset < totalBytes; offset += blockBytes) await target.read(buffer, offset)
  return { write, read: totalBytes / MiB / ((performance.now() - start) / 1000) }
}

function report(name: string, passes: readonly Pass[], totalBytes: number, blockBytes: number): void {
  const label = blockBytes >= MiB ? '1M' : '4K'
  for (const kind of ['write', 'read'] as const) {
    const mibPerSecond = Math.max(...passes.map((one) => one[kind]))
    const figure = { name: `${name} ${kind} ${label}`, bytes: totalBytes, seconds: totalBytes / MiB / mibPerSecond,
      mibPerSecond }
    figures.push(figure)
    if (!json) process.stdout.write(`${figure.name.padEnd(34)} ${mibPerSecond.toFixed(1).padStart(9)} MiB/s\n`)
  }
}

/** Best of `runs` passes per target; the targets' passes interleave (A B A B ...) so a change
 * in machine load during the run hits every target alike. */
async function compare(targets: ReadonlyArray<{ name: string, target: Target }>, totalBytes: number,
  blockBytes: number, runs = blockBytes >= MiB ? 3 : 2): Promise<void> {
  const passes = targets.map((): Pass[] => [])
  for (let run = 0; run < runs; run++) {
    for (const [index, { target }] of targets.entries()) passes[index]!.push(await pass(target, totalBytes, blockBytes))
  }
  targets.forEach(({ name }, index) => report(name, passes[index]!, totalBytes, blockBytes))
}

async function rawFile(path: string, bytes: number): Promise<Target & { close(): Promise<void> }> {
  writeFileSync(path, '')
  truncateSync(path, bytes)
  const handle = await open(path, 'r+')
  return {
    write: (buffer, offsetBytes) => handle.write(buffer, 0, buffer.length, offsetBytes),
    read: (buffer, offsetBytes) => handle.read(buffer, 0, buffer.length, offsetBytes),
    flush: () => handle.datasync(),
    close: () => handle.close(),
  }
}

async function makeVg(): Promise<VolumeGroup> {
  const paths = [join(root, 'pv0.img'), join(root, 'pv1.img')]
  const pvBytes = 3 * sizeBytes + resyncBytes + 64 * MiB
  for (const path of paths) {
    writeFileSync(path, '')
    truncateSync(path, pvBytes)
    await pvCreate(path)
  }
  await vgCreate({ name: 'bench', paths, ppSizeBytes: 4 * MiB })
  const result = await varyOnVg({ vgName: 'bench', devices: paths, flags: { misspvVon: true, missnameVon: true } })
  if (result.vg === undefined) throw result.error ?? new Error(result.rc)
  return result.vg
}

function ddSeconds(from: string, to: string, bytes: number): number {
  const start = performance.now()
  const run = spawnSync('dd', [`if=${from}`, `of=${to}`, 'bs=1M', `count=${bytes / MiB}`, 'conv=fdatasync,notrunc'],
    { encoding: 'utf8' })
  if (run.status !== 0) throw new Error(`dd failed: ${run.stderr}`)
  return (performance.now() - start) / 1000
}

async function main(): Promise<void> {
  // Warm-up: the first large write of a process is slow (page-cache reclaim); not measured.
  const warm = await rawFile(join(root, 'warm.img'), sizeBytes)
  await pass(warm, sizeBytes, MiB)
  await warm.close()
  rmSync(join(root, 'warm.img'))
  const vg = await makeVg()
  const engine = await MirrorEngine.start(vg)
  const lpCount = vg.lpCountForBytes(sizeBytes)
  await vg.lvCreate({ name: 'linear', lpCount, copies: 1, pvIndexes: [0] })
  await vg.lvCreate({ name: 'mwc', lpCount, copies: 2, mwc: 'active' })
  await vg.lvCreate({ name: 'nomwc', lpCount, copies: 2, mwc: 'off' })
  const linear = engine.open('linear')
  const mwc = engine.open('mwc')
  const noMwc = engine.open('nomwc')
  for (const [blockBytes, total] of options.only === 'resync' ? [] : [[MiB, sizeBytes], [4096, smallBytes]] as const) {
    const raw = await rawFile(join(root, `raw-${blockBytes}.img`), total)
    const targets = [{ name: 'raw file', target: raw }, { name: 'linear LV', target: linear },
      { name: '2-copy LV MWC active', target: mwc }]
    if (blockBytes === MiB) targets.push({ name: '2-copy LV MWC off', target: noMwc })
    await compare(targets, total, blockBytes)
    await raw.close()
    rmSync(join(root, `raw-${blockBytes}.img`))
  }
  for (const lv of [linear, mwc, noMwc]) await lv.close()

  // Resync of a 1 GiB LV: fill copy 0, mark every copy 1 stale, time resynclv; against dd of the
  // same bytes between two files, the runs interleaved (dd, each resync variant, dd, ...).
  const resyncLv = await vg.lvCreate({ name: 'resync', lpCount: vg.lpCountForBytes(resyncBytes), copies: 2, mwc: 'off' })
  const filler = engine.open('resync')
  const block = randomBytes(4 * MiB)
  for (let offset = 0; offset < resyncBytes; offset += block.length) await filler.write(block, offset)
  await filler.close()
  const ddFrom = join(root, 'dd-from.img')
  const ddTo = join(root, 'dd-to.img')
  // Both files are written and synced first, as the resync's source and target PPs were (the
  // filler wrote both copies): dd then overwrites allocated blocks, exactly like the resync.
  for (const path of [ddFrom, ddTo]) {
    const file = await rawFile(path, resyncBytes)
    for (let offset = 0; offset < resyncBytes; offset += block.length) await file.write(block, offset)
    await file.flush()
    await file.close()
  }
  const variants: ReadonlyArray<{ name: string, options: ResyncOptions }> = [
    { name: RESYNC, options: {} },
    { name: 'resync, 1 region in flight', options: { fillTargetBytes: engine.mirror.ltgBytes } },
    { name: 'resync, 4 regions in flight', options: { fillTargetBytes: 4 * engine.mirror.ltgBytes } },
    { name: 'resync, copy_file_range', options: { copyMethod: 'copy_file_range' } },
    { name: 'resync, TypeScript path', options: { copyMethod: 'typescript' } },
  ]
  const best = new Map<string, number>()
  const keep = (name: string, bytes: number, seconds: number): void => {
    best.set(name, Math.max(best.get(name) ?? 0, bytes / MiB / seconds))
  }
  for (let run = 0; run < 3; run++) {
    keep(DD, resyncBytes, ddSeconds(ddFrom, ddTo, resyncBytes))
    for (const { name, options } of variants) {
      await vg.markStale(resyncLv.lps.map((copies) => copies[1]!))
      const start = performance.now()
      const resyncReport = await engine.resyncer(options).resynclv('resync', false)
      keep(name, resyncReport.copiedBytes, (performance.now() - start) / 1000)
    }
  }
  await engine.stop()
  await vg.varyOff()
  for (const [name, mibPerSecond] of best) {
    figures.push({ name, bytes: resyncBytes, seconds: resyncBytes / MiB / mibPerSecond, mibPerSecond })
    if (!json) process.stdout.write(`${name.padEnd(34)} ${mibPerSecond.toFixed(1).padStart(9)} MiB/s\n`)
  }

  const by = (name: string): number => figures.find((figure) => figure.name === name)?.mibPerSecond ?? Number.NaN
  const ratios = {
    linearVsRawWrite1M: by('linear LV write 1M') / by('raw file write 1M'),
    linearVsRawRead1M: by('linear LV read 1M') / by('raw file read 1M'),
    linearVsRawWrite4K: by('linear LV write 4K') / by('raw file write 4K'),
    twoCopyVsHalfRawWrite1M: by('2-copy LV MWC active write 1M') / (by('raw file write 1M') / 2),
    mwcActiveCostWrite1M: 1 - by('2-copy LV MWC active write 1M') / by('2-copy LV MWC off write 1M'),
    resyncVsDd: by(RESYNC) / by(DD),
    resyncOneInFlightVsDd: by('resync, 1 region in flight') / by(DD),
    resyncFourInFlightVsDd: by('resync, 4 regions in flight') / by(DD),
    resyncCopyFileRangeVsDd: by('resync, copy_file_range') / by(DD),
    resyncTypeScriptVsDd: by('resync, TypeScript path') / by(DD),
  }
  if (json) process.stdout.write(JSON.stringify({ figures, ratios }, null, 2) + '\n')
  else {
    process.stdout.write('\n')
    for (const [name, value] of Object.entries(ratios)) {
      if (Number.isNaN(value)) continue
      process.stdout.write(`${name.padEnd(34)} ${(value * 100).toFixed(1).padStart(8)} %\n`)
    }
  }
}

try {
  await main()
} finally {
  rmSync(root, { recursive: true, force: true })
}
