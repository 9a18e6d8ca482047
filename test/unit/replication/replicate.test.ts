/**
 * lsm_volume_replicate return codes, table-driven (one row per code of the reference, each with
 * its meaning here), synchronous mirrors (read-only target, split), copy refusing opens, the
 * native volume maps the daemon serves, and the replica superblock's two-slot crash safety.
 */
import t from 'tap'
import { createVg, openRepl, PP } from '../../helpers/replication-fixture.js'
import { readSuperblock, replicaOf } from '../../../src/replication/index.js'
import {
  decodeSuperblock, encodeSuperblock, newestSuperblock, superblockSlotBytes, type ReplicaSuperblock,
} from '../../../src/format/replica-superblock.js'

type Fx = Awaited<ReturnType<typeof openRepl>>

interface Row {
  readonly why: string
  readonly request: { vg: string, lv: string, name: string, type: string, pool?: string, intervalMs?: number }
  readonly before?: (fx: Fx) => Promise<void>
  readonly status?: 'LSM_ERR_OK' | 'LSM_ERR_JOB_STARTED'
  readonly code?: string
}

const ROWS: readonly Row[] = [
  { why: 'clone: the new volume at once', request: { vg: 'vg0', lv: 's', name: 'n', type: 'clone' }, status: 'LSM_ERR_OK' },
  { why: 'copy: a job', request: { vg: 'vg0', lv: 's', name: 'n', type: 'copy' }, status: 'LSM_ERR_JOB_STARTED' },
  { why: 'mirror-sync into another pool: a job', request: { vg: 'vg0', lv: 's', name: 'n', type: 'mirror-sync', pool: 'vg1' },
    status: 'LSM_ERR_JOB_STARTED' },
  { why: 'unknown type', request: { vg: 'vg0', lv: 's', name: 'n', type: 'snapshot' }, code: 'LSM_ERR_INVALID_ARGUMENT' },
  { why: 'bad target name', request: { vg: 'vg0', lv: 's', name: '-x', type: 'clone' }, code: 'LSM_ERR_INVALID_ARGUMENT' },
  { why: 'name taken', request: { vg: 'vg0', lv: 's', name: 's', type: 'clone' }, code: 'LSM_ERR_INVALID_ARGUMENT' },
  { why: 'interval on a clone', request: { vg: 'vg0', lv: 's', name: 'n', type: 'clone', intervalMs: 100 },
    code: 'LSM_ERR_INVALID_ARGUMENT' },
  { why: 'no such volume', request: { vg: 'vg0', lv: 'zz', name: 'n', type: 'clone' }, code: 'LSM_ERR_NOT_FOUND_VOLUME' },
  { why: 'no such pool', request: { vg: 'vg0', lv: 's', name: 'n', type: 'copy', pool: 'vgz' }, code: 'LSM_ERR_NOT_FOUND_POOL' },
  { why: 'pool too small for a copy', request: { vg: 'vg0', lv: 'big', name: 'n', type: 'copy', pool: 'vg1' },
    code: 'LSM_ERR_NOT_ENOUGH_SPACE' },
  { why: 'pool varied off', request: { vg: 'vg0', lv: 's', name: 'n', type: 'copy', pool: 'vg1' },
    before: async (fx) => { await fx.vgs.get('vg1')!.varyOff() }, code: 'LSM_ERR_POOL_NOT_READY' },
  { why: 'clone of a clone', request: { vg: 'vg0', lv: 'c', name: 'n', type: 'clone' },
    before: async (fx) => { await fx.repl.replicate({ vg: 'vg0', lv: 's', name: 'c', type: 'clone' }) }, code: 'LSM_ERR_NO_SUPPORT' },
  { why: 'sync mirror of a 3-copy LV', request: { vg: 'vg0', lv: 'three', name: 'n', type: 'mirror-sync' },
    code: 'LSM_ERR_NO_SUPPORT' },
]

async function setup(dir: string): Promise<Fx> {
  await createVg(dir, 'vg0', 3, 8 * 1024 * 1024)
  await createVg(dir, 'vg1', 1, 4 * 1024 * 1024)
  const fx = await openRepl(dir, ['vg0', 'vg1'])
  const vg0 = fx.vgs.get('vg0')!
  await vg0.lvCreate({ name: 's', lpCount: 4 })
  await vg0.lvCreate({ name: 'big', lpCount: 80 })
  await vg0.lvCreate({ name: 'three', lpCount: 1, copies: 3 })
  return fx
}

