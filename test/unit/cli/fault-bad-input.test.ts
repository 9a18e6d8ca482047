/**
 * lvmfs fault: bad options are refused with ENGINE_USAGE naming the option, before any daemon is
 * asked (LVMFS_RUN_DIR is an empty directory: a well-formed request gets ENGINE_NOT_MOUNTED).
 * The checks that need the mounted VG (range inside the PV, LP with a copy on it) are in
 * test/e2e/copy-faults.test.ts.
 */
import t from 'tap'
import { join } from 'node:path'
import { runCli } from '../../../src/cli/program.js'
import { parseIndexList, parseOffsetBytes } from '../../../src/cli/options.js'

async function cli(argv: string[]): Promise<{ exit: number; stderr: string }> {
  const err: string[] = []
  const saved = { out: process.stdout.write, err: process.stderr.write }
  process.stdout.write = (() => true) as typeof process.stdout.write
  process.stderr.write = ((chunk: string | Uint8Array) => {
    err.push(String(chunk))
    return true
  }) as typeof process.stderr.write
  try {
    return { exit: await runCli(argv), stderr: err.join('') }
  } finally {
    process.stdout.write = saved.out
    process.stderr.write = saved.err
  }
}

const savedRunDir = process.env['LVMFS_RUN_DIR']
process.env['LVMFS_RUN_DIR'] = join(t.testdir(), 'run')
t.teardown(() => {
  if (savedRunDir === undefined) delete process.env['LVMFS_RUN_DIR']
  else process.env['LVMFS_RUN_DIR'] = savedRunDir
})

/** [argv after `fault vg0 /dev/pv`, exit, code, text the message must contain]. */
const rows: Array<[string[], 3 | 5, string, string]> = [
  [[], 3, 'ENGINE_USAGE', '--fail-fsync'],
  [['--fail-writes', '--fail-reads'], 3, 'ENGINE_USAGE', 'exactly one'],
  [['--fail-writes', '--offset', 'x'], 3, 'ENGINE_USAGE', '--offset'],
  [['--fail-writes', '--offset', '-4K'], 3, 'ENGINE_USAGE', '--offset'],
  [['--fail-writes', '--offset', '0', '--length', '0'], 3, 'ENGINE_USAGE', '--length'],
  [['--fail-writes', '--offset', '0', '--length', '1q'], 3, 'ENGINE_USAGE', '--length'],
  [['--fail-writes', '--length', '64K'], 3, 'ENGINE_USAGE', '--length needs --offset'],
  [['--fail-writes', '--lp', '3'], 3, 'ENGINE_USAGE', '--lp needs --lv'],
  [['--fail-writes', '--lv', 'lv0', '--lp', '3-1'], 3, 'ENGINE_USAGE', '--lp'],
  [['--fail-writes', '--lv', 'lv0', '--lp', 'a'], 3, 'ENGINE_USAGE', '--lp'],
  [['--fail-writes', '--lv', 'lv0', '--lp', '1,,2'], 3, 'ENGINE_USAGE', '--lp'],
  [['--fail-writes', '--lv', 'lv0', '--offset', '0'], 3, 'ENGINE_USAGE', '--lv cannot be combined with --offset'],
  [['--clear', '--offset', '0'], 3, 'ENGINE_USAGE', '--offset does not apply to --clear'],
  [['--clear', '--lv', 'lv0'], 3, 'ENGINE_USAGE', '--lv does not apply to --clear'],
  [['--fail-fsync', '--offset', '4M', '--length', '64K'], 3, 'ENGINE_USAGE', '--offset does not apply to --fail-fsync'],
  [['--fail-fsync', '--lv', 'lv0', '--lp', '1'], 3, 'ENGINE_USAGE', '--lv does not apply to --fail-fsync'],
  // Well-formed: refused only because nothing is mounted.
  [['--fail-writes', '--offset', '0', '--length', '64K'], 5, 'ENGINE_NOT_MOUNTED', 'vg0'],
  [['--fail-fsync'], 5, 'ENGINE_NOT_MOUNTED', 'vg0'],
  [['--fail-reads', '--lv', 'lv0', '--lp', '0-3,9'], 5, 'ENGINE_NOT_MOUNTED', 'vg0'],
]

void t.test('bad fault options are typed usage errors', async (t) => {
  for (const [args, exit, code, text] of rows) {
    const r = await cli(['fault', 'vg0', '/dev/pv', ...args])
    const label = `fault ${args.join(' ')}`
    t.equal(r.exit, exit, `${label}: exit ${r.exit} ${r.stderr.split('\n')[0]}`)
    t.match(r.stderr, `lvmfs: ${code}:`, `${label}: names ${code}`)
    t.match(r.stderr, text, `${label}: mentions ${text}`)
    t.notMatch(r.stderr, /\n\s+at /, `${label}: no stack trace`)
  }
})

void t.test('offsets and LP lists', async (t) => {
  t.equal(parseOffsetBytes('0', '--offset'), 0)
  t.equal(parseOffsetBytes('0K', '--offset'), 0)
  t.equal(parseOffsetBytes('4M', '--offset'), 4 << 20)
  t.equal(parseOffsetBytes('65536', '--offset'), 65536)
  t.same(parseIndexList('5', '--lp'), [5])
  t.same(parseIndexList('9,5,13', '--lp'), [5, 9, 13])
  t.same(parseIndexList('0-3,2,8', '--lp'), [0, 1, 2, 3, 8])
  t.throws(() => parseIndexList('0-2000000', '--lp'), { code: 'ENGINE_USAGE' })
})
