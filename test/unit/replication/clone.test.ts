/**
 * Clones (copy-on-write at partition granularity) against an in-memory model: random
 * interleavings of writes to an origin and its clones must read back exactly as the model says;
 * creation writes a constant number of bytes whatever the origin's size; a full pool
 * invalidates the clone and never fails the origin; removing an origin with clones fails with
 * LSM_ERR_HAS_CHILD_DEPENDENCY naming them; the chunk map survives a restart.
 */
import t from 'tap'
import { createVg, openRepl, prng, PP, writeCounter } from '../../helpers/replication-fixture.js'

t.test('random interleavings of origin and clone writes match the model, across a restart', async (t) => {
  const dir = t.testdir()
  await createVg(dir, 'vg0', 1, 16 * 1024 * 1024)
  const seed = Number(process.env['SEED'] ?? 7)
  const random = prng(seed)
  let fx = await openRepl(dir, ['vg0'])
  const lps = 12
  await fx.vgs.get('vg0')!.lvCreate({ name: 'o', lpCount: lps })
  const model = new Map<string, Buffer>([['o', Buffer.alloc(lps * PP)]])
  const write = async (name: string): Promise<void> => {
    const length = 1 + Math.floor(random() * 3 * 4096)
    const offset = Math.floor(random() * (lps * PP - length))
    const data = Buffer.alloc(length, Math.floor(random() * 255) + 1)
    await fx.repl.write('vg0', name, data, offset)
    data.copy(model.get(name)!, offset)
  }
  for (let step = 0; step < 120; step++) {
    const roll = random()
    const names = [...model.keys()]
    if (roll < 0.06 && model.size < 4) {
      const name = `c${model.size}`
      const result = await fx.repl.replicate({ vg: 'vg0', lv: 'o', name, type: 'clone' })
      t.equal(result.status, 'LSM_ERR_OK', `clone ${name} created at step ${step}`)
      model.set(name, Buffer.from(model.get('o')!))
    } else if (roll < 0.08) {
      await fx.close()
      fx = await openRepl(dir, ['vg0'])
    } else {
      await write(names[Math.floor(random() * names.length)]!)
    }
  }
  for (const [name, expected] of model) {
    const back = Buffer.alloc(expected.length)
    await fx.repl.read('vg0', name, back, 0)
    t.ok(back.equals(expected), `${name} equals the model (seed ${seed})`)
  }
  await fx.close()
})

t.test('concurrent writes to different chunks of origin and clone match the model', async (t) => {
  const dir = t.testdir()
  await createVg(dir, 'vg0', 1, 16 * 1024 * 1024)
  const fx = await openRepl(dir, ['vg0'])
  const lps = 12
  await fx.vgs.get('vg0')!.lvCreate({ name: 'o', lpCount: lps })
  const model = new Map<string, Buffer>([['o', Buffer.alloc(lps * PP, 0x11)]])
  await fx.repl.write('vg0', 'o', model.get('o')!, 0)
  await fx.repl.replicate({ vg: 'vg0', lv: 'o', name: 'c', type: 'clone' })
  model.set('c', Buffer.from(model.get('o')!))
  // Every chunk copied on write at the same time, from both sides (as the daemon's threads do).
  const writes = Array.from({ length: lps }, (_, chunk) => {
    const name = chunk % 2 === 0 ? 'o' : 'c'
    const data = Buffer.alloc(100, 0x20 + chunk)
    data.copy(model.get(name)!, chunk * PP + 7)
    return fx.repl.write('vg0', name, data, chunk * PP + 7)
  })
  await Promise.all(writes)
  for (const [name, expected] of model) {
    const back = Buffer.alloc(expected.length)
    await fx.repl.read('vg0', name, back, 0)
    t.ok(back.equals(expected), `${name} equals the model`)
  }
  await fx.close()
})

t.test('clone creation writes the same bytes for a 1-partition and a 300-partition origin', async (t) => {
  const written: number[] = []
  for (const lpCount of [1, 300]) {
    const dir = t.testdir() + `-${lpCount}`
    const { mkdirSync } = await import('node:fs')
    mkdirSync(dir, { recursive: true })
    t.teardown(async () => { const { rmSync } = await import('node:fs'); rmSync(dir, { recursive: true, force: true }) })
    await createVg(dir, 'vg0', 1, 32 * 1024 * 1024)
    const fx = await openRepl(dir, ['vg0'])
    await fx.vgs.get('vg0')!.lvCreate({ name: 'origin', lpCount })
    const before = totalWrites(fx)
    await fx.repl.replicate({ vg: 'vg0', lv: 'origin', name: 'clone', type: 'clone' })
    written.push(totalWrites(fx) - before)
    t.equal(fx.vgs.get('vg0')!.lvByName('clone')!.lps.length, 1, 'a new clone owns only its metadata partition')
    await fx.close()
  }
  t.ok(written[0]! > 0, 'the counter sees creation writes')
  t.equal(written[0], written[1], `bytes written by clone creation: ${written.join(' vs ')}`)
})

function totalWrites(_fx: unknown): number {
  return writeCounter.bytes
}

t.test('a full pool invalidates the clone, the origin write succeeds', async (t) => {
  const dir = t.testdir()
  await createVg(dir, 'vg0', 1, 4 * 1024 * 1024)
  const fx = await openRepl(dir, ['vg0'])
  const vg = fx.vgs.get('vg0')!
  const free = vg.descriptor.pvs[0]!.ppCount
  await vg.lvCreate({ name: 'o', lpCount: 4 })
  await fx.repl.replicate({ vg: 'vg0', lv: 'o', name: 'c', type: 'clone' })
  await vg.lvCreate({ name: 'filler', lpCount: free - 4 - 1 })
  const data = Buffer.alloc(PP, 0xab)
  await fx.repl.write('vg0', 'o', data, 0)
  const back = Buffer.alloc(PP)
  await fx.repl.read('vg0', 'o', back, 0)
  t.ok(back.equals(data), 'the origin write went through')
  await t.rejects(fx.repl.read('vg0', 'c', back, 0), { code: 'LSM_ERR_INVALIDATED_CLONE' })
  await t.rejects(fx.repl.write('vg0', 'c', data, 0), { code: 'LSM_ERR_INVALIDATED_CLONE' })
  await fx.close()
})

t.test('removing an origin with a clone fails with a child dependency naming it', async (t) => {
  const dir = t.testdir()
  await createVg(dir, 'vg0')
  const fx = await openRepl(dir, ['vg0'])
  await fx.vgs.get('vg0')!.lvCreate({ name: 'o', lpCount: 2 })
  await fx.repl.replicate({ vg: 'vg0', lv: 'o', name: 'c1', type: 'clone' })
  await t.rejects(fx.repl.removeVolume('vg0', 'o'), { code: 'LSM_ERR_HAS_CHILD_DEPENDENCY', context: { children: ['vg0/c1'] } })
  await fx.repl.removeVolume('vg0', 'c1')
  await fx.repl.removeVolume('vg0', 'o')
  t.equal(fx.vgs.get('vg0')!.lvByName('o'), undefined, 'origin removed once the clone is gone')
  await fx.close()
})
