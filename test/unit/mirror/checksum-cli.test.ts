/**
 * `lvmfs resync VG/LV --checksum` and `lvmfs syncvg VG --checksum` on PV files, offline (the VG
 * is varied on inside the command): the JSON report has comparedBytes and copiedBytes, the text
 * says what was compared, the copies are equal afterwards, and bad --checksum input is a usage
 * error (exit 3) naming the option.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { closeSync, openSync, writeSync } from 'node:fs'
import { PP, bytesAt, captureCli, lastJson, mirroredLvOnFiles } from '../../helpers/mirror-cli-fixture.js'

const BLOCK = 64 * 1024
const cli = (...args: string[]): ReturnType<typeof captureCli> => captureCli(args)

function patch(path: string, offset: number, bytes: Buffer): void {
  const fd = openSync(path, 'r+')
  writeSync(fd, bytes, 0, bytes.length, offset)
  closeSync(fd)
}

void t.test('lvmfs resync --checksum / syncvg --checksum', async (t) => {
  const { paths, vg, lvd, engine, data, at } = await mirroredLvOnFiles(t.testdir(), 4)
  await vg.markStale([lvd.lps[3]![1]!])
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
