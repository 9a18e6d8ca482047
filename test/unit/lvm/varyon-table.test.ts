/**
 * lvm_varyonvg, one row per return code and per vvg_out status of the reference
 * (shared/reference/aix-lvm_varyonvg.txt). Each row builds its own VG (memory PVs unless the
 * code concerns device entries or lock files, which need real files), runs varyOnVg and checks
 * the rc, its AIX number and the statuses in vvg_out.
 */
import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FaultyDevice, MemoryDevice, openFileDevice } from '../../../src/io/index.js'
import {
  PV_STATUS, pvCreate, varyOnVg, vgCreate, type PvStatusName, type VaryOnRequest, type VaryOnResult,
} from '../../../src/lvm/index.js'
import { readLabel, writeLabel } from '../../../src/lvm/metadata-io.js'
import { Pool, SMALL_LAYOUT, PP_BYTES, makeVg, writeRawDescriptor, zeroVgdas } from '../../helpers/lvm-fixture.js'

interface Row {
  readonly name: string
  readonly run: (dir: string) => Promise<VaryOnResult>
  readonly rc: VaryOnResult['rc']
  readonly rcRef?: number
  /** Statuses that must appear in vvg_out (in any order; duplicates count). */
  readonly statuses?: readonly PvStatusName[]
  readonly errorCode?: string
}

async function memoryVg(count = 3) {
  const pool = new Pool(count)
  const d = await makeVg(pool, 'vg')
  return { pool, d, base: { vgName: 'vg', opener: pool.opener } satisfies Partial<VaryOnRequest> }
}

async function fileVg(dir: string, count = 2) {
  const paths = Array.from({ length: count }, (_, i) => join(dir, `pv${i}.img`))
  for (const p of paths) {
    writeFileSync(p, Buffer.alloc(0))
    await truncate(p)
  }
  for (const p of paths) await pvCreate(p, { layout: SMALL_LAYOUT })
  const d = await vgCreate({ name: 'fvg', paths, ppSizeBytes: PP_BYTES, layout: SMALL_LAYOUT })
  return { paths, d }
}

async function truncate(path: string): Promise<void> {
  const { truncate: tr } = await import('node:fs/promises')
  await tr(path, 2 * 1024 * 1024)
}

