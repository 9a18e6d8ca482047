/**
 * Asynchronous mirrors with low-water marks, in process: every write to the source gets the next
 * commit count; at every applied change the target equals the source after exactly that prefix
 * of the write sequence (each write is stamped), the mark never decreases, and once propagation
 * catches up the target equals the source and the lag is 0. After a restart (journal lost) the
 * propagator copies the changed chunks from the mark on: no gap.
 */
import t from 'tap'
import { createVg, openRepl, prng, PP } from '../../helpers/replication-fixture.js'
import type { StepEvent } from '../../../src/replication/index.js'

const LPS = 6

t.test('target passes through prefixes of the write sequence; mark only rises; lag returns to 0', async (t) => {
  const dir = t.testdir()
  await createVg(dir, 'vg0')
  await createVg(dir, 'vg1')
  const states: Buffer[] = [Buffer.alloc(LPS * PP)]
  const marks: number[] = []
  let checks = 0
  let failures = 0
  const ref: { fx?: Awaited<ReturnType<typeof openRepl>> } = {}
  const onStep = async (event: StepEvent): Promise<void> => {
    if (event.kind === 'lwm') marks.push(event.lwm)
    if (event.kind !== 'applied' || ref.fx === undefined) return
    const target = Buffer.alloc(LPS * PP)
    await ref.fx.repl.read('vg1', 'm', target, 0)
    checks++
    if (!target.equals(states[event.count]!)) failures++
  }
  const fx = await openRepl(dir, ['vg0', 'vg1'], { onStep })
  ref.fx = fx
  await fx.vgs.get('vg0')!.lvCreate({ name: 's', lpCount: LPS })
  const result = await fx.repl.replicate({ vg: 'vg0', lv: 's', name: 'm', type: 'mirror-async', pool: 'vg1',
    intervalMs: 60_000 })
  t.equal(result.status, 'LSM_ERR_JOB_STARTED')
  if (result.status !== 'LSM_ERR_JOB_STARTED') return
  t.equal((await fx.repl.waitJob(result.jobId)).state, 'COMPLETE', 'initial sync complete')
  const random = prng(11)
  for (let write = 1; write <= 150; write++) {
    const length = 512 * (1 + Math.floor(random() * 24))
    const offset = 512 * Math.floor(random() * ((LPS * PP - length) / 512))
    const data = Buffer.alloc(length, write % 251 + 1)
    await fx.repl.write('vg0', 's', data, offset)
    const next = Buffer.from(states.at(-1)!)
    data.copy(next, offset)
    states.push(next)
    if (write < 150 && random() < 0.08) await fx.repl.propagate('vg1', 'm')
  }
  t.ok((await fx.repl.lag('vg1', 'm')).commits > 0, 'the target lags before the last cycle')
  await fx.repl.propagate('vg1', 'm')
  t.ok(checks >= 150, `${checks} intermediate target states checked`)
  t.equal(failures, 0, 'every intermediate target state is a prefix state')
  t.same(marks, [...marks].sort((a, b) => a - b), 'the mark never decreases')
  t.equal(marks.at(-1), 150, 'the mark reaches the last commit count')
  const lag = await fx.repl.lag('vg1', 'm')
  t.equal(lag.commits, 0, 'lag back to 0 commits')
  t.equal(lag.bytes, 0, 'lag back to 0 bytes')
  await t.rejects(fx.repl.write('vg1', 'm', Buffer.alloc(1), 0), { code: 'LSM_ERR_REPLICA_BUSY' }, 'target read-only')
  await fx.close()
})

