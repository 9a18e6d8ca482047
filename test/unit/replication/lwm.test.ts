/**
 * chlwm and primrec per the AIX/370 reference, table-driven, and generation ids: a source and a
 * split replica that both took writes are detected (LWM_GENERATION_CONFLICT), never merged.
 *
 * Setup for the chlwm rows: vg0/s (site 1) mirrored asynchronously to vg1/m (site 2); the
 * source has made 5 writes (commit count 5) and the target's mark is 3.
 */
import t from 'tap'
import { createVg, openRepl, PP } from '../../helpers/replication-fixture.js'
import { compareGenerations, type GenerationVerdict } from '../../../src/replication/index.js'

interface Row {
  readonly why: string
  readonly vg: string
  readonly lv: string
  readonly site: number
  readonly lwm: number
  readonly uid?: number
  readonly down?: boolean
  /** Writes to the target's PV fail (the site fails during the call). */
  readonly failing?: boolean
  readonly code?: string
  readonly returns?: number
  /** The target's mark after the call. */
  readonly markAfter?: number
}

const ROWS: readonly Row[] = [
  { why: 'not superuser', vg: 'vg1', lv: 'm', site: 2, lwm: 9, uid: 1000, code: 'LWM_EPERM' },
  { why: 'site 0', vg: 'vg1', lv: 'm', site: 0, lwm: 9, code: 'LWM_EBADST' },
  { why: 'not a replicated volume', vg: 'vg0', lv: 'plain', site: 1, lwm: 9, code: 'LWM_ENOSTORE' },
  { why: 'volume group not mounted', vg: 'vgX', lv: 'm', site: 2, lwm: 9, code: 'LWM_ENOSTORE' },
  { why: 'no copy at that site', vg: 'vg1', lv: 'm', site: 7, lwm: 9, code: 'LWM_EINVAL' },
  { why: 'local site, lower mark: unchanged, previous returned', vg: 'vg1', lv: 'm', site: 2, lwm: 1, returns: 3, markAfter: 3 },
  { why: 'local site, higher mark: raised, previous returned', vg: 'vg1', lv: 'm', site: 2, lwm: 4, returns: 3, markAfter: 4 },
  { why: 'other site from the target: the source mark, nothing changed', vg: 'vg1', lv: 'm', site: 1, lwm: 99, returns: 5,
    markAfter: 3 },
  { why: 'other site from the source: the target mark, nothing changed', vg: 'vg0', lv: 's', site: 2, lwm: 99, returns: 3,
    markAfter: 3 },
  { why: 'local site of the source: its commit count', vg: 'vg0', lv: 's', site: 1, lwm: 2, returns: 5, markAfter: 3 },
  { why: 'the other site is down', vg: 'vg0', lv: 's', site: 2, lwm: 1, down: true, code: 'LWM_ESITEDN1' },
  { why: 'the site fails while the mark is written', vg: 'vg1', lv: 'm', site: 2, lwm: 9, failing: true,
    code: 'LWM_ESITEDN2' },
]

async function setup(dir: string, uid: number) {
  await createVg(dir, 'vg0')
  await createVg(dir, 'vg1')
  const fx = await openRepl(dir, ['vg0', 'vg1'], { uid: () => uid })
  await fx.vgs.get('vg0')!.lvCreate({ name: 's', lpCount: 4 })
  await fx.vgs.get('vg0')!.lvCreate({ name: 'plain', lpCount: 1 })
  const result = await fx.repl.replicate({ vg: 'vg0', lv: 's', name: 'm', type: 'mirror-async', pool: 'vg1',
    intervalMs: 60_000 })
  if (result.status === 'LSM_ERR_JOB_STARTED') await fx.repl.waitJob(result.jobId)
  for (let write = 0; write < 3; write++) await fx.repl.write('vg0', 's', Buffer.alloc(10, write + 1), write * PP)
  await fx.repl.propagate('vg1', 'm')
  for (let write = 3; write < 5; write++) await fx.repl.write('vg0', 's', Buffer.alloc(10, write + 1), write % 4 * PP)
  return fx
}

for (const row of ROWS) {
  t.test(`chlwm: ${row.why}`, async (t) => {
    const fx = await setup(t.testdir(), row.uid ?? 0)
    t.equal((await fx.repl.lag('vg1', 'm')).lwm, 3, 'setup: mark 3')
    if (row.down === true) await fx.vgs.get('vg1')!.varyOff()
    const device = (fx.vgs.get('vg1')!.device(0) ?? { write: async () => {} }) as unknown as
      { write: (...args: unknown[]) => Promise<void> }
    const write = device.write
    if (row.failing === true) device.write = async () => { throw Object.assign(new Error('EIO'), { code: 'EIO' }) }
    const call = fx.repl.chlwm(row.vg, row.lv, row.site, row.lwm)
    if (row.code !== undefined) await t.rejects(call, { code: row.code })
    else t.equal(await call, row.returns, 'return value')
    if (row.markAfter !== undefined) t.equal((await fx.repl.lag('vg1', 'm')).lwm, row.markAfter, 'mark after')
    device.write = write
    await fx.close()
  })
}

