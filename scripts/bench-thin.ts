/**
 * bench:thin — thin pools against thick LVs and the raw file, in one run (issue 13):
 *
 *   first pass of the origin after a snapshot (every 64 KiB block's first write copies it), fio
 *   libaio direct, each block of --size written once (random map, not time based):
 *     4 KiB random writes qd32   targets: >= 0.7 of the same thin LV without snapshot,
 *                                          >= 0.7 of a thick linear LV
 *     1 MiB sequential qd8       target: >= 0.8 of the same
 *   snapshot creation of a thin LV of 1 GiB and of 1 TiB virtual (--size mapped), in process on
 *   a pool file, commit (fsync) included     target: < 50 ms at any size
 *   metadata bytes per TiB mapped (fully mapped thin LV, no sharing)
 *
 * Every LV is written in full first (unmeasured), so the thick LV and the thin LVs overwrite
 * allocated blocks, and the raw file is a dd-filled file of the same size.
 *
 *   npm run bench:thin -- [--json] [--size-mb N] [--dir DIR]
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { cleanupMountpoint, mountsAt } from '../src/fuse/mounts.js'
import { ThinPool, type PoolDevice } from '../src/thin/index.js'
import { dropCaches, fillFile } from './bench/fio.js'
import { lvmfsRunner, parseRunArgs } from './bench/run-args.js'

const { json, sizeMb, sizeBytes, dir } = parseRunArgs('bench:thin')
const MIB = 1 << 20
const work = mkdtempSync(join(dir, 'lvmfs-bench-thin-'))
const env = { ...process.env, LVMFS_RUN_DIR: join(work, 'run'), LVMFS_LOG_DIR: join(work, 'log'),
  LVMFS_BACKUP_DIR: join(work, 'backup') }
const lvmfs = lvmfsRunner(env)
const vg = `thinb${process.pid}`
const mountpoint = join(work, 'mnt')
const results: Record<string, number> = {}

function log(line: string): void {
  if (!json) process.stdout.write(`${line}\n`)
}

interface Pass { readonly name: string, readonly rw: 'randwrite' | 'write', readonly bs: string, readonly iodepth: number,
  readonly unit: 'IOPS' | 'MB/s' }
const PASSES: readonly Pass[] = [
  { name: 'first-pass-4k-rand-qd32', rw: 'randwrite', bs: '4k', iodepth: 32, unit: 'IOPS' },
  { name: 'first-pass-1M-seq-qd8', rw: 'write', bs: '1M', iodepth: 8, unit: 'MB/s' },
]

/** One pass over the whole file, each block written once, ending with an fsync. */
function firstPass(file: string, pass: Pass): number {
  dropCaches()
  const result = spawnSync('fio', ['--name=pass', `--filename=${file}`, `--size=${sizeBytes}`, '--ioengine=libaio',
    '--direct=1', `--rw=${pass.rw}`, `--bs=${pass.bs}`, `--iodepth=${pass.iodepth}`, '--end_fsync=1',
    '--randrepeat=0', '--output-format=json'], { encoding: 'utf8', maxBuffer: 64 << 20 })
  if (result.status !== 0) throw new Error(`fio failed on ${file}: ${result.stderr}`)
  const job = (JSON.parse(result.stdout) as { jobs: Array<{ write: { iops: number, bw_bytes: number } }> }).jobs[0]!
  return pass.unit === 'IOPS' ? job.write.iops : job.write.bw_bytes / 1e6
}

class FilePoolDevice implements PoolDevice {
  private constructor(readonly sizeBytes: number, private readonly handle: Awaited<ReturnType<typeof open>>) {}
  static async open(path: string, sizeBytes: number): Promise<FilePoolDevice> {
    writeFileSync(path, '')
    truncateSync(path, sizeBytes)
    return new FilePoolDevice(sizeBytes, await open(path, 'r+'))
  }
  async read(target: Uint8Array, offsetBytes: number): Promise<void> {
    await this.handle.read(target, 0, target.length, offsetBytes)
  }
  async write(data: Uint8Array, offsetBytes: number): Promise<void> {
    await this.handle.write(data, 0, data.length, offsetBytes)
  }
  async flush(): Promise<void> {
    await this.handle.datasync()
  }
  close(): Promise<void> {
    return this.handle.close()
  }
}