t.test('after a restart the changed chunks since the mark are copied: no gap', async (t) => {
  const dir = t.testdir()
  await createVg(dir, 'vg0')
  let fx = await openRepl(dir, ['vg0'])
  await fx.vgs.get('vg0')!.lvCreate({ name: 's', lpCount: LPS })
  const result = await fx.repl.replicate({ vg: 'vg0', lv: 's', name: 'm', type: 'mirror-async' })
  if (result.status !== 'LSM_ERR_JOB_STARTED') return t.fail('job expected')
  await fx.repl.waitJob(result.jobId)
  await fx.repl.write('vg0', 's', Buffer.alloc(PP, 1), 0)
  await fx.repl.propagate('vg0', 'm')
  await fx.repl.write('vg0', 's', Buffer.alloc(100, 2), 3 * PP + 5)
  await fx.repl.write('vg0', 's', Buffer.alloc(100, 3), 5 * PP + 7)
  const markBefore = (await fx.repl.lag('vg0', 'm')).lwm
  await fx.close()
  fx = await openRepl(dir, ['vg0'])
  const lag = await fx.repl.lag('vg0', 'm')
  t.equal(lag.lwm, markBefore, 'the mark survived the restart')
  t.ok(lag.commitCount >= lag.lwm, 'the commit count never restarts below the mark')
  await fx.repl.propagate('vg0', 'm')
  const source = Buffer.alloc(LPS * PP)
  const target = Buffer.alloc(LPS * PP)
  await fx.repl.read('vg0', 's', source, 0)
  await fx.repl.read('vg0', 'm', target, 0)
  t.ok(target.equals(source), 'target equals source after the first cycle after restart')
  t.equal((await fx.repl.status('vg0', 'm'))?.syncState, 'in sync')
  await fx.close()
})

t.test('natively served source: gate hook + region copies, re-recorded after each copy (no gap)', async (t) => {
  const dir = t.testdir()
  await createVg(dir, 'vg0')
  const closed: number[] = []
  const fx = await openRepl(dir, ['vg0'], { gates: {
    closeVolumeGates: async () => {},
    closeChunkGates: async (_vg, _lv, chunk) => { closed.push(chunk) },
    remap: async () => {},
    freezeChunks: async (_vg, _lv, chunks, atInstant) => { closed.push(...chunks); atInstant() },
    withVolumeClosed: async (_vg, _lv, step) => { await step() },
  } })
  const vg = fx.vgs.get('vg0')!
  await vg.lvCreate({ name: 's', lpCount: LPS })
  const result = await fx.repl.replicate({ vg: 'vg0', lv: 's', name: 'm', type: 'mirror-async', intervalMs: 60_000 })
  if (result.status === 'LSM_ERR_JOB_STARTED') await fx.repl.waitJob(result.jobId)
  closed.length = 0
  // What the daemon does for a native write: the hook once per closed gate region, then the
  // write runs without TypeScript (here: straight to the source's partitions).
  const nativeWrite = async (offset: number, byte: number): Promise<void> => {
    await fx.repl.beforeWriteRegion('vg0', 's', Math.floor(offset / PP), PP)
    await fx.repl.io.write(fx.engines[0]!, vg.lvByName('s')!, Buffer.alloc(1000, byte), offset)
  }
  await nativeWrite(PP + 10, 1)
  await nativeWrite(4 * PP + 10, 2)
  const mark = await fx.repl.propagate('vg0', 'm')
  t.ok(mark > 0, `mark raised to ${mark}`)
  t.same(closed.sort(), [1, 4], 'the dirty chunks were frozen together before they were copied')
  await nativeWrite(PP + 500, 3)
  await fx.repl.propagate('vg0', 'm')
  const source = Buffer.alloc(LPS * PP)
  const target = Buffer.alloc(LPS * PP)
  await fx.repl.read('vg0', 's', source, 0)
  await fx.repl.read('vg0', 'm', target, 0)
  t.ok(target.equals(source), 'target equals source')
  t.equal((await fx.repl.lag('vg0', 'm')).commits, 0)
  await fx.close()
})

t.test('propagation racing concurrent writes never raises the mark past an unjournaled write', async (t) => {
  const dir = t.testdir()
  await createVg(dir, 'vg0')
  const fx = await openRepl(dir, ['vg0'])
  await fx.vgs.get('vg0')!.lvCreate({ name: 's', lpCount: LPS })
  const result = await fx.repl.replicate({ vg: 'vg0', lv: 's', name: 'm', type: 'mirror-async', intervalMs: 60_000 })
  if (result.status === 'LSM_ERR_JOB_STARTED') await fx.repl.waitJob(result.jobId)
  const random = prng(5)
  for (let round = 0; round < 5; round++) {
    const writes = Array.from({ length: 20 }, (_, index) => fx.repl.write('vg0', 's',
      Buffer.alloc(2048, round * 20 + index + 1), 512 * Math.floor(random() * ((LPS * PP - 2048) / 512))))
    const marks = [fx.repl.propagate('vg0', 'm'), fx.repl.propagate('vg0', 'm')]
    await Promise.all([...writes, ...marks])
    const mark = await fx.repl.propagate('vg0', 'm')
    const source = Buffer.alloc(LPS * PP)
    const target = Buffer.alloc(LPS * PP)
    await fx.repl.read('vg0', 's', source, 0)
    await fx.repl.read('vg0', 'm', target, 0)
    t.ok(target.equals(source), `round ${round}: target equals source at mark ${mark}`)
  }
  await fx.close()
})

