/**
 * The resync rate controller's arithmetic with a fake clock (no timing): unlimited and
 * unthrottled without load or maximum; the maximum as a token bucket; under application I/O the
 * rate drops to the minimum and stays there, never below it; after the load ends it climbs back
 * over plan-ahead; the fill target bounds the bytes in flight; the measured rate and ETA.
 */
import t from 'tap'
import { ResyncRateController, type RateClock } from '../../../src/mirror/index.js'

const MiB = 1024 * 1024

function fakeClock(): RateClock & { nowMs: number, sleeps: number[] } {
  const clock = {
    nowMs: 0,
    sleeps: [] as number[],
    now: () => clock.nowMs,
    sleep: async (ms: number) => {
      clock.sleeps.push(ms)
      clock.nowMs += ms
    },
  }
  return clock
}

/** Copies `count` regions of `bytes` one after another, each taking `copyMs`; returns the MiB/s
 * achieved over the whole run (fake time). */
async function copies(controller: ResyncRateController, clock: ReturnType<typeof fakeClock>, count: number,
  bytes: number, copyMs: number, between?: () => void): Promise<number> {
  const started = clock.nowMs
  for (let index = 0; index < count; index++) {
    between?.()
    await controller.acquire(bytes)
    clock.nowMs += copyMs
    controller.release(bytes)
  }
  return count * bytes / MiB / ((clock.nowMs - started) / 1000)
}

/** The same for `ms` of fake time; returns MiB/s. */
async function copiesFor(controller: ResyncRateController, clock: ReturnType<typeof fakeClock>, ms: number,
  bytes: number, copyMs: number, between?: () => void): Promise<number> {
  const started = clock.nowMs
  let copied = 0
  while (clock.nowMs - started < ms) {
    between?.()
    await controller.acquire(bytes)
    clock.nowMs += copyMs
    controller.release(bytes)
    copied += bytes
  }
  return copied / MiB / ((clock.nowMs - started) / 1000)
}

void t.test('no load and no maximum: nothing waits (only the disk sets the pace)', async (t) => {
  const clock = fakeClock()
  const controller = new ResyncRateController({ appIo: () => 0 }, clock)
  const rate = await copies(controller, clock, 100, 4 * MiB, 2)
  t.same(clock.sleeps, [], 'no sleep at all')
  t.equal(Math.round(rate), 2000, '4 MiB per 2 ms: 2000 MiB/s, as fast as the copies go')
  t.equal(controller.snapshot().capBytesPerSecond, Number.POSITIVE_INFINITY)
})

void t.test('a maximum is a token bucket: the waits add up to bytes / rate', async (t) => {
  const clock = fakeClock()
  const controller = new ResyncRateController({ maxRateBytesPerSecond: 100 * MiB }, clock)
  for (let index = 0; index < 5; index++) await controller.acquire(10 * MiB)
  t.same(clock.sleeps, [100, 100, 100, 100], 'the first region goes at once, then one per 100 ms at 100 MiB/s')
  clock.nowMs += 1000
  await controller.acquire(10 * MiB)
  t.equal(clock.sleeps.length, 4, 'an idle second does not need a wait')
  await controller.acquire(10 * MiB)
  t.equal(clock.sleeps.length, 5, 'but it was not saved up beyond one step')
})

void t.test('under application I/O the rate drops to the minimum within a step, and never below it', async (t) => {
  const clock = fakeClock()
  let io = 0
  const controller = new ResyncRateController({ minRateBytesPerSecond: 10 * MiB, maxRateBytesPerSecond: 400 * MiB,
    appIo: () => io }, clock)
  // Unloaded: the maximum (1 MiB copies taking 1 ms would run at 1000 MiB/s); the bucket's one
  // step of burst (40 MiB) is 2 % of 5 s.
  const free = await copiesFor(controller, clock, 5000, MiB, 1)
  t.ok(free > 395 && free < 410, `unloaded: the maximum, 400 MiB/s (${free.toFixed(1)})`)
  t.notOk(controller.snapshot().loaded)
  // The application does I/O all the time (the counter moves before every copy): one step later
  // the cap is the minimum.
  const busy = (): void => { io += 7 }
  await copiesFor(controller, clock, 2 * 100, MiB, 1, busy)
  t.ok(controller.snapshot().loaded, 'the load was seen')
  t.equal(controller.snapshot().capBytesPerSecond, 10 * MiB, 'the cap is the minimum')
  const loaded = await copiesFor(controller, clock, 10_000, MiB, 1, busy)
  t.ok(loaded >= 9.9 && loaded <= 10.2, `under load: the minimum, 10 MiB/s (${loaded.toFixed(2)})`)
  // Light load (one operation per 300 ms) still counts in the steps that see it; resync keeps
  // at least the minimum all along.
  let last = clock.nowMs
  const light = await copiesFor(controller, clock, 10_000, MiB, 1, () => {
    if (clock.nowMs - last >= 300) {
      io += 1
      last = clock.nowMs
    }
  })
  t.ok(light >= 10, `light load: at least the minimum (${light.toFixed(2)} MiB/s)`)
  t.ok(light < 400, 'and below the maximum (the steps that saw the load were throttled)')
})

