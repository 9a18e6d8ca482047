/**
 * Process-level crash: a child creates LVs in a loop on PV files and is killed with SIGKILL
 * at a different point each round. The parent then varies the VG on: every acknowledged LV
 * must exist, at most one unacknowledged LV may exist (the commit in flight), and the VG must
 * vary on with LVM_SUCCESS (kill -9 loses no completed write, so no PV is missing). Also checks
 * that the dead child's lock files are taken over.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { truncate } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pvCreate, varyOnVg, vgCreate } from '../../../src/lvm/index.js'
import { SMALL_LAYOUT, PP_BYTES } from '../../helpers/lvm-fixture.js'

const CHILD = fileURLToPath(new URL('../../helpers/lvm-commit-child.ts', import.meta.url))

function runUntil(paths: string[], acks: number, env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...paths], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let seen = -1
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    child.stdout.on('data', (chunk: Buffer) => {
      for (const match of chunk.toString().matchAll(/ack (\d+)/g)) seen = Math.max(seen, Number(match[1]))
      if (seen + 1 >= acks) child.kill('SIGKILL')
    })
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(seen + 1)
      else reject(new Error(`child exited ${code}: ${stderr}`))
    })
  })
}

void t.test('kill -9 during LV creation: acknowledged LVs survive, the VG varies on cleanly', async (t) => {
  const dir = t.testdir()
  const env = { ...process.env, LVMFS_LOCK_DIR: join(dir, 'locks') }
  const saved = process.env['LVMFS_LOCK_DIR']
  process.env['LVMFS_LOCK_DIR'] = env.LVMFS_LOCK_DIR
  t.teardown(() => {
    if (saved === undefined) delete process.env['LVMFS_LOCK_DIR']
    else process.env['LVMFS_LOCK_DIR'] = saved
  })
  const paths = [0, 1, 2].map((i) => join(dir, `pv${i}.img`))
  for (const path of paths) {
    writeFileSync(path, '')
    await truncate(path, 4 << 20)
    await pvCreate(path, { layout: SMALL_LAYOUT })
  }
  await vgCreate({ name: 'vg', paths, ppSizeBytes: PP_BYTES, layout: SMALL_LAYOUT })
  let expected = new Set<string>()
  for (const acks of [2, 5, 3]) {
    const acked = await runUntil(paths, acks, env)
    const result = await varyOnVg({ vgName: 'vg', devices: paths })
    t.equal(result.rc, 'LVM_SUCCESS', result.error?.message ?? '')
    const names = new Set(result.vg!.descriptor.lvs.map((lv) => lv.name))
    const created = [...names].filter((n) => !expected.has(n))
    t.ok(created.length >= acked && created.length <= acked + 1,
      `${acked} acknowledged, ${created.length} found: ${created.join(',')}`)
    for (const n of expected) t.ok(names.has(n), `${n} from an earlier round survives`)
    // Rename so the next child's names do not collide.
    for (const name of created) await result.vg!.lvRename(name, `r${expected.size}-${name}`)
    expected = new Set(result.vg!.descriptor.lvs.map((lv) => lv.name))
    await result.vg!.varyOff()
  }
})
