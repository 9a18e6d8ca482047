/**
 * The resync rate options of `lvmfs resync|syncvg` (--rate as the maximum, --max-rate,
 * --min-rate; usage errors for conflicts and bad bounds), the rate and ETA in --json progress
 * events, and the formatting the progress bar and `lvmfs status` use.
 */
import t from 'tap'
import { humanDuration, humanRate, rateOption } from '../../../src/cli/mirror-cli.js'
import { PP, captureCli, mirroredLvOnFiles } from '../../helpers/mirror-cli-fixture.js'

void t.test('rateOption: --rate is the maximum, --max-rate too, --min-rate the floor, --fill-target', async (t) => {
  t.same(rateOption({}), {})
  t.same(rateOption({ rate: '50M' }), { maxRateBytesPerSecond: 50 * 1024 * 1024 })
  t.same(rateOption({ maxRate: '1G', minRate: '8M' }),
    { maxRateBytesPerSecond: 1024 ** 3, minRateBytesPerSecond: 8 * 1024 * 1024 })
  t.throws(() => rateOption({ rate: '1M', maxRate: '2M' }), { code: 'ENGINE_USAGE' }, 'both names of the maximum')
  t.throws(() => rateOption({ maxRate: '1M', minRate: '2M' }), { code: 'ENGINE_USAGE' }, 'min above max')
  t.throws(() => rateOption({ minRate: '0' }), { code: 'ENGINE_USAGE' }, 'a zero floor')
  t.throws(() => rateOption({ maxRate: 'fast' }), { code: 'ENGINE_USAGE' })
  t.same(rateOption({ fillTarget: '16M' }), { fillTargetBytes: 16 * 1024 * 1024 })
  t.throws(() => rateOption({ fillTarget: '0' }), { code: 'ENGINE_USAGE' })
})

void t.test('formatting: rates in MiB/s, ETA as [h:]mm:ss', async (t) => {
  t.equal(humanRate(undefined), '-/s')
  t.equal(humanRate(16 * 1024 * 1024), '16.0M/s')
  t.equal(humanDuration(undefined), '-')
  t.equal(humanDuration(59.6), '01:00')
  t.equal(humanDuration(3 * 3600 + 5 * 60 + 7), '3:05:07')
})

void t.test('lvmfs resync --json: progress events carry the rate and the ETA; conflicts are usage errors', async (t) => {
  const { paths, vg, lvd, engine } = await mirroredLvOnFiles(t.testdir(), 6)
  await vg.markStale(lvd.lps.map((copies) => copies[1]!))
  await engine.stop()
  await vg.varyOff()
  const run = (...args: string[]): ReturnType<typeof captureCli> => captureCli(args)
  const devices = ['--devices', paths.join(',')]
  t.equal((await run('resync', 'vg0/lv0', '--rate', '1M', '--max-rate', '2M', ...devices)).code, 3)
  t.equal((await run('syncvg', 'vg0', '--min-rate', '9M', '--max-rate', '2M', ...devices)).code, 3)
  const ok = await run('resync', 'vg0/lv0', '--json', '--min-rate', '4M', '--max-rate', '1G', ...devices)
  t.equal(ok.code, 0, ok.stderr)
  const events = ok.stdout.trim().split('\n').filter((line) => line.startsWith('{"event"'))
    .map((line) => JSON.parse(line) as { doneBytes: number, totalBytes: number, rateBytesPerSecond?: number,
      etaSeconds?: number })
  t.equal(events.length, 6, 'one event per LP (one region each)')
  const last = events.at(-1)!
  t.equal(last.doneBytes, 6 * PP)
  t.ok(last.rateBytesPerSecond !== undefined && last.rateBytesPerSecond > 0, 'the rate is measured')
  t.equal(last.etaSeconds, 0, 'nothing left: ETA 0')
  t.ok(events.slice(1, -1).every((event) => event.etaSeconds !== undefined && event.etaSeconds >= 0),
    'an ETA on every event once the rate is known')
})
