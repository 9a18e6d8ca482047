/**
 * The etcd backend against a real etcd on loopback: FIFO grants by revision, value blocks written
 * in ownership-checked transactions, a holder whose lease expires treated as dead (its EX value
 * block becomes not valid), collect/validate and its codes, noQueue and blocking notifications.
 * Skipped with a reason when /usr/bin/etcd is missing.
 */
import t from 'tap'
import { EtcdDlmClient } from '../../../src/dlm/etcd-client.js'
import { ETCD_BINARY, startEtcd } from '../../helpers/etcd.js'
import { existsSync } from 'node:fs'

const TTL_SECONDS = 2

const skip = existsSync(ETCD_BINARY) ? false : `${ETCD_BINARY} is missing (Debian package etcd-server)`

void t.test('etcd backend', { skip }, async (t) => {
  const url = await startEtcd(t)
  if (url === null) return
  const clients: EtcdDlmClient[] = []
  const connect = async (): Promise<EtcdDlmClient> => {
    const client = await EtcdDlmClient.connect({ hosts: url, ttlSeconds: TTL_SECONDS })
    clients.push(client)
    return client
  }
  t.teardown(() => Promise.all(clients.map((client) => client.close().catch(() => {}))))

  await t.test('grants in revision order; value blocks; noQueue; blocking notification', async (t) => {
    const [a, b, c] = [await connect(), await connect(), await connect()]
    const held = await a.lock('R', 'PR')
    t.equal(held.status, 'DLM_SYNCH')
    const blocked = new Promise((resolve) => held.onBlocking(resolve))
    let order: string[] = []
    const ex = b.lock('R', 'EX').then((lock) => {
      order.push('EX')
      return lock
    })
    t.equal(await blocked, 'EX')
    const pr = c.lock('R', 'PR').then((lock) => {
      order.push('PR')
      return lock
    })
    await t.rejects(c.lock('R', 'NL', { noQueue: true }), { code: 'DLM_NOTQUEUED' }, 'strict FIFO, as the broker')
    await held.unlock()
    const exLock = await ex
    await exLock.convert('PW', { valueBlock: Uint8Array.from([7, 7]) })
    await exLock.unlock({ valueBlock: Uint8Array.from([9]) })
    const prLock = await pr
    t.same(order, ['EX', 'PR'], 'PR waited behind the earlier EX although compatible with the holder')
    t.same([...prLock.valueBlock], [9])
    t.equal(prLock.valueBlockValid, true)
    await prLock.unlock()
    order = []
  })

  await t.test('conversions go before waiting requests; a conversion deadlock is refused', async (t) => {
    const [a, b, c] = [await connect(), await connect(), await connect()]
    const la = await a.lock('C', 'PR')
    const lc = await c.lock('C', 'PR')
    let bGranted = false
    const lb = b.lock('C', 'EX').then((lock) => {
      bGranted = true
      return lock
    })
    const waitingKeys = async (count: number): Promise<number> => {
      for (let attempt = 0; attempt < 400; attempt++) {
        const values = Object.values(await a.etcd.getAll().prefix('/lvmfs-dlm/lvmfs/q/C/').json()) as
          Array<{ granted: boolean }>
        const pending = values.filter((value) => !value.granted).length
        if (pending >= count) return pending
        await new Promise((resolve) => setTimeout(resolve, 25))
      }
      return -1
    }
    t.equal(await waitingKeys(1), 1, 'B waits')
    const up = la.convert('EX')
    t.equal(await waitingKeys(2), 2, 'A\'s conversion is queued too')
    await t.rejects(lc.convert('EX'), { code: 'DLM_DEADLOCK' })
    await lc.unlock()
    const converted = await up
    t.equal(converted.mode, 'EX', 'the conversion was granted ahead of the waiting EX request')
    t.equal(bGranted, false)
    await converted.unlock()
    await (await lb).unlock()
  })

  await t.test('lease expiry of an EX holder: not-valid value block, collect, validate', async (t) => {
    const [dead, survivor] = [await connect(), await connect()]
    const rdDead = await dead.attach('rd:vg1')
    const rd = await survivor.attach('rd:vg1')
    const recovery = new Promise<string>((resolve) => survivor.onRecoveryNeeded((_rd, name) => resolve(name)))
    const held = await dead.lock('VG:1', 'EX', { rd: rdDead })
    await held.convert('PW', { valueBlock: Uint8Array.from([1, 2, 3]) })
    await held.convert('EX')
    const waiting = survivor.lock('VG:1', 'EX', { rd })
    await dead.abandon()
    const lock = await waiting
    t.equal(lock.valueBlockValid, false, 'the dead holder\'s value block is not valid')
    t.equal(lock.status, 'DLM_SUCCVALNOTVALID')
    t.same([...lock.valueBlock], [1, 2, 3])
    t.equal(await recovery, 'rd:vg1')
    const collection = await survivor.collect(rd)
    t.same(collection.resources, ['VG:1'])
    await t.rejects(survivor.collect(rd), { code: 'DLM_EALREADY' })
    await t.rejects(survivor.validate(rd, collection.handle + 1), { code: 'DLM_IVHNDL' })
    await t.rejects(survivor.detach(rd), { code: 'DLM_HASLOCKS' })
    t.same(await survivor.validate(rd, collection.handle), { status: 'DLM_SUCCESS', validated: ['VG:1'] })
    await lock.unlock()
    const again = await survivor.lock('VG:1', 'PR', { rd })
    t.equal(again.valueBlockValid, true)
    t.same([...again.valueBlock], [0, 0, 0], 'validate zeroed it')
    await again.unlock()
    await t.rejects(survivor.collect(99), { code: 'DLM_IVRDID' })
    await t.rejects(survivor.collect(rd, 1), { code: 'DLM_BADPARAM' })
    await survivor.detach(rd)
  })
})