for (const row of ROWS) {
  t.test(`replicate: ${row.why}`, async (t) => {
    const fx = await setup(t.testdir())
    await row.before?.(fx)
    const call = fx.repl.replicate(row.request)
    if (row.code !== undefined) await t.rejects(call, { code: row.code })
    else t.equal((await call).status, row.status)
    await fx.close()
  })
}

t.test('sync mirror: every write on both; target read-only until split; split makes it independent', async (t) => {
  const fx = await setup(t.testdir())
  await fx.repl.write('vg0', 's', Buffer.alloc(PP, 7), 0)
  const result = await fx.repl.replicate({ vg: 'vg0', lv: 's', name: 'm', type: 'mirror-sync', pool: 'vg1' })
  if (result.status !== 'LSM_ERR_JOB_STARTED') return t.fail('job expected')
  t.equal((await fx.repl.waitJob(result.jobId)).state, 'COMPLETE')
  await fx.repl.write('vg0', 's', Buffer.alloc(100, 9), PP + 50)
  const source = Buffer.alloc(4 * PP)
  const target = Buffer.alloc(4 * PP)
  await fx.repl.read('vg0', 's', source, 0)
  await fx.repl.read('vg1', 'm', target, 0)
  t.ok(target.equals(source), 'target equals source')
  t.throws(() => fx.repl.assertOpenable('vg1', 'm', true), { code: 'LSM_ERR_REPLICA_BUSY' }, 'no writable open')
  t.doesNotThrow(() => fx.repl.assertOpenable('vg1', 'm', false), 'readable')
  await t.rejects(fx.repl.removeVolume('vg0', 's'), { code: 'LSM_ERR_HAS_CHILD_DEPENDENCY', context: { children: ['vg1/m'] } })
  const map = fx.repl.volumeMapOf('vg0', 's', () => 42)
  t.equal(map.extents[0]!.copies.length, 2, 'the source map carries the target copy (native writes reach both)')
  t.equal(fx.repl.volumeMapOf('vg1', 'm', () => 42).readOnly, true, 'the target map is read-only')
  t.same(fx.repl.syncTargetOfCopy('vg0', 's', 0, 1), { vg: 'vg1', lv: 'm' }, 'copy 1 of the source map is the target')
  t.equal(fx.repl.syncTargetOfCopy('vg0', 's', 0, 0), undefined, 'copy 0 is the source itself')
  await fx.repl.split('vg1', 'm')
  await fx.repl.write('vg1', 'm', Buffer.alloc(10, 1), 0)
  await fx.repl.write('vg0', 's', Buffer.alloc(10, 2), 0)
  await fx.repl.read('vg1', 'm', target, 0)
  t.equal(target[0], 1, 'after split the volumes diverge independently')
  t.equal(fx.repl.volumeMapOf('vg0', 's', () => 42).extents[0]!.copies.length, 1, 'split target left the source map')
  await fx.repl.removeVolume('vg0', 's')
  await fx.close()
})

t.test('clone map: shared chunks on the origin partitions, owned chunks on its own', async (t) => {
  const fx = await setup(t.testdir())
  await fx.repl.replicate({ vg: 'vg0', lv: 's', name: 'c', type: 'clone' })
  await fx.repl.beforeWriteRegion('vg0', 'c', 2, PP)
  const vg = fx.vgs.get('vg0')!
  const fdOf = (_vg: string, pvIndex: number): number => 100 + pvIndex
  const origin = fx.repl.volumeMapOf('vg0', 's', fdOf)
  const clone = fx.repl.volumeMapOf('vg0', 'c', fdOf)
  const where = (extent: { copies: ReadonlyArray<{ fd: number, offsetBytes: number }> } | undefined): string =>
    extent!.copies.map((copy) => `${copy.fd}@${copy.offsetBytes}`).join(',')
  t.equal(clone.sizeBytes, 4 * PP, 'the clone file has the origin size (metadata partition hidden)')
  t.equal(where(clone.extents[0]), where(origin.extents[0]), 'chunk 0 shared')
  t.not(where(clone.extents[2]), where(origin.extents[2]), 'chunk 2 owned after the hook')
  t.same(replicaOf(vg.lvByName('c')!)?.chunks, [2], 'the clone owns exactly chunk 2')
  t.equal(vg.lvByName('c')!.lps.length, 5, 'partitions are allocated ahead, at most the origin size')
  t.ok(origin.gateBytes > 0 && origin.gateBytes <= PP, 'origin writes are gated (copy-on-write hook)')
  await fx.close()
})