/** Snapshot creation time of a thin LV with `mappedBlocks` mapped, and the metadata it takes. */
async function snapshotTimes(virtualBytes: number, mappedBlocks: number, label: string): Promise<void> {
  const chunk = 64 * 1024
  const metadataBytes = 64 * MIB
  const device = await FilePoolDevice.open(join(work, `pool-${label}.img`), metadataBytes + (mappedBlocks + 16) * chunk)
  const pool = await ThinPool.format(device, { chunkBytes: chunk, metadataBytes })
  const thin = await pool.createThin(virtualBytes)
  const block = Buffer.alloc(chunk, 0x42)
  // Spread over the whole virtual size, so the tree is as wide as the LV is large.
  const stride = Math.max(1, Math.floor(virtualBytes / chunk / mappedBlocks))
  for (let i = 0; i < mappedBlocks; i++) await pool.write(thin, block, i * stride * chunk)
  await pool.commit()
  const metadataUsed = pool.status().metadataUsedBlocks * 4096
  const times: number[] = []
  for (let i = 0; i < 5; i++) {
    const started = process.hrtime.bigint()
    await pool.snapshot(thin)
    times.push(Number(process.hrtime.bigint() - started) / 1e6)
  }
  times.sort((a, b) => a - b)
  results[`snapshot-ms-${label}`] = times[2]!
  results[`snapshot-ms-max-${label}`] = times.at(-1)!
  log(`snapshot of a ${label} thin LV (${mappedBlocks} blocks mapped): median ${times[2]!.toFixed(1)} ms, ` +
    `max ${times.at(-1)!.toFixed(1)} ms (target < 50 ms)`)
  if (label === '1G') {
    const perTib = (metadataUsed / (mappedBlocks * chunk)) * 2 ** 40
    results['metadata-bytes-per-TiB-mapped'] = perTib
    log(`metadata: ${(metadataUsed / 1024).toFixed(0)} KiB for ${mappedBlocks * chunk / MIB} MiB mapped = ` +
      `${(perTib / MIB).toFixed(0)} MiB per TiB mapped`)
  }
  await device.close()
}

try {
  mkdirSync(mountpoint)
  const pvs = [0, 1].map((i) => join(work, `pv${i}.img`))
  for (const pv of pvs) execFileSync('dd', ['if=/dev/zero', `of=${pv}`, 'bs=1M', `count=${3 * sizeMb + 128}`, 'conv=fsync', 'status=none'])
  const devices = pvs.join(',')
  lvmfs(['pvcreate', ...pvs])
  lvmfs(['vgcreate', vg, ...pvs, '--devices', devices])
  lvmfs(['lvcreate', vg, 'thick', '--size', `${sizeMb}M`, '--devices', devices])
  lvmfs(['lvcreate', vg, 'pool', '--thinpool', '--size', `${4 * sizeMb + 64}M`, '--devices', devices])
  for (const name of ['plain', 'origin']) lvmfs(['lvcreate', vg, name, '--thin', 'pool', '--virtual-size', `${sizeMb}M`, '--devices', devices])
  lvmfs(['mount', vg, mountpoint, '--devices', devices])
  const raw = join(work, 'raw.img')
  execFileSync('dd', ['if=/dev/zero', `of=${raw}`, 'bs=1M', `count=${sizeMb}`, 'conv=fsync', 'status=none'])
  for (const name of ['thick', 'plain', 'origin']) fillFile(join(mountpoint, name), sizeBytes)
  for (const [index, pass] of PASSES.entries()) {
    // A new snapshot before each pass: every block of the origin is shared again.
    lvmfs(['lvcreate', vg, `snap${index}`, '--snapshot', 'origin'])
    const figures = {
      raw: firstPass(raw, pass),
      thick: firstPass(join(mountpoint, 'thick'), pass),
      plain: firstPass(join(mountpoint, 'plain'), pass),
      origin: firstPass(join(mountpoint, 'origin'), pass),
    }
    for (const [key, value] of Object.entries(figures)) results[`${pass.name}-${key}`] = value
    results[`${pass.name}-snapshot-per-plain`] = figures.origin / figures.plain
    results[`${pass.name}-snapshot-per-thick`] = figures.origin / figures.thick
    log(`${pass.name} (${pass.unit}): raw ${figures.raw.toFixed(0)}, thick LV ${figures.thick.toFixed(0)}, ` +
      `thin ${figures.plain.toFixed(0)}, thin origin after a snapshot ${figures.origin.toFixed(0)}: ` +
      `${(figures.origin / figures.plain).toFixed(2)} of thin, ${(figures.origin / figures.thick).toFixed(2)} of thick, ` +
      `thick ${(figures.thick / figures.raw).toFixed(2)} of raw`)
  }
  lvmfs(['umount', mountpoint])
  await snapshotTimes(2 ** 30, 16384, '1G')
  await snapshotTimes(2 ** 40, 4096, '1T')
  if (json) process.stdout.write(`${JSON.stringify(results)}\n`)
} finally {
  if (mountsAt(mountpoint).length > 0) {
    spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'umount', mountpoint, '--force'], { env })
    cleanupMountpoint(mountpoint, { force: true })
  }
  rmSync(work, { recursive: true, force: true })
}