const rows: Row[] = [
  { name: 'all PVs present', rc: 'LVM_SUCCESS', rcRef: 0, statuses: ['LVM_PVACTIVE', 'LVM_PVACTIVE', 'LVM_PVACTIVE'],
    run: async () => { const { pool, base } = await memoryVg(); return varyOnVg({ ...base, devices: pool.paths }) } },
  { name: 'a non-member PV in vvg_in', rc: 'LVM_CHKVVGOUT', rcRef: 51,
    statuses: ['LVM_INVPVID', 'LVM_PVACTIVE', 'LVM_PVACTIVE', 'LVM_PVACTIVE'],
    run: async () => {
      const { pool, base } = await memoryVg()
      pool.add('/dev/orphan')
      await pvCreate('/dev/orphan', { opener: pool.opener, layout: SMALL_LAYOUT })
      return varyOnVg({ ...base, vvgIn: pool.paths.map((name) => ({ name })) })
    } },
  { name: 'a PV id repeated in vvg_in', rc: 'LVM_CHKVVGOUT', statuses: ['LVM_DUPPVID'],
    run: async () => {
      const { pool, d, base } = await memoryVg()
      pool.add('/dev/copy').data.set(pool.devices.get('/dev/pv1')!.data)
      const vvgIn = [...d.pvs.map((p) => ({ pvId: p.pvId, name: p.lastPath })),
        { pvId: d.pvs[1]!.pvId, name: '/dev/copy' }]
      return varyOnVg({ ...base, vvgIn })
    } },
  { name: 'two devices carry one PV id (cp of a PV)', rc: 'LVM_MISSPVNAME', statuses: ['LVM_DUPPVID', 'LVM_DUPPVID',
    'LVM_NONAME'],
  run: async () => {
    const { pool, base } = await memoryVg()
    pool.add('/dev/copy').data.set(pool.devices.get('/dev/pv1')!.data)
    return varyOnVg({ ...base, vvgIn: pool.paths.map((name) => ({ name })) })
  } },
  { name: 'a name whose label has another PV id', rc: 'LVM_MISSPVNAME', statuses: ['LVM_NAMIDNMTCH', 'LVM_NONAME'],
    run: async () => {
      const { d, base } = await memoryVg()
      const vvgIn = d.pvs.map((p, i) => ({ pvId: i === 0 ? 'a'.repeat(32) : p.pvId, name: p.lastPath }))
      return varyOnVg({ ...base, vvgIn })
    } },
  { name: 'member relabelled into another VG', rc: 'LVM_CHKVVGOUT', statuses: ['LVM_LVMRECNMTCH'],
    run: async () => {
      const { pool, d, base } = await memoryVg()
      const device = pool.devices.get('/dev/pv2')!
      const label = await readLabel(device)
      await writeLabel(device, { ...label, labelSeq: label.labelSeq + 1, vgId: 'f'.repeat(32) })
      const vvgIn = d.pvs.map((p) => ({ pvId: p.pvId, name: p.lastPath }))
      return varyOnVg({ ...base, flags: { misspvVon: true }, vvgIn })
    } },
  { name: 'member not named', rc: 'LVM_MISSPVNAME', rcRef: -123, statuses: ['LVM_NONAME'],
    run: async () => {
      const { pool, base } = await memoryVg()
      return varyOnVg({ ...base, vvgIn: [{ name: pool.paths[0]! },
      { name: pool.paths[1]! }] })
    } },
  { name: 'member not named, missname_von', rc: 'LVM_MISSINGPV', rcRef: -124, statuses: ['LVM_PVMISSING'],
    run: async () => { const { pool, base } = await memoryVg(); return varyOnVg({ ...base, flags: { missnameVon: true },
      vvgIn: [{ name: pool.paths[0]! }, { name: pool.paths[1]! }] }) } },
  { name: 'named member that cannot be opened, misspv_von', rc: 'LVM_CHKVVGOUT', statuses: ['LVM_PVMISSING'],
    run: async () => {
      const { pool, d, base } = await memoryVg()
      pool.absent.add('/dev/pv2')
      const vvgIn = d.pvs.map((p) => ({ pvId: p.pvId, name: p.lastPath }))
      return varyOnVg({ ...base, flags: { misspvVon: true }, vvgIn })
    } },
  { name: 'forced vary-on without quorum removes the missing PVs', rc: 'LVM_CHKVVGOUT',
    statuses: ['LVM_PVACTIVE', 'LVM_PVREMOVED', 'LVM_PVREMOVED'],
    run: async () => {
      const { pool, base } = await memoryVg()
      pool.absent.add('/dev/pv1').add('/dev/pv2')
      return varyOnVg({ ...base, devices: pool.paths, flags: { override: true, misspvVon: true, missnameVon: true } })
    } },
  { name: 'a PV file truncated below what its label says', rc: 'LVM_CHKVVGOUT',
    statuses: ['LVM_PVACTIVE', 'LVM_PVACTIVE', 'LVM_PVMISSING'],
    run: async () => {
      const { pool, d, base } = await memoryVg()
      const whole = pool.devices.get('/dev/pv2')!
      pool.add('/dev/pv2', whole.sizeBytes - 65536).data.set(whole.data.subarray(0, whole.sizeBytes - 65536))
      const vvgIn = d.pvs.map((p) => ({ pvId: p.pvId, name: p.lastPath }))
      return varyOnVg({ ...base, flags: { misspvVon: true }, vvgIn })
    } },
  { name: 'a REMOVED member does not block a vary-on without misspv_von', rc: 'LVM_CHKVVGOUT',
    statuses: ['LVM_PVACTIVE', 'LVM_PVACTIVE', 'LVM_PVREMOVED'],
    run: async () => {
      const { pool, d, base } = await memoryVg()
      const vg = (await varyOnVg({ ...base, devices: pool.paths, flags: { misspvVon: true } })).vg!
      await vg.setPvState(2, 'removed')
      await vg.varyOff()
      pool.absent.add(d.pvs[2]!.lastPath)
      return varyOnVg({ ...base, vvgIn: d.pvs.slice(0, 2).map((p) => ({ pvId: p.pvId, name: p.lastPath })) })
    } },
  { name: 'no quorum: provisional statuses only', rc: 'LVM_NOQUORUM', rcRef: -122,
    statuses: ['LVM_PVINVG', 'LVM_PVNOTFND', 'LVM_PVNOTINVG'],
    run: async () => {
      const { pool, d, base } = await memoryVg()
      pool.absent.add('/dev/pv1')
      await zeroVgdas(pool, '/dev/pv2')
      const other = new Pool(1)
      await makeVg(other, 'other')
      pool.devices.set('/dev/foreign', other.devices.get('/dev/pv0')!)
      const vvgIn = [...d.pvs.slice(0, 2).map((p) => ({ pvId: p.pvId, name: p.lastPath })), { name: '/dev/foreign' }]
      return varyOnVg({ ...base, flags: { misspvVon: true, missnameVon: true }, vvgIn })
    } },
  { name: 'override with no valid descriptor copy', rc: 'LVM_NOVGDAS', rcRef: -146, statuses: ['LVM_PVINVG'],
    run: async () => {
      const { pool, base } = await memoryVg(1)
      await zeroVgdas(pool, '/dev/pv0')
      return varyOnVg({ ...base, vgName: undefined, vgId: (await readLabel(pool.devices.get('/dev/pv0')!)).vgId,
        devices: pool.paths, flags: { override: true, misspvVon: true } })
    } },
  { name: 'override without misspv_von', rc: 'LVM_INVALID_PARAM', rcRef: -107,
    run: async () => { const { pool, base } = await memoryVg(); return varyOnVg({ ...base, devices: pool.paths,
      flags: { override: true } }) } },
  { name: 'a flag that is not boolean', rc: 'LVM_INVALID_PARAM',
    run: async () => { const { pool, base } = await memoryVg(); return varyOnVg({ ...base, devices: pool.paths,
      flags: { misspvVon: 1 as unknown as boolean } }) } },
  { name: 'neither VG name nor id', rc: 'LVM_INVALID_PARAM',
    run: async () => {
      const { pool } = await memoryVg()
      return varyOnVg({ devices: pool.paths, opener: pool.opener })
    } },
  { name: 'unknown VG name', rc: 'LVM_INVALID_PARAM',
    run: async () => {
      const { pool, base } = await memoryVg()
      return varyOnVg({ ...base, vgName: 'nope', devices: pool.paths })
    } },
  { name: 'descriptor with a PP allocated twice', rc: 'LVM_INVCONFIG', errorCode: 'LVM_INVCONFIG',
    run: async () => {
      const { pool, d, base } = await memoryVg()
      const lp = [{ pvIndex: 0, pp: 3 }]
      const lv = { lvId: 1, name: 'a', copies: 1 as const, strict: 'y' as const, schedule: 'p' as const,
        mwc: 'off' as const, lps: [lp], ext: {} }
      await writeRawDescriptor(pool, { ...d, seq: d.seq + 1, nextLvId: 3, lvs: [lv, { ...lv, lvId: 2, name: 'b' }] })
      return varyOnVg({ ...base, devices: pool.paths })
    } },
  { name: 'a device read fails to allocate memory', rc: 'LVM_ALLOCERR',
    run: async () => {
      const { pool, base } = await memoryVg()
      pool.faults.set('/dev/pv1', (device: FaultyDevice) => {
        device.read = async () => { throw new RangeError('Array buffer allocation failed') }
      })
      return varyOnVg({ ...base, devices: pool.paths })
    } },
  { name: 'PV claimed by another holder', rc: 'LVM_INVCONFIG',
    run: async (dir) => {
      const { paths } = await fileVg(dir)
      const held = await openFileDevice(paths[0]!, { exclusive: true })
      try {
        return await varyOnVg({ vgName: 'fvg', devices: paths, flags: { misspvVon: true } })
      } finally {
        await held.close()
      }
    } },
  { name: 'a device name that cannot be examined', rc: 'LVM_INV_DEVENT',
    run: async (dir) => {
      const { paths, d } = await fileVg(dir)
      symlinkSync(join(dir, 'loop'), join(dir, 'loop'))
      return varyOnVg({ vgId: d.vgId, vvgIn: [...paths.map((name) => ({ name })), { name: join(dir, 'loop') }] })
    } },
  { name: 'a device that is neither block device nor file', rc: 'LVM_NOTCHARDEV',
    run: async (dir) => {
      const { paths, d } = await fileVg(dir)
      return varyOnVg({ vgId: d.vgId, vvgIn: [...paths.map((name) => ({ name })), { name: '/dev/null' }] })
    } },
  { name: 'lock directory cannot be created', rc: 'LVM_MAPFOPN',
    run: async (dir) => {
      const { paths } = await fileVg(dir)
      writeFileSync(join(dir, 'not-a-dir'), 'x')
      return withLockDir(join(dir, 'not-a-dir', 'locks'), () => varyOnVg({ vgName: 'fvg', devices: paths }))
    } },
  { name: 'lock file cannot be read', rc: 'LVM_MAPFRDWR',
    run: async (dir) => {
      const { paths } = await fileVg(dir)
      const lockDir = join(dir, 'locks')
      const { statSync } = await import('node:fs')
      const st = statSync(paths[0]!)
      mkdirSync(join(lockDir, `pv-${st.dev}-${st.ino}.lock`), { recursive: true })
      return withLockDir(lockDir, () => varyOnVg({ vgName: 'fvg', devices: paths }))
    } },
]