t.test('replica superblock: round trip, a torn newest slot falls back to the previous one', async (t) => {
  const sb: ReplicaSuperblock = { role: 'mirror-async', seq: 7, lwm: 12, lwmAtMs: 5, updatedAtMs: 6,
    generation: { current: 'a'.repeat(32), history: ['b'.repeat(32)] }, flags: 3, dataLps: 20, copied: new Uint8Array([0xff, 0x0f, 0]) }
  const bytes = encodeSuperblock(sb)
  t.same(decodeSuperblock(bytes), sb, 'decode(encode(x)) = x')
  const older = encodeSuperblock({ ...sb, seq: 6, lwm: 10 })
  const torn = Buffer.from(bytes)
  torn[200] = torn[200]! ^ 0xff
  t.throws(() => decodeSuperblock(torn), { code: 'ENGINE_CORRUPT' }, 'a flipped byte fails the checksum')
  t.equal(newestSuperblock([torn, older])?.lwm, 10, 'the previous record is used')
  t.equal(newestSuperblock([bytes, older])?.seq, 7, 'the newest valid record wins')
  t.equal(superblockSlotBytes(PP), PP / 2)
})

t.test('replica superblock on disk survives a restart', async (t) => {
  const dir = t.testdir()
  const fx = await setup(dir)
  const result = await fx.repl.replicate({ vg: 'vg0', lv: 's', name: 'k', type: 'copy' })
  if (result.status === 'LSM_ERR_JOB_STARTED') await fx.repl.waitJob(result.jobId)
  const sb = await readSuperblock(fx.vgs.get('vg0')!, fx.vgs.get('vg0')!.lvByName('k')!)
  t.equal(sb.role, 'copy')
  t.equal(sb.flags & 2, 2, 'complete flag on disk')
  await fx.close()
})

t.test('GateControl: the daemon is asked to close gates and remap exactly where the contract says', async (t) => {
  const dir = t.testdir()
  await createVg(dir, 'vg0', 1, 8 * 1024 * 1024)
  const calls: string[] = []
  const gates = {
    closeVolumeGates: async (vg: string, lv: string) => { calls.push(`closeVolume ${vg}/${lv}`) },
    closeChunkGates: async (vg: string, lv: string, chunk: number) => { calls.push(`closeChunk ${vg}/${lv} ${chunk}`) },
    remap: async (vg: string, lvs: readonly string[]) => { calls.push(`remap ${vg}/${lvs.join(',')}`) },
    freezeChunks: async (vg: string, lv: string, chunks: readonly number[], atInstant: () => void) => {
      calls.push(`freeze ${vg}/${lv} ${chunks.join(',')}`)
      atInstant()
    },
    withVolumeClosed: async (vg: string, lv: string, step: () => Promise<void>) => {
      calls.push(`closed ${vg}/${lv}`)
      await step()
    },
  }
  const fx = await openRepl(dir, ['vg0'], { gates })
  await fx.vgs.get('vg0')!.lvCreate({ name: 's', lpCount: 2 })
  await fx.repl.replicate({ vg: 'vg0', lv: 's', name: 'c', type: 'clone' })
  t.same(calls.splice(0), ['closeVolume vg0/s'], 'replicate closes the source gates before the replica exists')
  await fx.repl.beforeWriteRegion('vg0', 's', 1, PP)
  t.same(calls.splice(0), ['remap vg0/c'], 'an origin copy-on-write remaps the clone before the gate opens')
  await fx.repl.beforeWriteRegion('vg0', 's', 1, PP)
  t.same(calls.splice(0), [], 'a chunk no clone shares needs nothing')
  const result = await fx.repl.replicate({ vg: 'vg0', lv: 's', name: 'm', type: 'mirror-sync' })
  if (result.status === 'LSM_ERR_JOB_STARTED') await fx.repl.waitJob(result.jobId)
  t.ok(calls.includes('closeChunk vg0/s 0') && calls.includes('closeChunk vg0/s 1'), 'the job closes each chunk before copying it')
  t.ok(calls.filter((call) => call === 'remap vg0/s').length >= 2, 'each copied chunk joins the source map')
  await fx.close()
})

