/**
 * `lvmfs resync VG/LV --checksum` and `lvmfs syncvg VG --checksum` on PV files, offline (the VG
 * is varied on inside the command): the JSON report has comparedBytes and copiedBytes, the text
 * says what was compared, the copies are equal afterwards, and bad --checksum input is a usage
 * error (exit 3) naming the option.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { closeSync, openSync, readSync, truncateSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { pvCreate, vgCreate, varyOnVg, type LvDescriptor } from '../../../src/lvm/index.js'
import { MirrorEngine } from '../../../src/mirror/index.js'
import { runCli } from '../../../src/cli/program.js'
import { runInContext } from '../../../src/cli/io-context.js'

const PP = 1024 * 1024
const BLOCK = 64 * 1024

async function cli(...args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  const code = await runInContext({
    stdout: { write: (chunk: string) => { stdout += chunk; return true } },
    stderr: { write: (chunk: string) => { stderr += chunk; return true } },
  }, () => runCli(args))
  return { code, stdout, stderr }
}

function lastJson(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n')
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>
}

function bytesAt(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r')
  const out = Buffer.alloc(length)
  readSync(fd, out, 0, length, offset)
  closeSync(fd)
  return out
}

function patch(path: string, offset: number, bytes: Buffer): void {
  const fd = openSync(path, 'r+')
  writeSync(fd, bytes, 0, bytes.length, offset)
  closeSync(fd)
}

void t.test('lvmfs resync --checksum / syncvg --checksum', async (t) => {
  const dir = t.testdir()
  process.env['LVMFS_LOCK_DIR'] = join(dir, 'locks')
  const paths = [join(dir, 'a.img'), join(dir, 'b.img')]
  for (const path of paths) {
    writeFileSync(path, '')
    truncateSync(path, 16 * 1024 * 1024)
    await pvCreate(path)
  }
  await vgCreate({ name: 'vg0', paths, ppSizeBytes: PP })
  const vg = (await varyOnVg({ vgName: 'vg0', devices: paths, flags: { misspvVon: true, missnameVon: true } })).vg!
  const lvd: LvDescriptor = await vg.lvCreate({ name: 'lv0', lpCount: 4, copies: 2 })
  const engine = await MirrorEngine.start(vg)
  const lv = engine.open('lv0')
  const data = randomBytes(4 * PP)
  await lv.write(data, 0)
  await lv.close()
  await vg.markStale([lvd.lps[3]![1]!])
  const at = (lp: number, copy: number): { path: string, offset: number } => {
    const ref = lvd.lps[lp]![copy]!
    return { path: paths[ref.pvIndex]!, offset: vg.ppOffsetBytes(ref.pvIndex, ref.pp) }
  }
  const places = [0, 1, 2, 3].map((lp) => [at(lp, 0), at(lp, 1)] as const)
  await engine.stop()
  await vg.varyOff()
  const devices = ['--devices', paths.join(',')]

  // Usage errors first (nothing is touched).
  const bad: Array<[string[], RegExp]> = [
    [['resync', 'vg0/lv0', '--checksum-block', '64K'], /--checksum-block needs --checksum/],
    [['resync', 'vg0/lv0', '--checksum', '--checksum-block', '3K'], /invalid --checksum-block "3K"[\s\S]*multiple of 4K/],
    [['resync', 'vg0/lv0', '--checksum', '--checksum-block', '128M'], /at most 64M/],
    [['resync', 'vg0/lv0', '--checksum', '--checksum-block', 'lots'], /invalid size for --checksum-block: "lots"/],
    [['resync', 'vg0', '--checksum'], /expected VG\/LV, got "vg0"/],
    [['syncvg', 'vg0', '--checksum-block', '4K'], /--checksum-block needs --checksum/],
    [['scrub', 'vg0/lv0', '--checksum'], /unknown option '--checksum'/],
  ]
  for (const [args, message] of bad) {
    const run = await cli(...args, ...devices)
    t.equal(run.code, 3, `${args.join(' ')}: exit 3`)
    t.match(run.stderr, message, `${args.join(' ')}: ${run.stderr.trim().split('\n')[0]}`)
  }

  // Copy 1 of LP 1 differs in one block (not stale); copy 1 of LP 3 is stale and differs in two.
  patch(places[1]![1].path, places[1]![1].offset + 3 * BLOCK + 5, randomBytes(7))
  patch(places[3]![1].path, places[3]![1].offset, randomBytes(2 * BLOCK))
  const soft = await cli('syncvg', 'vg0', '--checksum', '--json', ...devices)
  t.equal(soft.code, 0, soft.stderr)
  t.match(lastJson(soft.stdout), { comparedBytes: PP, copiedBytes: 2 * BLOCK },
    'without --force only the stale copy is compared, and its 2 differing blocks written')
  t.ok(bytesAt(places[3]![1].path, places[3]![1].offset, PP).equals(data.subarray(3 * PP)), 'LP 3 repaired')
  t.notOk(bytesAt(places[1]![1].path, places[1]![1].offset, PP).equals(data.subarray(PP, 2 * PP)),
    'LP 1 (not stale) was not compared')

  const forced = await cli('resync', 'vg0/lv0', '--force', '--checksum', '--json', ...devices)
  t.equal(forced.code, 0, forced.stderr)
  t.match(lastJson(forced.stdout), { comparedBytes: 4 * PP, copiedBytes: BLOCK, failed: [] },
    '--force --checksum compares the whole LV and writes the one differing block')
  for (const lp of [0, 1, 2, 3]) {
    t.ok(bytesAt(places[lp]![1].path, places[lp]![1].offset, PP).equals(data.subarray(lp * PP, (lp + 1) * PP)),
      `LP ${lp}: copy 1 equals the data`)
  }

  const text = await cli('resync', 'vg0/lv0', '--force', '--checksum', '--checksum-block', '4K', ...devices)
  t.equal(text.code, 0, text.stderr)
  t.match(text.stdout, /resynced 4 LP\(s\), copied 0B \(checksum: compared 4M\)/,
    `the text report names what was compared: ${text.stdout.trim().split('\n').pop()}`)
  const plain = await cli('resync', 'vg0/lv0', '--force', '--json', ...devices)
  t.notMatch(lastJson(plain.stdout), { comparedBytes: Number }, 'without --checksum no comparedBytes')
  t.equal(lastJson(plain.stdout)['copiedBytes'], 4 * PP)
})
