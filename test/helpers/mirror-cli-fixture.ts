/**
 * What the mirror CLI tests share: a 2-copy LV on two PV files, written with random bytes through
 * the engine, and the CLI run in process with its output captured (io-context streams).
 */
import { randomBytes } from 'node:crypto'
import { closeSync, openSync, readSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pvCreate, vgCreate, varyOnVg, type LvDescriptor, type VolumeGroup } from '../../src/lvm/index.js'
import { MirrorEngine } from '../../src/mirror/index.js'
import { runCli } from '../../src/cli/program.js'
import { runInContext } from '../../src/cli/io-context.js'

export const PP = 1024 * 1024

export interface CliRun {
  code: number
  stdout: string
  stderr: string
}

/** Runs `lvmfs ...args` in this process; its stdout and stderr are captured. */
export async function captureCli(args: readonly string[]): Promise<CliRun> {
  let stdout = ''
  let stderr = ''
  const code = await runInContext({
    stdout: { write: (chunk: string) => { stdout += chunk; return true } },
    stderr: { write: (chunk: string) => { stderr += chunk; return true } },
  }, () => runCli([...args]))
  return { code, stdout, stderr }
}

/** The last line of `--json` output (progress events come first, one JSON object a line). */
export function lastJson<T = Record<string, unknown>>(stdout: string): T {
  const lines = stdout.trim().split('\n')
  return JSON.parse(lines[lines.length - 1]!) as T
}

export function bytesAt(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r')
  const out = Buffer.alloc(length)
  readSync(fd, out, 0, length, offset)
  closeSync(fd)
  return out
}

export interface MirroredFiles {
  readonly paths: string[]
  readonly vg: VolumeGroup
  readonly lvd: LvDescriptor
  readonly engine: MirrorEngine
  /** What was written to LV lv0 from offset 0. */
  readonly data: Buffer
  /** Where copy `copy` of LP `lp` lives: PV file and byte offset. */
  at(lp: number, copy: number): { path: string, offset: number }
}

/** VG vg0 on two 16 MiB PV files in `dir` (1 MiB PPs), LV lv0 of `lpCount` LPs with 2 copies,
 * written whole and closed; the VG stays varied on (the caller stops the engine and varies it off). */
export async function mirroredLvOnFiles(dir: string, lpCount: number): Promise<MirroredFiles> {
  process.env['LVMFS_LOCK_DIR'] = join(dir, 'locks')
  const paths = [join(dir, 'a.img'), join(dir, 'b.img')]
  for (const path of paths) {
    writeFileSync(path, '')
    truncateSync(path, 16 * 1024 * 1024)
    await pvCreate(path)
  }
  await vgCreate({ name: 'vg0', paths, ppSizeBytes: PP })
  const vg = (await varyOnVg({ vgName: 'vg0', devices: paths, flags: { misspvVon: true, missnameVon: true } })).vg!
  const lvd = await vg.lvCreate({ name: 'lv0', lpCount, copies: 2 })
  const engine = await MirrorEngine.start(vg)
  const lv = engine.open('lv0')
  const data = randomBytes(lpCount * PP)
  await lv.write(data, 0)
  await lv.close()
  const at = (lp: number, copy: number): { path: string, offset: number } => {
    const ref = lvd.lps[lp]![copy]!
    return { path: paths[ref.pvIndex]!, offset: vg.ppOffsetBytes(ref.pvIndex, ref.pp) }
  }
  return { paths, vg, lvd, engine, data, at }
}
