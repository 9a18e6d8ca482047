/**
 * The broker through real processes: a holder of EX killed with -9 (20 times), a collector killed
 * between collect and validate, a broker restart that must not grant conflicting locks, the
 * socket mode, and protocol-level codes (DLM_EFAULT). Survivors are DlmClients in this process;
 * holders and collectors are child processes. No timed assertions: every wait is bounded only so
 * a broken build fails instead of hanging.
 */
import { connect } from 'node:net'
import { statSync } from 'node:fs'
import t from 'tap'
import { DlmClient, type DlmLock } from '../../../src/dlm/client.js'
import { writeSessions } from '../../../src/dlm/broker-files.js'
import { FrameDecoder, encodeFrame } from '../../../src/dlm/protocol.js'
import { brokerFixture } from '../../helpers/dlm-broker.js'

const KILLS = Number(process.env['LVMFS_DLM_KILLS'] ?? 50)

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex')
}

void t.test('kill -9 of an EX holder: the survivor sees the invalid value block, recovers, gets the lock',
  async (t) => {
    const fixture = brokerFixture(t)
    const survivor = await fixture.connect()
    const rd = await survivor.attach('rd:vg1')
    const socketMode = statSync(fixture.socketPath).mode & 0o777
    t.equal(socketMode, 0o600, 'the broker socket is root-only')
    const spawnHolder = (round: number): ReturnType<typeof fixture.child> =>
      fixture.child(['hold-ex', 'VG:1', `c0de${round.toString(16).padStart(4, '0')}`,
        round === 0 ? 'persistent' : ''], { waitGo: true })
    let next = spawnHolder(0)
    for (let round = 0; round < KILLS; round++) {
      const value = `c0de${round.toString(16).padStart(4, '0')}`
      const holder = next
      await holder.line('ready')
      holder.go()
      await holder.line('held')
      if (round + 1 < KILLS) next = spawnHolder(round + 1) // starts while this round runs
      const recovery = new Promise<string>((resolve) => survivor.onRecoveryNeeded((_rd, name) => resolve(name)))
      const waiting = survivor.lock('VG:1', 'EX', { rd, timeoutMs: 60_000 })
      await holder.kill9()
      t.equal(await recovery, 'rd:vg1', `round ${round}: told to recover`)
      let lock: DlmLock
      if (round === 0) {
        // A persistent lock stays as an orphan: the survivor must recover before it is granted.
        const collection = await survivor.collect(rd)
        t.same(collection.resources, ['VG:1'])
        t.same(await survivor.validate(rd, collection.handle), { status: 'DLM_SUCCESS', validated: ['VG:1'] })
        lock = await waiting
        t.equal(lock.valueBlockValid, true, 'granted after validate: valid, zeroed')
      } else {
        lock = await waiting
        t.equal(lock.valueBlockValid, false, `round ${round}: value block not valid`)
        // Queued behind the dying holder (SUCC) or granted at once when its death was processed
        // before the request arrived (SYNC): both report the invalid value block.
        t.match(lock.status, /^DLM_S(UCC|YNC)VALNOTVALID$/)
        t.equal(hex(lock.valueBlock), value, 'the last written value comes with the flag')
        const collection = await survivor.collect(rd)
        t.same(collection.resources, ['VG:1'])
        t.same((await survivor.validate(rd, collection.handle)).status, 'DLM_SUCCESS')
      }
      await lock.unlock()
    }
    const after = await survivor.lock('VG:1', 'PR', { rd })
    t.equal(after.valueBlockValid, true)
    await after.unlock()
  })

void t.test('a collector killed between collect and validate gives its collection back', async (t) => {
  const fixture = brokerFixture(t)
  const survivor = await fixture.connect()
  const rd = await survivor.attach('rd:vg1')
  const holder = fixture.child(['hold-ex', 'VG:1', 'aa'])
  await holder.line('held')
  await holder.kill9()
  const collector = fixture.child(['collect'])
  const collected = JSON.parse(await collector.line('collected')) as { resources: string[] }
  t.same(collected.resources, ['VG:1'])
  await t.rejects(survivor.collect(rd), { code: 'DLM_EALREADY' }, 'collected elsewhere, not validated')
  await collector.kill9()
  let collection: { handle: number, resources: string[] } | undefined
  for (let attempt = 0; attempt < 200 && collection === undefined; attempt++) {
    try {
      collection = await survivor.collect(rd)
    } catch (error) {
      if ((error as { code?: string }).code !== 'DLM_EALREADY') throw error
      await new Promise((resolve) => setTimeout(resolve, 25)) // the broker has not seen the death yet
    }
  }
  t.same(collection?.resources, ['VG:1'], 'collected again by the survivor')
  t.same((await survivor.validate(rd, collection!.handle)).status, 'DLM_SUCCESS')
  const snapshot = await survivor.describe()
  t.equal(snapshot.domains[0]?.state, 'recovered')
})

