/**
 * The replication verbs through runCli (captured output, --devices): replicate answers
 * LSM_ERR_OK or LSM_ERR_JOB_STARTED with exit 0, job --wait resumes and completes a copy, chlwm
 * prints the previous mark, and each reference error exits with its class (3 usage, 5 failure)
 * and names its code.
 */
import t from 'tap'
import { createVg, devicesIn } from '../../helpers/replication-fixture.js'
import { runCli } from '../../../src/cli/program.js'
import { runInContext } from '../../../src/cli/io-context.js'

type CliRun = { code: number, stdout: string, stderr: string }

async function cli(devices: string, ...args: string[]): Promise<CliRun> {
  let stdout = ''
  let stderr = ''
  const code = await runInContext({
    stdout: { write: (chunk: string) => { stdout += chunk; return true } },
    stderr: { write: (chunk: string) => { stderr += chunk; return true } },
  }, () => runCli([...args, '--devices', devices]))
  return { code, stdout, stderr }
}

t.test('replicate, job, replica list, chlwm, primrec and their errors', async (t) => {
  const dir = t.testdir()
  await createVg(dir, 'vg0')
  await createVg(dir, 'vg1')
  const devices = devicesIn(dir).join(',')
  t.equal((await cli(devices, 'lvcreate', 'vg0', 's', '-L', '256K')).code, 0, 'lvcreate')
  const clone = await cli(devices, 'replicate', 'vg0/s', 'c', '--type', 'clone', '--json')
  t.equal(clone.code, 0)
  t.match(JSON.parse(clone.stdout), { status: 'LSM_ERR_OK', rc: 0, volume: { vg: 'vg0', lv: 'c' } })
  const copy = await cli(devices, 'replicate', 'vg0/s', 'k', '--type', 'copy', '--pool', 'vg1', '--json')
  t.equal(copy.code, 0, copy.stderr)
  const started = JSON.parse(copy.stdout) as { status: string, rc: number, job: string }
  t.match(started, { status: 'LSM_ERR_JOB_STARTED', rc: 7 })
  const waited = await cli(devices, 'job', started.job, '--wait', '--json')
  t.equal(waited.code, 0, waited.stderr)
  t.match(JSON.parse(waited.stdout.trim().split('\n').at(-1)!), { state: 'COMPLETE', percent: 100 })
  const am = await cli(devices, 'replicate', 'vg0/s', 'am', '--type', 'mirror-async', '--pool', 'vg1', '--interval', '0.2',
    '--wait')
  t.equal(am.code, 0, am.stderr)
  const list = await cli(devices, 'replica', 'list', 'vg1', '--json')
  t.match(JSON.parse(list.stdout), [{ lv: 'k', kind: 'copy' }, { lv: 'am', kind: 'mirror-async', syncState: 'in sync' }])
  const chlwm = await cli(devices, 'chlwm', 'vg1/am', '2', '9')
  t.same([chlwm.code, chlwm.stdout], [0, '0\n'], 'chlwm prints the previous mark')
  const again = await cli(devices, 'chlwm', 'vg1/am', '2', '3')
  t.same([again.code, again.stdout], [0, '9\n'], 'the mark is max(lwm, current)')
  const primrec = await cli(devices, 'primrec', 'vg1/am', '--full')
  t.equal(primrec.code, 0, primrec.stderr)
  const cases: Array<[string[], number, string]> = [
    [['replicate', 'vg0/s', 'x', '--type', 'snapshot'], 3, 'LSM_ERR_INVALID_ARGUMENT'],
    [['replicate', 'vg0/nope', 'x', '--type', 'clone'], 5, 'LSM_ERR_NOT_FOUND_VOLUME'],
    [['replicate', 'vg0/s', 'x', '--type', 'copy', '--pool', 'vgz'], 5, 'LSM_ERR_NOT_FOUND_POOL'],
    [['replicate', 'vg0/s', 'x', '--type', 'copy', '--target-vg', 'vgz'], 5, 'LSM_ERR_NOT_FOUND_POOL'],
    [['replicate', 'vg0/s', 'x', '--type', 'copy', '--pool', 'vg1', '--target-vg', 'vgz'], 3, 'LSM_ERR_INVALID_ARGUMENT'],
    [['replicate', 'vg0/c', 'x', '--type', 'clone'], 5, 'LSM_ERR_NO_SUPPORT'],
    [['replicate', 'vg0/s', 'x', '--type', 'clone', '--interval', '1'], 3, 'LSM_ERR_INVALID_ARGUMENT'],
    [['job', 'vg0.99'], 5, 'LSM_ERR_NOT_FOUND_JOB'],
    [['chlwm', 'vg1/am', '0', '1'], 3, 'LWM_EBADST'],
    [['chlwm', 'vg0/c', '1', '1'], 5, 'LWM_ENOSTORE'],
    [['chlwm', 'vg1/am', '5', '1'], 3, 'LWM_EINVAL'],
    [['primrec', 'vg1/k'], 5, 'LWM_ENOSTORE'],
  ]
  for (const [args, code, name] of cases) {
    const run = await cli(devices, ...args)
    t.equal(run.code, code, `${args.join(' ')}: exit ${code}`)
    t.match(run.stderr, name, `${args.join(' ')}: names ${name}`)
  }
})
