// Shared VGs in the lvm layer: the `shared` descriptor key, the value-block codec, shared vary-on,
// reloadOnlineVg, and SharedVgLock over a real broker with two OnlineVgs on one set of devices
// (what two processes see), including a holder that dies in EX after its commit.
import t from 'tap'
import { LvmfsError } from '../../../src/errors/index.js'
import { decodeDescriptorBody, encodeDescriptorBody } from '../../../src/format/index.js'
import {
  OnlineVg, SharedVgLock, decodeSeqs, descriptorProblems, encodeSeqs, reloadOnlineVg, vgCreate,
  varyOnVg, type VgChangeEvent,
} from '../../../src/lvm/index.js'
import { brokerFixture } from '../../helpers/dlm-broker.js'
import { PP_BYTES, Pool, SMALL_LAYOUT, makeVg } from '../../helpers/lvm-fixture.js'

async function sharedPool(): Promise<{ pool: Pool; vgId: string }> {
  const pool = new Pool(2)
  const d = await vgCreate({ name: 'svg', paths: pool.paths, ppSizeBytes: PP_BYTES, opener: pool.opener,
    layout: SMALL_LAYOUT, shared: true })
  return { pool, vgId: d.vgId }
}

/** A shared vary-on as another process would do it (no registry: each is on its own). */
async function varyOnShared(pool: Pool): Promise<OnlineVg> {
  const result = await varyOnVg({ vgName: 'svg', devices: pool.paths, opener: pool.opener, shared: true })
  if (!(result.vg instanceof OnlineVg)) throw result.error ?? new Error(result.rc)
  return result.vg
}

function nextChange(vg: OnlineVg, kind: VgChangeEvent['kind']): Promise<VgChangeEvent> {
  return new Promise((resolve) => {
    const off = vg.onChange((event) => {
      if (event.kind === kind) { off(); resolve(event) }
    })
  })
}

t.test('value block codec', async (t) => {
  const bytes = encodeSeqs({ descriptorSeq: 7, statusSeq: 2 ** 40 })
  t.equal(bytes.length, 16)
  t.same(decodeSeqs(bytes), { descriptorSeq: 7, statusSeq: 2 ** 40 }, 'round trip')
  t.equal(decodeSeqs(new Uint8Array(16)), undefined, 'zero-filled (after validate) is unknown')
  t.equal(decodeSeqs(new Uint8Array(0)), undefined, 'never written is unknown')
  t.equal(decodeSeqs(new Uint8Array(8).fill(1)), undefined, 'another length is unknown')
})

t.test('descriptor key shared: optional, only true', async (t) => {
  const pool = new Pool(1)
  const plain = await makeVg(pool, 'plain')
  const body = new TextDecoder().decode(encodeDescriptorBody(plain))
  t.notMatch(body, /shared/, 'a non-shared descriptor has no shared key (bytes as before)')
  t.equal(decodeDescriptorBody(encodeDescriptorBody(plain)).shared, undefined)
  const shared = { ...plain, shared: true }
  t.equal(decodeDescriptorBody(encodeDescriptorBody(shared)).shared, true, 'round trip')
  const bad = new TextEncoder().encode(body.replace(/}$/, ',"shared":false}'))
  t.throws(() => decodeDescriptorBody(bad), { code: 'ENGINE_CORRUPT' }, '"shared": false is corrupt')
})

t.test('shared vary-on: refused for a non-shared VG, no claim for a shared one', async (t) => {
  const pool = new Pool(2)
  await makeVg(pool, 'plain')
  const refused = await varyOnVg({ vgName: 'plain', devices: pool.paths, opener: pool.opener, shared: true })
  t.equal(refused.rc, 'LVM_INVCONFIG')
  t.match(refused.error?.message, /"plain" is not shared/)
  t.equal(refused.vg, undefined)
  const claims: boolean[] = []
  const { pool: sp } = await sharedPool()
  const opener: typeof sp.opener = async (path, options) => {
    claims.push(options.exclusive === true)
    return await sp.opener(path, options)
  }
  const result = await varyOnVg({ vgName: 'svg', devices: sp.paths, opener, shared: true })
  t.equal(result.rc, 'LVM_SUCCESS')
  t.ok(claims.length > 0 && claims.every((c) => !c), 'no device opened with the exclusive claim')
  await result.vg!.varyOff()
})