t.test('primrec: changed chunks since the mark, or everything with full; ends with chlwm', async (t) => {
  const fx = await setup(t.testdir(), 0)
  const report = await fx.repl.primrec('vg1', 'm')
  t.same({ previous: report.previousLwm, lwm: report.lwm }, { previous: 3, lwm: 5 }, 'previous mark and new mark')
  t.equal(report.copiedChunks, 2, 'only the chunks written after the mark')
  const source = Buffer.alloc(4 * PP)
  const target = Buffer.alloc(4 * PP)
  await fx.repl.read('vg0', 's', source, 0)
  await fx.repl.read('vg1', 'm', target, 0)
  t.ok(target.equals(source), 'target equals source')
  const full = await fx.repl.primrec('vg1', 'm', { full: true })
  t.equal(full.copiedChunks, 4, '--full copies every chunk')
  t.equal(full.previousLwm, 5, 'previous mark returned by the final chlwm')
  await t.rejects(fx.repl.primrec('vg0', 'plain'), { code: 'LWM_ENOSTORE' })
  await fx.close()
})

const VERDICTS: ReadonlyArray<[string, { current: string, history: string[] }, { current: string, history: string[] },
  string, GenerationVerdict]> = [
  ['nobody wrote', { current: 'a', history: [] }, { current: 'a', history: [] }, 'a', 'same'],
  ['source wrote', { current: 'b', history: ['a'] }, { current: 'a', history: [] }, 'a', 'source-ahead'],
  ['replica wrote', { current: 'a', history: [] }, { current: 'c', history: ['a'] }, 'a', 'replica-ahead'],
  ['both wrote', { current: 'b', history: ['a'] }, { current: 'c', history: ['a'] }, 'a', 'conflict'],
  ['no common generation', { current: 'b', history: [] }, { current: 'c', history: [] }, 'a', 'unrelated'],
]

for (const [why, source, replica, base, verdict] of VERDICTS) {
  t.test(`compareGenerations: ${why}`, async (t) => {
    t.equal(compareGenerations(source, replica, base), verdict)
  })
}

t.test('split, then writes on both sides: primrec detects the conflict and merges nothing', async (t) => {
  const fx = await setup(t.testdir(), 0)
  await fx.repl.primrec('vg1', 'm')
  await fx.repl.split('vg1', 'm')
  await fx.repl.write('vg1', 'm', Buffer.alloc(10, 0xee), 0)
  await fx.repl.write('vg0', 's', Buffer.alloc(10, 0xdd), PP)
  const before = Buffer.alloc(4 * PP)
  await fx.repl.read('vg1', 'm', before, 0)
  await t.rejects(fx.repl.primrec('vg1', 'm'), { code: 'LWM_GENERATION_CONFLICT', context: { verdict: 'conflict' } })
  const after = Buffer.alloc(4 * PP)
  await fx.repl.read('vg1', 'm', after, 0)
  t.ok(after.equals(before), 'the split copy is untouched')
  await fx.close()
})

t.test('split, then writes on the source only: primrec reattaches and catches up', async (t) => {
  const fx = await setup(t.testdir(), 0)
  await fx.repl.split('vg1', 'm')
  t.same(fx.repl.childDependencies('vg0', 's'), [], 'a split mirror no longer blocks removal')
  await fx.repl.write('vg0', 's', Buffer.alloc(10, 0xdd), PP)
  await fx.repl.primrec('vg1', 'm')
  const source = Buffer.alloc(4 * PP)
  const target = Buffer.alloc(4 * PP)
  await fx.repl.read('vg0', 's', source, 0)
  await fx.repl.read('vg1', 'm', target, 0)
  t.ok(target.equals(source), 'reattached target equals source')
  await t.rejects(fx.repl.write('vg1', 'm', Buffer.alloc(1), 0), { code: 'LSM_ERR_REPLICA_BUSY' }, 'read-only again')
  t.same(fx.repl.childDependencies('vg0', 's'), ['vg1/m'], 'the mirror is a dependency again')
  await fx.close()
})

t.test('split, then writes on the replica only: refused (would discard them)', async (t) => {
  const fx = await setup(t.testdir(), 0)
  await fx.repl.split('vg1', 'm')
  await fx.repl.write('vg1', 'm', Buffer.alloc(10, 0xee), 0)
  await t.rejects(fx.repl.primrec('vg1', 'm'), { code: 'LWM_GENERATION_CONFLICT', context: { verdict: 'replica-ahead' } })
  await fx.close()
})
