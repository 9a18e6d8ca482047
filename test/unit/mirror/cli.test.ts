/**
 * The mirror CLI verbs on PV files (`lvmfs resync|syncvg|scrub`): exit codes (0 ok, 3 usage,
 * 5 failure), JSON reports, and the copies on disk afterwards. Commands run in-process through
 * runCli with captured output (the io-context streams); one runs as a real child process.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, openSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PP, bytesAt, captureCli, lastJson, mirroredLvOnFiles, type CliRun } from '../../helpers/mirror-cli-fixture.js'

const MAIN = fileURLToPath(new URL('../../../src/cli/main.ts', import.meta.url))

function spawnCli(env: NodeJS.ProcessEnv, ...args: string[]): { code: number, stdout: string, stderr: string } {
  const run = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { env, encoding: 'utf8' })
  return { code: run.status ?? -1, stdout: run.stdout, stderr: run.stderr }
}

type Report = Record<string, unknown> & { copiedBytes: number, mismatches: unknown[] }
const cli = (_env: NodeJS.ProcessEnv, ...args: string[]): Promise<CliRun> => captureCli(args)
const report = (stdout: string): Report => lastJson<Report>(stdout)
const copyBytes = bytesAt

void t.test('lvmfs resync / syncvg / scrub', async (t) => {
  const dir = t.testdir()
  const { paths, vg, lvd, engine, data, at } = await mirroredLvOnFiles(dir, 4)
  const env = { ...process.env, LVMFS_LOCK_DIR: join(dir, 'locks') }
  await vg.markStale(lvd.lps.slice(1, 3).map((copies) => copies[1]!))
  const places = [0, 1, 2, 3].map((lp) => [at(lp, 0), at(lp, 1)])
  await engine.stop()
  await vg.varyOff()
  for (const lp of [1, 2]) {
    const fd = openSync(places[lp]![1]!.path, 'r+')
    writeSync(fd, randomBytes(PP), 0, PP, places[lp]![1]!.offset)
    closeSync(fd)
  }
  const devices = ['--devices', paths.join(',')]

  t.equal(spawnCli(env, 'resync', 'vg0').code, 3, 'VG without /LV is a usage error (real binary)')
  t.equal((await cli(env, 'resync', 'vg0/lv0', '--lp', 'x', ...devices)).code, 3, 'a bad --lp is a usage error')
  const missing = await cli(env, 'resync', 'vg0/nope', ...devices)
  t.equal(missing.code, 5, 'an unknown LV fails with exit 5')
  t.match(missing.stderr, /ENGINE_NOT_FOUND/)

  const one = await cli(env, 'resync', 'vg0/lv0', '--lp', '1', '--json', ...devices)
  t.equal(one.code, 0, one.stderr)
  t.match(report(one.stdout), { copiedBytes: PP, lps: [{ lp: 1, source: 0, targets: [1] }] })
  t.match(one.stdout, /"event":"progress","doneBytes":1048576,"totalBytes":1048576/, 'progress events precede the report')
  const all = await cli(env, 'syncvg', 'vg0', '--json', ...devices)
  t.equal(all.code, 0, all.stderr)
  t.equal(report(all.stdout).copiedBytes, PP, 'syncvg copied only the LP still stale')
  for (const lp of [0, 1, 2, 3]) {
    const [primary, secondary] = places[lp]!
    t.ok(copyBytes(secondary!.path, secondary!.offset, PP).equals(data.subarray(lp * PP, (lp + 1) * PP)),
      `LP ${lp}: copy 1 equals the data`)
    t.ok(copyBytes(primary!.path, primary!.offset, PP).equals(data.subarray(lp * PP, (lp + 1) * PP)))
  }

  const fd = openSync(places[3]![1]!.path, 'r+')
  writeSync(fd, randomBytes(1024), 0, 1024, places[3]![1]!.offset + 5000)
  closeSync(fd)
  const check = await cli(env, 'scrub', 'vg0/lv0', '--json', ...devices)
  t.equal(check.code, 0, check.stderr)
  t.equal(report(check.stdout).mismatches.length, 1, 'scrub reports the corrupted region')
  const repair = await cli(env, 'scrub', 'vg0/lv0', '--repair', ...devices)
  t.equal(repair.code, 0, repair.stderr)
  t.match(repair.stdout, /repaired 1 from copy 0/)
  t.equal(report((await cli(env, 'scrub', 'vg0/lv0', '--json', ...devices)).stdout).mismatches.length, 0)
  const forced = await cli(env, 'resync', 'vg0/lv0', '--force', '--json', ...devices)
  t.equal(forced.code, 0, forced.stderr)
  t.equal(report(forced.stdout).copiedBytes, 4 * PP, '--force copies every LP to the other copy')
})
