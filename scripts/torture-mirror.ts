/**
 * Mirror crash torture (issue 12): kill -9 of the daemon during random writes into a 2-copy,
 * MWC-active LV, N times; after each remount (MWC recovery, automatic resync) every acknowledged
 * write reads back and `scrub` reports 0 mismatches. See docs/mirror.md, "Crash torture", and
 * test/helpers/mirror-torture.ts. Needs root and /dev/fuse.
 *
 *   node --import tsx scripts/torture-mirror.ts [--points 1000] [--seed N] [--dir DIR] [--lv-size 128M]
 *     [--pp-size 1M] [--scrub-every 1] [--full-read-every 1] [--kill-delay-max 400] [--depth 4]
 *     [--al-extents 32 (0: the CLI's default)] [--keep]
 *
 * Exit 0 when every point passed (the working directory is removed unless --keep), 1 at the first
 * failure (the PV files, daemon log and model.json stay in the directory it names), 3 on usage.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { MirrorTorture, TortureFailure } from '../test/helpers/mirror-torture.js'

function sizeBytes(text: string): number {
  const match = /^(\d+)([KMG]?)$/i.exec(text)
  if (!match) throw new Error(`bad size "${text}"`)
  return Number(match[1]) * ({ '': 1, K: 1024, M: 1 << 20, G: 1 << 30 }[match[2]!.toUpperCase()] ?? 1)
}

function integer(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`--${name} wants a non-negative integer, not "${text}"`)
  return value
}

async function main(): Promise<number> {
  let values
  try {
    values = parseArgs({ options: {
      points: { type: 'string' }, seed: { type: 'string' }, dir: { type: 'string' }, 'lv-size': { type: 'string' },
      'pp-size': { type: 'string' }, 'scrub-every': { type: 'string' }, 'full-read-every': { type: 'string' },
      'kill-delay-max': { type: 'string' }, depth: { type: 'string' }, 'al-extents': { type: 'string' },
      keep: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' } } }).values
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`)
    return 3
  }
  if (values.help === true) {
    process.stdout.write('usage: torture-mirror.ts [--points 1000] [--seed N] [--dir DIR] [--lv-size 128M] [--pp-size 1M]\n' +
      '  [--scrub-every 1] [--full-read-every 1] [--kill-delay-max MS] [--depth 4] [--al-extents 32] [--keep]\n')
    return 0
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('torture-mirror: needs root (/dev/fuse is root-only here)\n')
    return 3
  }
  let torture: MirrorTorture
  try {
    const dir = values.dir === undefined ? mkdtempSync(join(tmpdir(), 'lvmfs-torture-')) : resolve(values.dir)
    torture = new MirrorTorture({ dir, points: integer(values.points, 'points', 1000),
      ...(values.seed === undefined ? {} : { seed: integer(values.seed, 'seed', 0) }),
      lvSizeBytes: sizeBytes(values['lv-size'] ?? '128M'), ppSize: values['pp-size'] ?? '1M',
      scrubEvery: Math.max(1, integer(values['scrub-every'], 'scrub-every', 1)),
      fullReadEvery: Math.max(1, integer(values['full-read-every'], 'full-read-every', 1)),
      killDelayMaxMs: integer(values['kill-delay-max'], 'kill-delay-max', 400),
      depth: Math.max(1, integer(values.depth, 'depth', 4)),
      alExtents: integer(values['al-extents'], 'al-extents', 32) })
  } catch (error) {
    process.stderr.write(`torture-mirror: ${(error as Error).message}\n`)
    return 3
  }
  let stopping = false
  const onSignal = (): void => {
    if (stopping) return
    stopping = true
    process.stderr.write('torture-mirror: interrupted, cleaning up\n')
    void torture.close().then(() => process.exit(130))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    await torture.run()
    await torture.close()
    if (values.keep !== true) torture.removeFiles()
    return 0
  } catch (error) {
    await torture.close()
    if (error instanceof TortureFailure) {
      process.stderr.write(`\nFAILED at ${error.message}\n\nThe files are left for inspection in ${error.dir}: ` +
        `PV files pv0.img pv1.img (VG ${torture.vg}, LV mir), the daemon log ${torture.logFile}, model.json ` +
        `(the last point's writes). Mount them with LVMFS_RUN_DIR=${error.dir}/run lvmfs mount ${torture.vg} ` +
        `${error.dir}/mnt --devices ${torture.pvs.join(',')}; replay with --seed ${error.seed}.\n`)
    } else {
      process.stderr.write(`\ntorture-mirror: ${(error as Error).stack ?? String(error)}\n(files left in ` +
        `${torture.mountpoint.replace(/\/mnt$/, '')})\n`)
    }
    return 1
  }
}

process.exitCode = await main()