t.test('catch-up by chunk copies publishes one instant: the target is a prefix at every step', async (t) => {
  const dir = t.testdir()
  await createVg(dir, 'vg0')
  await createVg(dir, 'vg1')
  // states[k]: the source after the first k writes; the target must always equal one of them.
  const states: Buffer[] = [Buffer.alloc(LPS * PP)]
  const seen: number[] = []
  const ref: { fx?: Awaited<ReturnType<typeof openRepl>>, during?: () => Promise<void> } = {}
  const write = async (chunk: number, at: number, byte: number): Promise<void> => {
    const data = Buffer.alloc(3000, byte)
    await ref.fx!.repl.write('vg0', 's', data, chunk * PP + at)
    const next = Buffer.from(states.at(-1)!)
    data.copy(next, chunk * PP + at)
    states.push(next)
  }
  const prefixOfTarget = async (): Promise<number> => {
    const target = Buffer.alloc(LPS * PP)
    await ref.fx!.repl.read('vg1', 'm', target, 0)
    return states.findIndex((state) => state.equals(target))
  }
  const onStep = async (event: StepEvent): Promise<void> => {
    if (ref.fx === undefined || (event.kind !== 'chunk' && event.kind !== 'published')) return
    seen.push(await prefixOfTarget())
    if (event.kind === 'chunk' && ref.during !== undefined) {
      const during = ref.during
      ref.during = undefined
      await during()
    }
  }
  // No journal: every cycle catches up by copying changed chunks, as for a natively served source.
  const fx = await openRepl(dir, ['vg0', 'vg1'], { onStep, journalBytesMax: 0 })
  ref.fx = fx
  await fx.vgs.get('vg0')!.lvCreate({ name: 's', lpCount: LPS })
  const result = await fx.repl.replicate({ vg: 'vg0', lv: 's', name: 'm', type: 'mirror-async', pool: 'vg1',
    intervalMs: 60_000 })
  if (result.status === 'LSM_ERR_JOB_STARTED') await fx.repl.waitJob(result.jobId)
  const lpsBefore = fx.vgs.get('vg1')!.lvByName('m')!.lps.length

  // A later write to a lower chunk: copying chunks in place in order would show it without the
  // earlier one, which no prefix of the sequence does.
  await write(4, 100, 0xa1)
  await write(1, 200, 0xb2)
  const frozen = states.length - 1
  // While the cycle copies its first chunk: one write into a chunk it has not copied yet, one
  // into the chunk it has. Neither belongs to the image the cycle publishes.
  ref.during = async () => {
    await write(4, 5000, 0xc3)
    await write(1, 9000, 0xd4)
  }
  await fx.repl.propagate('vg1', 'm')
  t.ok(seen.length >= 3, `${seen.length} checks during the cycle`)
  t.notOk(seen.includes(-1), `the target was a prefix at every step (prefixes ${seen.join(',')})`)
  t.equal(seen.at(-1), frozen, 'the published image is the source at the freeze, without the writes during the cycle')
  t.equal(fx.vgs.get('vg1')!.lvByName('m')!.lps.length, lpsBefore, 'the staging partitions were freed')

  seen.length = 0
  await fx.repl.propagate('vg1', 'm')
  t.equal(seen.at(-1), states.length - 1, 'the next cycle publishes the writes made during the first')
  t.equal((await fx.repl.lag('vg1', 'm')).commits, 0)
  await fx.close()
})

