/**
 * An asynchronous mirror whose target VG lives on an NBD export (another site): replicated and
 * propagated like a local one; a server that stops answering in the middle of a catch-up never
 * holds a source write; a target VG lost with its server keeps its changes tracked at the source
 * (counts, dirty chunks), and once it is varied on again the next cycle catches up from its mark.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { pvCreate, varyOnVg, vgCreate, type VolumeGroup } from '../../../src/lvm/index.js'
import { MirrorEngine } from '../../../src/mirror/index.js'
import type { GateControl, ReplicationOptions } from '../../../src/replication/index.js'
import { SMALL_LAYOUT } from '../../helpers/lvm-fixture.js'
import { nbdkitUnavailable, serveNbdkit, type Nbdkit } from '../../helpers/nbdkit.js'
import { createVg, openRepl, PP, type ReplFixture } from '../../helpers/replication-fixture.js'

const skip = nbdkitUnavailable()
const LPS = 6

/** Gates of a natively served source, as the daemon's: the freeze is immediate here. */
const nativeGates: GateControl = {
  closeVolumeGates: async () => {},
  closeChunkGates: async () => {},
  remap: async () => {},
  freezeChunks: async (_vg, _lv, _chunks, atInstant) => { atInstant() },
  withVolumeClosed: async (_vg, _lv, step) => { await step() },
}

async function varyOnRemote(uri: string, fx: ReplFixture): Promise<{ vg: VolumeGroup, engine: MirrorEngine }> {
  const result = await varyOnVg({ vgName: 'dr', devices: [uri], flags: {} })
  if (result.vg === undefined) throw result.error ?? new Error(`vary-on of dr failed: ${result.rc}`)
  const engine = await MirrorEngine.start(result.vg)
  fx.repl.addEngine(engine)
  return { vg: result.vg, engine }
}

async function setUp(t: Test, options: { timeoutMs: string, onStep?: ReplicationOptions['onStep'] }): Promise<{ fx: ReplFixture, server: Nbdkit,
  remote: { vg: VolumeGroup, engine: MirrorEngine } }> {
  const previous = process.env['LVMFS_NBD_TIMEOUT_MS']
  process.env['LVMFS_NBD_TIMEOUT_MS'] = options.timeoutMs
  t.teardown(() => {
    if (previous === undefined) delete process.env['LVMFS_NBD_TIMEOUT_MS']
    else process.env['LVMFS_NBD_TIMEOUT_MS'] = previous
  })
  const dir = t.testdir()
  const file = join(dir, 'remote.img')
  writeFileSync(file, Buffer.alloc(8 << 20))
  const server = await serveNbdkit(t, ['file', file])
  await pvCreate(server.uri, { layout: SMALL_LAYOUT })
  await vgCreate({ name: 'dr', paths: [server.uri], ppSizeBytes: PP, layout: SMALL_LAYOUT })
  await createVg(dir, 'vg0')
  const fx = await openRepl(dir, ['vg0'], { gates: nativeGates, ...(options.onStep ? { onStep: options.onStep } : {}) })
  const remote = await varyOnRemote(server.uri, fx)
  t.teardown(async () => {
    await fx.close()
    await remote.engine.stop().catch(() => undefined)
    if (remote.vg.state === 'online') await remote.vg.varyOff().catch(() => undefined)
  })
  await fx.vgs.get('vg0')!.lvCreate({ name: 's', lpCount: LPS })
  const result = await fx.repl.replicate({ vg: 'vg0', lv: 's', name: 'm', type: 'mirror-async', pool: 'dr',
    intervalMs: 60_000 })
  t.equal(result.status, 'LSM_ERR_JOB_STARTED', 'a VG on an NBD export takes an async mirror')
  if (result.status === 'LSM_ERR_JOB_STARTED') t.equal((await fx.repl.waitJob(result.jobId)).state, 'COMPLETE')
  return { fx, server, remote }
}

/** A native write: the gate hook, then the bytes straight to the source (as the daemon does). */
async function nativeWrite(fx: ReplFixture, offset: number, byte: number, length = 1000): Promise<void> {
  await fx.repl.beforeWriteRegion('vg0', 's', Math.floor(offset / PP), PP)
  await fx.repl.io.write(fx.engines[0]!, fx.vgs.get('vg0')!.lvByName('s')!, Buffer.alloc(length, byte), offset)
}

async function sameBytes(fx: ReplFixture): Promise<boolean> {
  const source = Buffer.alloc(LPS * PP)
  const target = Buffer.alloc(LPS * PP)
  await fx.repl.read('vg0', 's', source, 0)
  await fx.repl.read('dr', 'm', target, 0)
  return source.equals(target)
}