// Lock files of the file-backed rows go to a private directory, removed at the end.
const lockRoot = mkdtempSync(join(tmpdir(), 'lvmfs-varyon-locks-'))
const savedLockRoot = process.env['LVMFS_LOCK_DIR']
process.env['LVMFS_LOCK_DIR'] = lockRoot
t.teardown(() => {
  rmSync(lockRoot, { recursive: true, force: true })
  if (savedLockRoot === undefined) delete process.env['LVMFS_LOCK_DIR']
  else process.env['LVMFS_LOCK_DIR'] = savedLockRoot
})

async function withLockDir<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const saved = process.env['LVMFS_LOCK_DIR']
  process.env['LVMFS_LOCK_DIR'] = dir
  try {
    return await fn()
  } finally {
    if (saved === undefined) delete process.env['LVMFS_LOCK_DIR']
    else process.env['LVMFS_LOCK_DIR'] = saved
  }
}

for (const row of rows) {
  void t.test(`varyOnVg() returns ${row.rc} when ${row.name}`, async (t) => {
    const dir = t.testdir()
    const result = await row.run(dir)
    t.teardown(() => result.vg?.varyOff())
    t.equal(result.rc, row.rc, result.error?.message ?? '')
    if (row.rcRef !== undefined) t.equal(result.rcRef, row.rcRef)
    if (row.errorCode !== undefined) t.equal(result.error?.code, row.errorCode)
    t.equal(result.vg !== undefined, row.rc === 'LVM_SUCCESS' || row.rc === 'LVM_CHKVVGOUT', 'vg only on success')
    const got = result.vvgOut.map((o) => o.status)
    for (const status of new Set(row.statuses ?? [])) {
      const want = row.statuses!.filter((s) => s === status).length
      t.equal(got.filter((s) => s === status).length, want, `${want} x ${status} in ${got.join(',')}`)
      t.ok(PV_STATUS[status] > 0)
    }
  })
}