t.test('a chunk first written between the cycle\'s chunk list and its freeze is frozen with the rest', async (t) => {
  // Regression (e2e async-mirror "block ... holds nothing, prefix N says M"): the cycle listed its
  // changed chunks, then allocated staging partitions (a descriptor commit), then froze. A write
  // into a chunk not on the list, followed by a write into a listed chunk, both before the
  // freeze: the published image held the later write without the earlier one, which is no prefix.
  const dir = t.testdir()
  await createVg(dir, 'vg0')
  await createVg(dir, 'vg1')
  const states: Buffer[] = [Buffer.alloc(LPS * PP)]
  const ref: { fx?: Awaited<ReturnType<typeof openRepl>> } = {}
  const write = async (chunk: number, at: number, byte: number): Promise<void> => {
    const data = Buffer.alloc(3000, byte)
    await ref.fx!.repl.write('vg0', 's', data, chunk * PP + at)
    const next = Buffer.from(states.at(-1)!)
    data.copy(next, chunk * PP + at)
    states.push(next)
  }
  const prefixOfTarget = async (): Promise<number> => {
    const target = Buffer.alloc(LPS * PP)
    await ref.fx!.repl.read('vg1', 'm', target, 0)
    return states.findIndex((state) => state.equals(target))
  }
  const seen: number[] = []
  const onStep = async (event: StepEvent): Promise<void> => {
    if (ref.fx !== undefined && event.kind === 'published') seen.push(await prefixOfTarget())
  }
  const fx = await openRepl(dir, ['vg0', 'vg1'], { onStep, journalBytesMax: 0 })
  ref.fx = fx
  await fx.vgs.get('vg0')!.lvCreate({ name: 's', lpCount: LPS })
  const result = await fx.repl.replicate({ vg: 'vg0', lv: 's', name: 'm', type: 'mirror-async', pool: 'vg1',
    intervalMs: 60_000 })
  if (result.status === 'LSM_ERR_JOB_STARTED') await fx.repl.waitJob(result.jobId)

  await write(1, 100, 0xa1)
  // The staging allocation is the await between the list and the freeze: write there.
  const pool = fx.vgs.get('vg1')!
  const lvExtend = pool.lvExtend.bind(pool)
  let during: (() => Promise<void>) | undefined = async () => {
    await write(3, 200, 0xb2)
    await write(1, 300, 0xc3)
  }
  pool.lvExtend = async (...args: Parameters<typeof lvExtend>) => {
    const step = during
    during = undefined
    if (step !== undefined) await step()
    return await lvExtend(...args)
  }
  await fx.repl.propagate('vg1', 'm')
  t.equal(during, undefined, 'the writes ran between the chunk list and the freeze')
  t.notOk(seen.includes(-1), `every published image is a prefix of the write sequence (prefixes ${seen.join(',')})`)
  t.equal(seen.at(-1), states.length - 1, 'the cycle published the source at its freeze, both writes included')
  t.equal(await prefixOfTarget(), states.length - 1, 'the target on disk is that prefix')

  await fx.repl.propagate('vg1', 'm')
  t.equal(await prefixOfTarget(), states.length - 1, 'and the next cycle keeps it')
  t.equal((await fx.repl.lag('vg1', 'm')).commits, 0)
  await fx.close()
})

t.test('a source write that fails after taking its commit count does not stall propagation', async (t) => {
  const dir = t.testdir()
  for (const vg of ['vg0', 'vg1', 'vg2']) await createVg(dir, vg)
  const fx = await openRepl(dir, ['vg0', 'vg1', 'vg2'])
  t.teardown(() => fx.close().catch(() => undefined))
  await fx.vgs.get('vg0')!.lvCreate({ name: 's', lpCount: 2 })
  const mirror = await fx.repl.replicate({ vg: 'vg0', lv: 's', name: 'm', type: 'mirror-async', pool: 'vg1',
    intervalMs: 60_000 })
  if (mirror.status === 'LSM_ERR_JOB_STARTED') await fx.repl.waitJob(mirror.jobId)
  // The async mirror takes the write's count first; then the clone's copy-on-write fails.
  t.equal((await fx.repl.replicate({ vg: 'vg0', lv: 's', name: 'c', type: 'clone', pool: 'vg2' })).status,
    'LSM_ERR_OK')
  Object.assign(fx.vgs.get('vg2')!, { device: () => { throw new Error('injected: the clone PV is gone') } })
  await t.rejects(fx.repl.write('vg0', 's', Buffer.alloc(PP, 1), 0), 'the write fails')
  // Before the fix the count stayed pending and propagation waited for it forever.
  const outcome = await Promise.race([fx.repl.propagate('vg1', 'm').then(() => 'propagated'),
    new Promise((resolve) => setTimeout(() => resolve('still waiting after 20 s'), 20_000).unref())])
  t.equal(outcome, 'propagated')
})