t.test('reloadOnlineVg adopts what another OnlineVg committed', async (t) => {
  const { pool } = await sharedPool()
  const one = await varyOnShared(pool)
  const two = await varyOnShared(pool)
  await one.lvCreate({ name: 'x', lpCount: 3 })
  t.equal(two.lvByName('x'), undefined, 'not seen before the reload')
  const changed = nextChange(two, 'descriptor')
  t.equal(await two.unguarded(() => reloadOnlineVg(two)), true, 'reload reports a change')
  await changed
  t.equal(two.lvByName('x')?.lps.length, 3, 'seen after it, with change event')
  t.equal(await two.unguarded(() => reloadOnlineVg(two)), false, 'a second reload changes nothing')
  await two.lvCreate({ name: 'y', lpCount: 2 })
  t.equal(two.descriptor.seq, one.descriptor.seq + 1, 'commits continue from the reloaded seq')
  await one.unguarded(() => reloadOnlineVg(one))
  t.same(one.descriptor.lvs.map((lv) => lv.name), ['x', 'y'])
  t.same(descriptorProblems(one.descriptor), [], 'no PP allocated twice')
  await one.varyOff()
  await two.varyOff()
})

t.test('SharedVgLock: commits alternate under EX and the other side reloads', async (t) => {
  const broker = brokerFixture(t)
  const { pool, vgId } = await sharedPool()
  const c1 = await broker.connect()
  const c2 = await broker.connect()
  const l1 = await SharedVgLock.acquire({ dlm: c1, vgId })
  const one = await varyOnShared(pool)
  await l1.attach(one)
  t.equal(l1.mode, 'PR', 'PR while idle')
  // The second acquire converts to EX: the first gets a blocking notification and yields.
  const l2 = await SharedVgLock.acquire({ dlm: c2, vgId })
  const two = await varyOnShared(pool)
  await l2.attach(two)
  const seen = nextChange(two, 'descriptor')
  await one.lvCreate({ name: 'x', lpCount: 2 })
  await seen
  t.equal(two.lvByName('x')?.lps.length, 2, 'the PR holder reloaded after the other\'s commit')
  t.equal(two.descriptor.seq, one.descriptor.seq)
  const back = nextChange(one, 'descriptor')
  await two.lvExtend('x', 1)
  await back
  t.equal(one.lvByName('x')?.lps.length, 3, 'and the other way round')
  await Promise.all([one.lvCreate({ name: 'p', lpCount: 1 }), two.lvCreate({ name: 'q', lpCount: 1 })])
  await one.unguarded(async () => undefined)
  await two.lvCreate({ name: 'r', lpCount: 1 })
  t.same(two.descriptor.lvs.map((lv) => lv.name).sort(), ['p', 'q', 'r', 'x'], 'concurrent creates both kept')
  t.same(descriptorProblems(two.descriptor), [])
  t.equal(l1.recoveries + l2.recoveries, 0, 'no recovery without a death')
  await one.varyOff()
  await two.varyOff()
  await l1.release()
  await l2.release()
})

t.test('SharedVgLock: a holder that dies in EX after its commit is recovered from disk', async (t) => {
  const broker = brokerFixture(t)
  const { pool, vgId } = await sharedPool()
  const c1 = await broker.connect({ reconnect: false })
  const c2 = await broker.connect()
  let die = false
  const l1 = await SharedVgLock.acquire({ dlm: c1, vgId, afterCommit: async () => {
    // The socket closing is the process's death for the broker; the PR conversion then fails.
    if (die) await c1.close()
  } })
  const one = await varyOnShared(pool)
  await l1.attach(one)
  const l2 = await SharedVgLock.acquire({ dlm: c2, vgId })
  const two = await varyOnShared(pool)
  await l2.attach(two)
  die = true
  await t.rejects(one.lvCreate({ name: 'dead', lpCount: 2 }), LvmfsError, 'the dying commit reports the lost lock')
  await two.lvCreate({ name: 'alive', lpCount: 1 })
  t.ok(l2.recoveries >= 1, 'collect → reload → validate ran')
  t.same(two.descriptor.lvs.map((lv) => lv.name), ['dead', 'alive'], 'the dead holder\'s committed LV is kept')
  t.same(descriptorProblems(two.descriptor), [])
  await one.varyOff()
  await two.varyOff()
  await l2.release()
})