void t.test('after the load ends the cap climbs back linearly over plan-ahead, then the maximum', async (t) => {
  const clock = fakeClock()
  let io = 0
  const controller = new ResyncRateController({ minRateBytesPerSecond: 10 * MiB, maxRateBytesPerSecond: 110 * MiB,
    planAheadMs: 1000, appIo: () => io }, clock)
  await copiesFor(controller, clock, 500, MiB, 1, () => { io += 1 })
  t.equal(controller.snapshot().capBytesPerSecond, 10 * MiB, 'loaded: the minimum')
  const loadEndedAt = clock.nowMs
  // No more I/O: the next step samples an unchanged counter.
  const caps: Array<[number, number]> = []
  while (clock.nowMs - loadEndedAt < 1400) {
    await controller.acquire(MiB)
    clock.nowMs += 1
    controller.release(MiB)
    caps.push([clock.nowMs - loadEndedAt, controller.snapshot().capBytesPerSecond])
  }
  const capAt = (ms: number): number => caps.find(([at]) => at >= ms)![1]
  const half = capAt(600)
  t.ok(half > 50 * MiB && half < 80 * MiB, `half-way: between min and max (${(half / MiB).toFixed(1)} MiB/s)`)
  t.ok(capAt(300) < capAt(600) && capAt(600) < capAt(900), 'rising')
  t.equal(capAt(1300), 110 * MiB, 'after plan-ahead: the maximum')
})

void t.test('no maximum: after the load the ramp tops out at the best rate seen, then lifts', async (t) => {
  const clock = fakeClock()
  let io = 0
  const controller = new ResyncRateController({ minRateBytesPerSecond: 10 * MiB, planAheadMs: 1000,
    appIo: () => io }, clock)
  await copies(controller, clock, 1000, MiB, 2)  // 500 MiB/s free-running
  await copiesFor(controller, clock, 500, MiB, 1, () => { io += 1 })
  t.equal(controller.snapshot().capBytesPerSecond, 10 * MiB)
  const ended = clock.nowMs
  let capMid = 0
  while (clock.nowMs - ended < 1300) {
    await controller.acquire(MiB)
    clock.nowMs += 2
    controller.release(MiB)
    if (capMid === 0 && clock.nowMs - ended >= 500) capMid = controller.snapshot().capBytesPerSecond
  }
  t.ok(capMid > 200 * MiB && capMid < 320 * MiB, `half-way to 500 MiB/s (${(capMid / MiB).toFixed(0)})`)
  t.equal(controller.snapshot().capBytesPerSecond, Number.POSITIVE_INFINITY, 'then no cap at all')
})

void t.test('the fill target bounds the bytes in flight; one copy always may run', async (t) => {
  const clock = fakeClock()
  const controller = new ResyncRateController({ fillTargetBytes: 8 * MiB }, clock)
  await controller.acquire(4 * MiB)
  await controller.acquire(4 * MiB)
  let third = false
  const pending = controller.acquire(4 * MiB).then(() => { third = true })
  await new Promise((resolve) => setImmediate(resolve))
  t.notOk(third, 'a third 4 MiB copy waits while 8 MiB are in flight')
  t.equal(controller.snapshot().inflightBytes, 8 * MiB)
  controller.release(4 * MiB)
  await pending
  t.ok(third, 'it starts once one finishes')
  const big = new ResyncRateController({ fillTargetBytes: MiB }, clock)
  await big.acquire(16 * MiB)
  t.equal(big.snapshot().inflightBytes, 16 * MiB, 'a copy larger than the fill target runs alone')
})

void t.test('the measured rate is completed bytes over the plan-ahead window', async (t) => {
  const clock = fakeClock()
  const controller = new ResyncRateController({ planAheadMs: 2000 }, clock)
  t.equal(controller.snapshot().rateBytesPerSecond, undefined, 'nothing measured yet')
  await copies(controller, clock, 100, 4 * MiB, 40)  // 100 MiB/s for 4 s
  t.equal(Math.round(controller.snapshot().rateBytesPerSecond! / MiB), 100)
  await copies(controller, clock, 100, 4 * MiB, 10)  // then 400 MiB/s for 1 s
  const rate = controller.snapshot().rateBytesPerSecond! / MiB
  t.ok(rate > 200 && rate < 300, `the window mixes the last 2 s: 1 s at 100 and 1 s at 400 (${rate.toFixed(0)})`)
})

void t.test('bounds are checked: min above max is capped to max; nonpositive values refused', async (t) => {
  const controller = new ResyncRateController({ minRateBytesPerSecond: 50 * MiB, maxRateBytesPerSecond: 20 * MiB })
  t.equal(controller.minRate, 20 * MiB)
  t.throws(() => new ResyncRateController({ maxRateBytesPerSecond: 0 }))
  t.throws(() => new ResyncRateController({ fillTargetBytes: -1 }))
})