void t.test('every vvg_out status and return code of the reference has a row', async (t) => {
  const statuses = new Set(rows.flatMap((r) => r.statuses ?? []))
  for (const s of Object.keys(PV_STATUS)) t.ok(statuses.has(s as PvStatusName), s)
  const rcs = new Set(rows.map((r) => r.rc))
  for (const rc of ['LVM_SUCCESS', 'LVM_CHKVVGOUT', 'LVM_ALLOCERR', 'LVM_INVALID_PARAM', 'LVM_INVCONFIG', 'LVM_INV_DEVENT',
    'LVM_MAPFOPN', 'LVM_MAPFRDWR', 'LVM_MISSINGPV', 'LVM_MISSPVNAME', 'LVM_NOQUORUM', 'LVM_NOTCHARDEV', 'LVM_NOVGDAS']) {
    t.ok(rcs.has(rc as VaryOnResult['rc']), rc)
  }
})

void t.test('noopen_lvs and auto_resync reach the VolumeGroup', async (t) => {
  const { pool, base } = await memoryVg()
  const a = await varyOnVg({ ...base, devices: pool.paths, flags: { noopenLvs: true, autoResync: false } })
  t.equal(a.vg!.noOpenLvs, true)
  t.equal(a.vg!.autoResync, false)
  await a.vg!.varyOff()
  const b = await varyOnVg({ ...base, devices: pool.paths })
  t.equal(b.vg!.noOpenLvs, false)
  t.equal(b.vg!.autoResync, true)
  await b.vg!.varyOff()
  t.ok(new MemoryDevice('/dev/x', 4096))
})
