/**
 * Replication in a shared VG: it runs in the process serving the source read-write
 * (ReplicationOptions.servesSource). Two fixtures over the same PV files stand for two daemons
 * of one shared VG: the owner replicates and runs the job; the other neither resumes the job at
 * startBackground nor accepts the verbs that change the replica (LSM_ERR_REPLICA_BUSY), and its
 * job status follows the owner's progress on disk. A replica in another VG is refused.
 */
import { createHash } from 'node:crypto'
import t from 'tap'
import { createVg, openRepl, PP } from '../../helpers/replication-fixture.js'
import type { LvDescriptor } from '../../../src/lvm/index.js'

const LPS = 8
const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')
const servesOnly = (name: string) => (_vg: string, lv: LvDescriptor): boolean => lv.name === name

t.test('the owner runs the copy job; another process of the VG leaves it alone and follows it on disk', async (t) => {
  const dir = t.testdir()
  await createVg(dir, 'sv', 2, 8 << 20, true)
  let release: () => void = () => undefined
  const gate = new Promise<void>((resolve) => { release = resolve })
  const created: string[] = []
  const owner = await openRepl(dir, ['sv'], {
    servesSource: servesOnly('src'), checkpointLps: 1,
    afterCreate: async (_vg, target) => { created.push(target.name) },
    onStep: async (event) => { if (event.kind === 'copied' && event.doneLps >= 2) await gate },
  }, true)
  t.teardown(() => owner.close())
  const vg = owner.vgs.get('sv')!
  await vg.lvCreate({ name: 'src', lpCount: LPS })
  await vg.lvCreate({ name: 'plain', lpCount: 1 })
  const image = Buffer.alloc(LPS * PP)
  for (let i = 0; i < image.length; i++) image[i] = (i * 7 + (i >> 12)) & 0xff
  await owner.repl.write('sv', 'src', image, 0)

  await t.rejects(owner.repl.replicate({ vg: 'sv', lv: 'plain', name: 'p2', type: 'clone' }),
    { code: 'LSM_ERR_REPLICA_BUSY' }, 'a source this process does not serve is refused')
  const started = await owner.repl.replicate({ vg: 'sv', lv: 'src', name: 'cp', type: 'copy' })
  t.equal(started.status, 'LSM_ERR_JOB_STARTED', 'copy in a shared VG starts a job (was LSM_ERR_NO_SUPPORT)')
  t.same(created, ['cp'], 'afterCreate ran before replicate answered (the shared mount takes the lock there)')
  const jobId = started.status === 'LSM_ERR_JOB_STARTED' ? started.jobId : ''
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
  for (let i = 0; i < 200 && (await owner.repl.job(jobId)).percent < 25; i++) await sleep(10)

  const other = await openRepl(dir, ['sv'], { servesSource: servesOnly('plain') }, true)
  t.teardown(() => other.close())
  await other.repl.startBackground()
  const seen = await other.repl.job(jobId)
  t.equal(seen.state, 'INPROGRESS')
  t.ok(seen.percent > 0 && seen.percent < 100, `the other process reads the owner's checkpoint (${seen.percent}%)`)
  await t.rejects(other.repl.waitJob(jobId), { code: 'LSM_ERR_REPLICA_BUSY' }, 'it does not run the job')
  await t.rejects(other.repl.removeVolume('sv', 'cp'), { code: 'LSM_ERR_REPLICA_BUSY' }, 'nor removes the replica')
  await t.rejects(other.repl.replicate({ vg: 'sv', lv: 'src', name: 'c2', type: 'clone' }), { code: 'LSM_ERR_REPLICA_BUSY' })
  await new Promise((r) => setTimeout(r, 300))
  t.equal((await other.repl.job(jobId)).percent, seen.percent, 'nobody copied while the owner is paused')

  release()
  const done = await owner.repl.waitJob(jobId)
  t.equal(done.state, 'COMPLETE')
  // Its descriptor is not reloaded here (no DLM in this test): the bitmap on disk shows the end.
  t.equal((await other.repl.job(jobId)).percent, 99, 'the other process follows the bitmap on disk, not a cache')
  const copy = Buffer.alloc(LPS * PP)
  await owner.repl.read('sv', 'cp', copy, 0)
  t.equal(sha(copy), sha(image), 'the copy is the source image')
})

t.test('a shared VG keeps its replicas: another VG as the pool is LSM_ERR_NO_SUPPORT', async (t) => {
  const dir = t.testdir()
  await createVg(dir, 'sv', 1, 8 << 20, true)
  await createVg(dir, 'pool', 1, 8 << 20)
  const fx = await openRepl(dir, ['sv', 'pool'])
  t.teardown(() => fx.close())
  await fx.vgs.get('sv')!.lvCreate({ name: 'src', lpCount: 2 })
  await fx.vgs.get('pool')!.lvCreate({ name: 'other', lpCount: 2 })
  await t.rejects(fx.repl.replicate({ vg: 'sv', lv: 'src', name: 'm', type: 'mirror-async', pool: 'pool' }),
    { code: 'LSM_ERR_NO_SUPPORT', message: /shared/ })
  const clone = await fx.repl.replicate({ vg: 'sv', lv: 'src', name: 'c', type: 'clone' })
  t.equal(clone.status, 'LSM_ERR_OK', 'within the shared VG it replicates')
})