/** Resolves with what `promise` gave, or 'pending' if it has not settled within `ms`. */
async function settledWithin<T>(promise: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: NodeJS.Timeout | undefined
  const pending = new Promise<'pending'>((resolve) => { timer = setTimeout(() => resolve('pending'), ms) })
  try {
    return await Promise.race([promise, pending])
  } finally {
    clearTimeout(timer)
  }
}

void t.test('async mirror into a VG on an NBD export: propagated, marks raised, bytes equal', { skip }, async (t) => {
  const { fx } = await setUp(t, { timeoutMs: '30000' })
  await nativeWrite(fx, PP + 10, 1)
  await nativeWrite(fx, 4 * PP + 10, 2)
  const mark = await fx.repl.propagate('dr', 'm')
  t.ok(mark > 0, `mark raised to ${mark}`)
  t.ok(await sameBytes(fx), 'the remote target equals the source')
  t.equal((await fx.repl.lag('dr', 'm')).commits, 0, 'no lag')
})

void t.test('a server that stops answering mid catch-up never holds a source write', { skip }, async (t) => {
  // Long enough that a source write waiting on the server would still be waiting when checked.
  // The server stops once the cycle staged its first chunk: every other one is frozen, unstaged.
  let server: Nbdkit | undefined
  let frozen!: () => void
  const atFreeze = new Promise<void>((resolve) => { frozen = resolve })
  const setup = await setUp(t, { timeoutMs: '60000', onStep: async (event) => {
    if (event.kind !== 'chunk' || server === undefined) return
    const stopping = server
    server = undefined
    await stopping.stop()
    frozen()
  } })
  const { fx } = setup
  for (let chunk = 0; chunk < LPS; chunk++) await nativeWrite(fx, chunk * PP + 100, 10 + chunk)
  server = setup.server
  const stopped = server
  const cycle = fx.repl.propagate('dr', 'm')
  cycle.catch(() => undefined)
  await atFreeze
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(await settledWithin(cycle, 0), 'pending', 'the cycle waits on the stopped server')
  const writes = Promise.all(Array.from({ length: LPS }, (_, chunk) => nativeWrite(fx, chunk * PP + 3000, 20 + chunk)))
  t.not(await settledWithin(writes, 10_000), 'pending',
    'source writes into frozen chunks complete while the target server is stopped')
  stopped.child.kill('SIGCONT')
  await cycle.catch(() => undefined)
  await fx.repl.propagate('dr', 'm')
  t.ok(await sameBytes(fx), 'after the server answers again the target catches up to the source')
})

void t.test('a target VG lost with its server: writes stay tracked, it catches up from its mark after vary-on',
  { skip }, async (t) => {
    const { fx, server, remote } = await setUp(t, { timeoutMs: '1000' })
    await nativeWrite(fx, 2 * PP, 1)
    const markBefore = await fx.repl.propagate('dr', 'm')
    await server.kill()
    const away = await varyOnVg({ vgName: 'dr', devices: [server.uri], flags: {} })
    t.match(away.error, { code: 'LVM_INVALID_PARAM', detail: /could not be read: nbd\+unix:.*ENGINE_IO/ },
      'a vary-on while the server is gone names the device it could not reach')
    await nativeWrite(fx, 3 * PP + 7, 2)
    await t.rejects(fx.repl.propagate('dr', 'm'), 'a cycle against the dead server fails')
    t.not(remote.vg.state, 'online', `the target VG went ${remote.vg.state} with its only PV`)
    for (let chunk = 0; chunk < LPS; chunk++) {
      t.not(await settledWithin(nativeWrite(fx, chunk * PP + 50, 30 + chunk), 10_000), 'pending',
        `source write into chunk ${chunk} completes while the target VG is gone`)
    }
    const restarted = await server.restart()
    await remote.engine.stop().catch(() => undefined)
    const back = await varyOnRemote(restarted.uri, fx)
    t.teardown(async () => {
      await back.engine.stop().catch(() => undefined)
      if (back.vg.state === 'online') await back.vg.varyOff().catch(() => undefined)
    })
    t.equal((await fx.repl.lag('dr', 'm')).lwm, markBefore, 'the mark survived on the remote superblock')
    const mark = await fx.repl.propagate('dr', 'm')
    t.ok(mark > markBefore, `the next cycle raised the mark from ${markBefore} to ${mark}`)
    t.ok(await sameBytes(fx), 'the target caught up: every write made while it was gone reached it')
  })