void t.test('a broker restart does not grant a lock that conflicts with a re-asserted one', async (t) => {
  const fixture = brokerFixture(t)
  const holder = await fixture.connect()
  const lock = await holder.lock('VG:1', 'EX')
  await lock.convert('EX')
  await fixture.killBroker('SIGKILL')
  const other = await fixture.connect({ graceRetryMs: 60_000 })
  let granted = false
  const waiting = other.lock('VG:1', 'EX').then((l) => {
    granted = true
    return l
  })
  for (let i = 0; i < 400 && holder.grace === false && (await other.describe()).resources.length === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  const snapshot = await other.describe()
  const resource = snapshot.resources.find((r) => r.name === 'VG:1')
  t.equal(resource?.holders.length, 1, 'the holder re-asserted its EX')
  t.equal(resource?.holders[0]?.grantedMode, 'EX')
  t.equal(granted, false, 'the other process is not granted while the holder keeps EX')
  await lock.unlock()
  const second = await waiting
  t.equal(second.mode, 'EX')
  await second.unlock()
})

void t.test('grace period: DLM_RETRY until the listed sessions have said hello', async (t) => {
  const fixture = brokerFixture(t)
  const { mkdirSync } = await import('node:fs')
  const { dirname } = await import('node:path')
  mkdirSync(dirname(fixture.socketPath), { recursive: true })
  writeSessions(fixture.socketPath, ['ghost'])
  const early = await fixture.connect({ graceRetryMs: 0 })
  t.equal(early.grace, true)
  await t.rejects(early.lock('R', 'PR'), { code: 'DLM_RETRY' })
  await fixture.connect({ session: 'ghost' })
  const lock = await early.lock('R', 'PR')
  t.equal(lock.mode, 'PR', 'granted once the last listed session is back')
})

void t.test('protocol: DLM_EFAULT for missing argument objects and handles; DLM_NOTATTACHED before hello',
  async (t) => {
    const fixture = brokerFixture(t)
    await fixture.connect() // starts the broker
    const socket = connect(fixture.socketPath)
    t.teardown(() => socket.destroy())
    const decoder = new FrameDecoder()
    const replies: Array<{ id: number, ok: boolean, error?: { code: string } }> = []
    const done = new Promise<void>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        replies.push(...decoder.push(chunk) as typeof replies)
        if (replies.length >= 5) resolve()
      })
    })
    socket.write(Buffer.concat([
      encodeFrame({ id: 1, op: 'rdCollect' }),
      encodeFrame({ id: 2, op: 'rdCollect', args: { rdId: 1 } }),
      encodeFrame({ id: 3, op: 'hello', args: { pid: process.pid } }),
      encodeFrame({ id: 4, op: 'rdValidate', args: { rdId: 1 } }),
      encodeFrame({ id: 5, op: 'lock', args: { namespace: 'lvmfs', mode: 'EX' } }),
    ]))
    await done
    t.same(replies.map((r) => r.error?.code ?? 'ok'),
      ['DLM_EFAULT', 'DLM_NOTATTACHED', 'ok', 'DLM_EFAULT', 'DLM_EFAULT'])
  })

void t.test('client: DLM_NOTQUEUED, DLM_TIMEOUT, abort, blocking notification, ENOSYS without broker',
  async (t) => {
    const fixture = brokerFixture(t)
    const a = await fixture.connect()
    const b = await fixture.connect()
    const held = await a.lock('R', 'PW')
    const blocked = new Promise((resolve) => held.onBlocking(resolve))
    await t.rejects(b.lock('R', 'PR', { noQueue: true }), { code: 'DLM_NOTQUEUED' })
    await t.rejects(b.lock('R', 'PR', { timeoutMs: 50 }), { code: 'DLM_TIMEOUT' })
    t.equal(await blocked, 'PR')
    const controller = new AbortController()
    const aborted = b.lock('R', 'EX', { signal: controller.signal })
    setTimeout(() => controller.abort(), 20)
    await t.rejects(aborted, { code: 'DLM_ABORT' })
    await t.rejects(b.collect(7), { code: 'DLM_IVRDID' })
    await t.rejects(b.collect(0), { code: 'DLM_BADPARAM' })
    await t.rejects(DlmClient.connect({ socketPath: `${fixture.socketPath}.none`, startBroker: false }),
      { code: 'DLM_ENOSYS' })
    await held.unlock()
  })

void t.test('broker death: requests in flight fail with DLM_INTR and granted locks survive', async (t) => {
  const fixture = brokerFixture(t)
  const holder = await fixture.connect()
  const waiter = await fixture.connect({ startBroker: false, reconnect: false })
  const held = await holder.lock('R', 'EX')
  const waiting = waiter.lock('R', 'EX')
  const interrupted = t.rejects(waiting, { code: 'DLM_INTR' })
  await waiter.describe() // the lock request has been queued by the broker before this answers
  await fixture.killBroker('SIGKILL')
  await interrupted
  const again = await fixture.connect()
  let snapshot = await again.describe()
  for (let i = 0; i < 400 && snapshot.resources.length === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 25))
    snapshot = await again.describe()
  }
  t.equal(snapshot.resources[0]?.holders[0]?.grantedMode, 'EX', 're-asserted after the restart')
  await held.unlock()
})

const notRoot = process.getuid?.() === 0 ? false : 'needs root to run a child as another user'

void t.test('the socket is root-only: another user gets DLM_NOACCESS', { skip: notRoot }, async (t) => {
  const fixture = brokerFixture(t)
  await fixture.connect()
  const { chmodSync } = await import('node:fs')
  const { dirname, join } = await import('node:path')
  const { spawnSync } = await import('node:child_process')
  chmodSync(dirname(fixture.socketPath), 0o755) // only the socket's own mode may refuse
  const root = new URL('../../../', import.meta.url).pathname
  const result = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'test/helpers/dlm-noaccess.ts'),
    fixture.socketPath], { uid: 65534, gid: 65534, encoding: 'utf8', timeout: 60_000,
    env: { ...process.env, HOME: '/tmp' } })
  t.equal(result.stdout.trim(), 'DLM_NOACCESS', result.stderr)
})
