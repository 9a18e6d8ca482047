/**
 * GateKeeper.quiesce: while a caller holds a volume, no gate of it is being opened, so closing
 * gates inside gives one instant after which every write passes the pin again. An open whose
 * pin is running when quiesce is asked finishes first; an open asked while quiesce waits or
 * runs starts only after it.
 */
import t from 'tap'
import { GateKeeper } from '../../../src/engine/gate-keeper.js'

function deferred(): { promise: Promise<void>, resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((r) => { resolve = r })
  return { promise, resolve }
}

void t.test('quiesce waits for running opens and holds back new ones', async (t) => {
  const events: string[] = []
  const pins = new Map<number, ReturnType<typeof deferred>>()
  const keeper = new GateKeeper({
    setGate: (_nodeid, region, open) => { events.push(`${open ? 'open' : 'close'} ${region}`) },
    drainWrites: async () => { events.push('drain') },
    pin: async (_nodeid, region) => {
      events.push(`pin ${region}`)
      const pin = deferred()
      pins.set(region, pin)
      await pin.promise
      return 16
    },
    unpin: (_nodeid, region) => { events.push(`unpin ${region}`) },
  }, 16)

  const first = keeper.openGate(7, 1)
  await new Promise((resolve) => setImmediate(resolve))
  t.same(events, ['pin 1'], 'the first open is pinning')

  let quiesced = false
  const quiesce = keeper.quiesce(7, async () => {
    quiesced = true
    events.push('quiesce')
    await keeper.closeGate(7, 1)
  })
  const second = keeper.openGate(7, 2)
  await new Promise((resolve) => setImmediate(resolve))
  t.notOk(quiesced, 'quiesce waits for the open in progress')
  t.notOk(events.includes('pin 2'), 'an open asked while quiesce waits does not start')

  pins.get(1)!.resolve()
  await first
  await quiesce
  await new Promise((resolve) => setImmediate(resolve))
  t.same(events.slice(0, 6), ['pin 1', 'open 1', 'quiesce', 'close 1', 'drain', 'unpin 1'],
    'the running open completes, then quiesce closes its gate')
  t.equal(events[6], 'pin 2', 'the held-back open starts after quiesce')
  pins.get(2)!.resolve()
  await second
  t.equal(keeper.openCount, 1)
})

void t.test('quiesce of one volume does not hold back another', async (t) => {
  const keeper = new GateKeeper({
    setGate: () => undefined, drainWrites: async () => undefined, pin: async () => 16, unpin: () => undefined,
  }, 16)
  const release = deferred()
  const held = keeper.quiesce(1, () => release.promise)
  await keeper.openGate(2, 0)
  t.equal(keeper.openCount, 1, 'volume 2 opened while volume 1 is quiesced')
  release.resolve()
  await held
})

void t.test('only gates whose pin holds an activity-log entry count, each volume against its own bound', async (t) => {
  const closed: string[] = []
  const keeper = new GateKeeper({
    setGate: (nodeid, region, open) => { if (!open) closed.push(`${nodeid}:${region}`) },
    drainWrites: async () => undefined,
    // Volumes 1 and 3 pin activity-log entries (MWC active, al-extents 4 and 2); volume 2 holds
    // nothing (MWC off).
    pin: async (nodeid) => nodeid === 1 ? 4 : nodeid === 3 ? 2 : undefined,
    unpin: () => undefined,
  })
  for (let region = 0; region < 100; region++) await keeper.openGate(2, region)
  t.equal(keeper.openCount, 100, 'a hundred unbounded gates stay open')
  t.same(closed, [], 'none was evicted')
  for (let region = 0; region < 6; region++) await keeper.openGate(1, region)
  t.same(closed, ['1:0', '1:1'], 'the bound evicts the oldest bounded gates of that volume only')
  for (let region = 0; region < 3; region++) await keeper.openGate(3, region)
  t.same(closed, ['1:0', '1:1', '3:0'], 'another volume is bounded by its own al-extents')
  t.equal(keeper.openCount, 100 + 4 + 2)
  const capped = new GateKeeper({ setGate: () => undefined, drainWrites: async () => undefined,
    pin: async () => 1000, unpin: () => undefined }, 3)
  for (let region = 0; region < 10; region++) await capped.openGate(1, region)
  t.equal(capped.openCount, 3, 'maxOpen caps every bound')
})