t.test('copy is the point-in-time image even while the source is written during the job', async (t) => {
  const dir = t.testdir()
  await createVg(dir, 'vg0', 1, 8 * 1024 * 1024)
  const ref: { fx?: Fx, writes: number } = { writes: 0 }
  const fx = await openRepl(dir, ['vg0'], { checkpointLps: 2, onStep: async (event) => {
    if (event.kind !== 'copied' || ref.fx === undefined || ref.writes >= 12) return
    ref.writes++
    // Write partitions ahead of the job (pushed first) and behind it (already copied).
    await ref.fx.repl.write('vg0', 's', Buffer.alloc(3000, 0xee), ((event.lp * 7 + 3) % 16) * PP + 11)
  } })
  ref.fx = fx
  await fx.vgs.get('vg0')!.lvCreate({ name: 's', lpCount: 16 })
  const image = Buffer.alloc(16 * PP)
  for (let lp = 0; lp < 16; lp++) image.fill(lp + 1, lp * PP, (lp + 1) * PP)
  await fx.repl.write('vg0', 's', image, 0)
  const result = await fx.repl.replicate({ vg: 'vg0', lv: 's', name: 'k', type: 'copy' })
  if (result.status === 'LSM_ERR_JOB_STARTED') await fx.repl.waitJob(result.jobId)
  t.ok(ref.writes > 0, `${ref.writes} source writes during the job`)
  const copy = Buffer.alloc(16 * PP)
  await fx.repl.read('vg0', 'k', copy, 0)
  t.ok(copy.equals(image), 'the copy equals the source at creation')
  const now = Buffer.alloc(16 * PP)
  await fx.repl.read('vg0', 's', now, 0)
  t.notOk(now.equals(image), 'while the source moved on')
  t.same(fx.repl.childDependencies('vg0', 's'), [], 'a complete copy does not block removing its source')
  await fx.close()
})

t.test('gateControlFrom: a chunk closes every gate region inside it', async (t) => {
  const { gateControlFrom } = await import('../../../src/replication/index.js')
  const closed: string[] = []
  const gates = gateControlFrom({
    nodeidOf: (_vg, lv) => (lv === 'gone' ? undefined : 7),
    gateBytesOf: () => PP / 4,
    ppSizeBytesOf: () => PP,
    closeGate: async (nodeid, region) => { closed.push(`${nodeid}:${region}`) },
    closeVolume: async (nodeid) => { closed.push(`all ${nodeid}`) },
    quiesce: async (nodeid, step) => {
      closed.push(`quiesce ${nodeid}`)
      await step()
      closed.push(`resume ${nodeid}`)
    },
    refresh: async () => { closed.push('refresh') },
  })
  await gates.closeChunkGates('vg0', 's', 2)
  t.same(closed.splice(0), ['7:8', '7:9', '7:10', '7:11'], 'regions 8..11 make up chunk 2')
  await gates.closeVolumeGates('vg0', 's')
  await gates.closeVolumeGates('vg0', 'gone')
  await gates.remap('vg0', ['s'])
  t.same(closed.splice(0), ['all 7', 'refresh'])
  await gates.freezeChunks('vg0', 's', [1, 3], () => closed.push('instant'))
  t.same(closed, ['quiesce 7', 'all 7', 'instant', 'resume 7'],
    'a freeze closes the open gates with opens held back, then marks the instant')
  closed.length = 0
  await gates.withVolumeClosed('vg0', 's', async () => { closed.push('step') })
  t.same(closed, ['quiesce 7', 'all 7', 'step', 'resume 7'], 'the step runs with every gate closed and held closed')
})
