/**
 * T12 for the LVM verbs: bad input to every command gives a typed error with exit 3 (usage)
 * or 5 (failure), names the stable code, prints no stack trace, and changes no byte of any PV
 * file (sha256 of every file before and after). Commands run in-process through runCli with
 * stdout/stderr captured; the PVs are sparse files in a test directory.
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { truncate } from 'node:fs/promises'
import { join } from 'node:path'
import { runCli } from '../../../src/cli/program.js'
import { crc32c } from '../../../src/format/index.js'
import { decodeBackup, encodeBackup, standardPlacement } from '../../../src/lvm/index.js'

async function cli(argv: string[]): Promise<{ exit: number; stdout: string; stderr: string }> {
  const out: string[] = []
  const err: string[] = []
  const saved = { out: process.stdout.write, err: process.stderr.write }
  const capture = (into: string[]) => ((chunk: string | Uint8Array) => {
    into.push(String(chunk))
    return true
  }) as typeof process.stdout.write
  process.stdout.write = capture(out)
  process.stderr.write = capture(err)
  try {
    const exit = await runCli(argv)
    return { exit, stdout: out.join(''), stderr: err.join('') }
  } finally {
    process.stdout.write = saved.out
    process.stderr.write = saved.err
  }
}

const dir = t.testdir()
const savedLockDir = process.env['LVMFS_LOCK_DIR']
const savedDevices = process.env['LVMFS_DEVICES']
const savedBackupDir = process.env['LVMFS_BACKUP_DIR']
process.env['LVMFS_LOCK_DIR'] = join(dir, 'locks')
process.env['LVMFS_BACKUP_DIR'] = join(dir, 'backup')
delete process.env['LVMFS_DEVICES']
t.teardown(() => {
  if (savedBackupDir === undefined) delete process.env['LVMFS_BACKUP_DIR']
  else process.env['LVMFS_BACKUP_DIR'] = savedBackupDir
  if (savedLockDir === undefined) delete process.env['LVMFS_LOCK_DIR']
  else process.env['LVMFS_LOCK_DIR'] = savedLockDir
  if (savedDevices !== undefined) process.env['LVMFS_DEVICES'] = savedDevices
})

const p = (name: string): string => join(dir, name)
const FILES = ['pv0', 'pv1', 'pv2', 'orphan', 'orphan-copy', 'small', 'garbage', 'other', 'future', 'junk'].map(p)
const DEVICES = ['--devices', FILES.join(',')]

async function makeFile(path: string, sizeBytes: number): Promise<void> {
  writeFileSync(path, '')
  await truncate(path, sizeBytes)
}

function hashes(): string[] {
  return FILES.map((f) => createHash('sha256').update(readFileSync(f)).digest('hex'))
}

async function setup(): Promise<void> {
  for (const f of FILES) await makeFile(f, 8 << 20)
  await makeFile(p('small'), 1 << 20)
  const ok = async (argv: string[]): Promise<void> => {
    const r = await cli(argv)
    if (r.exit !== 0) throw new Error(`setup ${argv.join(' ')}: ${r.stderr}`)
  }
  await ok(['pvcreate', '--metadata-size', '64K', p('pv0'), p('pv1'), p('pv2'), p('orphan'), p('other')])
  await ok(['vgcreate', 'vg0', p('pv0'), p('pv1'), p('pv2'), '--pp-size', '256K', ...DEVICES])
  await ok(['vgcreate', 'other', p('other'), '--pp-size', '256K', ...DEVICES])
  await ok(['lvcreate', 'vg0', 'lv0', '--size', '1M', '--copies', '2', ...DEVICES])
  await ok(['lvcreate', 'vg0', 'lv1', '--size', '512K', ...DEVICES])
  copyFileSync(p('orphan'), p('orphan-copy'))
  // A label from a future format version (valid checksum, version 2) in both copies.
  const future = readFileSync(p('orphan'))
  for (const at of [0, 4096]) {
    future.writeUInt32LE(2, at + 8)
    future.writeUInt32LE(crc32c(future.subarray(at, at + 136)), at + 136)
  }
  writeFileSync(p('future'), future)
  const junk = readFileSync(p('junk'))
  junk.fill(0x42, 0, 4096)
  writeFileSync(p('junk'), junk)
  const garbage = Buffer.alloc(4096)
  garbage.write('LVMFS_PV', 0, 'latin1')
  garbage.fill(0x5a, 8, 200)
  const fd = readFileSync(p('garbage'))
  garbage.copy(fd, 0)
  writeFileSync(p('garbage'), fd)
  await ok(['vgcfgbackup', 'other', '-f', p('other.json'), ...DEVICES])
  await ok(['vgcfgbackup', 'vg0', '-f', p('vg0.json'), ...DEVICES])
  // Backups of vg0 that cannot be restored: a PV that is not there, a PV whose PP count no
  // longer matches its label, a damaged checksum.
  const d = decodeBackup(readFileSync(p('vg0.json'), 'utf8'), 'vg0.json')
  const ghost = [...d.pvs, { pvId: 'ab'.repeat(16), lastPath: '/dev/gone', ppCount: 20, removed: false }]
  writeFileSync(p('vg0-ghost.json'), encodeBackup({ ...d, pvs: ghost, descriptorCopies: standardPlacement(ghost) }))
  writeFileSync(p('vg0-resized.json'), encodeBackup({ ...d,
    pvs: d.pvs.map((pv, i) => (i === 1 ? { ...pv, ppCount: pv.ppCount - 1 } : pv)) }))
  writeFileSync(p('vg0-damaged.json'), readFileSync(p('vg0.json'), 'utf8').replace('lv1', 'lv2'))
}

const long = 'x'.repeat(200)
/** [argv, exit, code or '' for commander usage errors]. */
const rows: Array<[string[], 3 | 5, string]> = [
  [['pvcreate'], 3, ''],
  [['pvcreate', '--bogus', p('pv0')], 3, ''],
  [['pvcreate', p('pv0')], 5, 'LVM_PVINUSE'],
  [['pvcreate', p('orphan')], 5, 'LVM_PVINUSE'],
  [['pvcreate', p('small')], 5, 'LVM_DEVTOOSMALL'],
  [['pvcreate', p('nonexistent')], 5, 'ENGINE_NOT_FOUND'],
  [['pvcreate', '/dev/null'], 5, 'LVM_NOTCHARDEV'],
  [['pvcreate', dir], 5, 'LVM_NOTCHARDEV'],
  [['pvcreate', '--metadata-size', '1e', p('small')], 3, 'ENGINE_USAGE'],
  [['pvcreate', '--metadata-size', '1000', p('small')], 3, 'ENGINE_USAGE'],
  [['pvcreate', p('future')], 5, 'LVM_BADVERSION'],
  [['vgcreate', 'vgx', p('future'), ...DEVICES], 5, 'LVM_BADVERSION'],
  [['vgextend', 'vg0', p('future'), ...DEVICES], 5, 'LVM_BADVERSION'],
  [['vgcreate', 'vgx', p('junk'), ...DEVICES], 5, 'LVM_NOTPV'],
  [['vgextend', 'vg0', p('junk'), ...DEVICES], 5, 'LVM_NOTPV'],
  [['vgcreate', 'vgx'], 3, ''],
  [['vgcreate', '!@#$%', p('orphan'), ...DEVICES], 3, 'ENGINE_USAGE'],
  [['vgcreate', long, p('orphan'), ...DEVICES], 3, 'ENGINE_USAGE'],
  [['vgcreate', '', p('orphan'), ...DEVICES], 3, 'ENGINE_USAGE'],
  [['vgcreate', 'vgx', p('orphan'), '--pp-size', '3M', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['vgcreate', 'vgx', p('orphan'), '--pp-size', '0', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['vgcreate', 'vgx', p('orphan'), '--pp-size', '-4M', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['vgcreate', 'vgx', p('orphan'), '--pp-size', '1e', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['vgcreate', 'vgx', p('orphan'), '--pp-size', '18446744073709551616', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['vgcreate', 'vgx', p('orphan'), '--pp-size', '1K', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['vgcreate', 'vg0', p('orphan'), ...DEVICES], 5, 'ENGINE_EXISTS'],
  [['vgcreate', 'vgx', p('pv0'), ...DEVICES], 5, 'LVM_PVINUSE'],
  [['vgcreate', 'vgx', p('orphan'), p('small'), ...DEVICES], 5, 'LVM_DEVTOOSMALL'],
  [['vgcreate', 'vgx', p('garbage'), ...DEVICES], 5, 'LVM_NOTPV'],
  [['vgcreate', 'vgx', p('orphan'), p('orphan'), ...DEVICES], 3, 'ENGINE_USAGE'],
  [['vgcreate', 'vgx', p('orphan'), p('orphan-copy'), ...DEVICES], 5, 'LVM_DUPPVID'],
  [['vgcreate', 'vgx', p('orphan'), p('nonexistent'), ...DEVICES], 5, 'ENGINE_NOT_FOUND'],
  [['vgextend', 'nope', p('orphan'), ...DEVICES], 5, 'ENGINE_NOT_FOUND'],
  [['vgextend', 'vg0', ...DEVICES], 3, ''],
  [['vgextend', 'vg0', p('pv1'), ...DEVICES], 5, 'LVM_PVINUSE'],
  [['vgextend', 'vg0', p('other'), ...DEVICES], 5, 'LVM_PVINUSE'],
  [['vgextend', 'vg0', p('small'), ...DEVICES], 5, 'LVM_DEVTOOSMALL'],
  [['vgextend', 'vg0', p('garbage'), ...DEVICES], 5, 'LVM_NOTPV'],
  [['vgextend', '!bad', p('orphan'), ...DEVICES], 3, 'ENGINE_USAGE'],
  [['vgreduce', 'vg0', p('pv0'), ...DEVICES], 5, 'LVM_PVHASPPS'],
  [['vgreduce', 'vg0', p('orphan'), ...DEVICES], 5, 'ENGINE_NOT_FOUND'],
  [['vgreduce', 'nope', p('pv0'), ...DEVICES], 5, 'ENGINE_NOT_FOUND'],
  [['lvcreate', 'vg0', 'lvx', ...DEVICES], 3, ''],
  [['lvcreate', 'vg0', 'lvx', '--size', '0', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['lvcreate', 'vg0', 'lvx', '--size', '-1', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['lvcreate', 'vg0', 'lvx', '--size', '1e', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['lvcreate', 'vg0', 'lvx', '--size', '18446744073709551616', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['lvcreate', 'vg0', 'lvx', '--size', '1M', '--copies', '4', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['lvcreate', 'vg0', 'lvx', '--size', '1M', '--copies', '0', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['lvcreate', 'vg0', 'lvx', '--size', '1M', '--copies', 'two', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['lvcreate', 'vg0', 'lvx', '--size', '1M', '--strict', 'x', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['lvcreate', 'vg0', 'lvx', '--size', '1M', '--schedule', 'q', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['lvcreate', 'vg0', 'lvx', '--size', '1M', '--mwc', 'on', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['lvcreate', 'vg0', '!@#', '--size', '1M', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['lvcreate', 'vg0', long, '--size', '1M', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['lvcreate', 'vg0', 'lv0', '--size', '1M', ...DEVICES], 5, 'ENGINE_EXISTS'],
  [['lvcreate', 'vg0', 'lvx', '--size', '1T', ...DEVICES], 5, 'LVM_NOFREEPPS'],
  [['lvcreate', 'vg0', 'lvx', '--size', '7M', '--copies', '3', '--strict', 's', ...DEVICES], 5, 'LVM_NOFREEPPS'],
  [['lvcreate', 'nope', 'lvx', '--size', '1M', ...DEVICES], 5, 'ENGINE_NOT_FOUND'],
  [['lvextend', 'vg0', 'zz', '--size', '+1M', ...DEVICES], 5, 'ENGINE_NOT_FOUND'],
  [['lvextend', 'vg0', 'lv0', '--size', '-1M', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['lvextend', 'vg0', 'lv0', '--size', '256K', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['lvextend', 'vg0', 'lv0', '--size', '+1T', ...DEVICES], 5, 'LVM_NOFREEPPS'],
  [['lvextend', 'vg0', 'lv0', '--size', '+x', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['lvextend', 'vg0', 'lv0', ...DEVICES], 3, ''],
  [['lvreduce', 'vg0', 'lv0', '--size', '+1M', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['lvreduce', 'vg0', 'lv0', '--size', '-1M', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['lvreduce', 'vg0', 'lv0', '--size', '-8M', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['lvreduce', 'vg0', 'lv0', '--size', '2M', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['lvreduce', 'vg0', 'zz', '--size', '-256K', ...DEVICES], 5, 'ENGINE_NOT_FOUND'],
  [['lvremove', 'vg0', 'zz', ...DEVICES], 5, 'ENGINE_NOT_FOUND'],
  [['lvremove', 'nope', 'lv0', ...DEVICES], 5, 'ENGINE_NOT_FOUND'],
  [['lvremove', 'vg0', ...DEVICES], 3, ''],
  [['lvrename', 'vg0', 'lv0', 'lv1', ...DEVICES], 5, 'ENGINE_EXISTS'],
  [['lvrename', 'vg0', 'zz', 'yy', ...DEVICES], 5, 'ENGINE_NOT_FOUND'],
  [['lvrename', 'vg0', 'lv0', '!@#', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['lvrename', 'vg0', 'lv0', ...DEVICES], 3, ''],
  [['pvs', '--bogus', ...DEVICES], 3, ''],
  [['pvs'], 3, 'ENGINE_USAGE'],
  [['vgs', 'extra', ...DEVICES], 3, ''],
  [['lvs', 'a', 'b', ...DEVICES], 3, ''],
  [['varyonvg', 'nope', ...DEVICES], 5, 'ENGINE_NOT_FOUND'],
  [['varyonvg', '!bad', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['varyonvg', 'vg0', '--bogus', ...DEVICES], 3, ''],
  [['varyonvg'], 3, ''],
  [['varyoffvg', 'nope', ...DEVICES], 5, 'ENGINE_NOT_FOUND'],
  [['vgcfgbackup', ...DEVICES], 3, ''],
  [['vgcfgbackup', 'nope', ...DEVICES], 5, 'ENGINE_NOT_FOUND'],
  [['vgcfgbackup', '!bad', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['vgcfgrestore', 'vg0', '--list', '-f', p('vg0.json'), ...DEVICES], 3, 'ENGINE_USAGE'],
  [['vgcfgrestore', 'nope', ...DEVICES], 5, 'ENGINE_NOT_FOUND'],
  [['vgcfgrestore', 'vg0', '-f', p('nonexistent.json'), ...DEVICES], 5, 'ENGINE_NOT_FOUND'],
  [['vgcfgrestore', 'vg0', '-f', p('junk'), ...DEVICES], 5, 'ENGINE_CORRUPT'],
  [['vgcfgrestore', 'vg0', '-f', p('vg0-damaged.json'), ...DEVICES], 5, 'ENGINE_CORRUPT'],
  [['vgcfgrestore', 'vg0', '-f', p('other.json'), ...DEVICES], 3, 'ENGINE_USAGE'],
  [['vgcfgrestore', 'vg0', '-f', p('vg0-ghost.json'), ...DEVICES], 5, 'LVM_MISSINGPV'],
  [['vgcfgrestore', 'vg0', '-f', p('vg0-resized.json'), ...DEVICES], 5, 'LVM_PVSTATE'],
  [['pvchange', 'vg0', p('pv0'), ...DEVICES], 3, 'ENGINE_USAGE'],
  [['pvchange', 'vg0', p('pv0'), '--remove', '--return', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['pvchange', 'vg0', p('orphan'), '--remove', ...DEVICES], 5, 'ENGINE_NOT_FOUND'],
  [['pvchange', 'nope', p('pv0'), '--remove', ...DEVICES], 5, 'ENGINE_NOT_FOUND'],
  [['pvchange', 'other', p('other'), '--remove', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['pvremove'], 3, ''],
  [['pvremove', p('pv0')], 5, 'LVM_PVINUSE'],
  [['pvremove', p('junk')], 5, 'LVM_NOTPV'],
  [['pvremove', p('nonexistent')], 5, 'ENGINE_NOT_FOUND'],
  [['pvremove', p('orphan'), p('orphan')], 3, 'ENGINE_USAGE'],
  [['vgremove', 'vg0', ...DEVICES], 5, 'ENGINE_BUSY'],
  [['vgremove', 'nope', ...DEVICES], 5, 'ENGINE_NOT_FOUND'],
  [['vgrename', 'vg0', 'other', ...DEVICES], 5, 'ENGINE_EXISTS'],
  [['vgrename', 'vg0', '!bad', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['vgrename', 'nope', 'vgx', ...DEVICES], 5, 'ENGINE_NOT_FOUND'],
  [['lvchange', 'vg0/lv0', '--activate', 'maybe', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['lvchange', 'vg0/lv0', '--permission', 'w', ...DEVICES], 3, 'ENGINE_USAGE'],
  [['lvchange', 'vg0/zz', '--activate', 'n', ...DEVICES], 5, 'ENGINE_NOT_FOUND'],
]

void t.test('every bad input is refused with its exit code and leaves the PVs untouched', async (t) => {
  await setup()
  const before = hashes()
  for (const [argv, exit, code] of rows) {
    const r = await cli(argv)
    const label = argv.filter((a) => !a.includes(',')).join(' ').replaceAll(dir, '.')
    t.equal(r.exit, exit, `${label}: exit ${r.exit} ${r.stderr.split('\n')[0]}`)
    if (code !== '') t.match(r.stderr, `lvmfs: ${code}:`, `${label}: names ${code}`)
    t.notMatch(r.stderr, /\n\s+at /, `${label}: no stack trace`)
    t.same(hashes(), before, `${label}: no byte changed`)
  }
})

void t.test('the same VG still works and reports through pvs, vgs, lvs and varyonvg', async (t) => {
  const vgs = await cli(['vgs', '--json', ...DEVICES])
  t.equal(vgs.exit, 0, vgs.stderr)
  const parsed = JSON.parse(vgs.stdout) as { vgs: Array<{ vg: string; lvs: number }> }
  t.same(parsed.vgs.map((v) => [v.vg, v.lvs]).sort(), [['other', 0], ['vg0', 2]])
  const lvs = await cli(['lvs', 'vg0', ...DEVICES])
  t.match(lvs.stdout, /lv0/)
  const pvs = await cli(['pvs', '--json', ...DEVICES])
  t.equal(pvs.exit, 0)
  t.match(pvs.stdout, /LVM_DUPPVID/, 'the copied orphan PV is flagged')
  const on = await cli(['varyonvg', 'vg0', '--json', ...DEVICES])
  t.equal(on.exit, 0, on.stderr)
  t.equal((JSON.parse(on.stdout) as { rc: string }).rc, 'LVM_SUCCESS')
  const off = await cli(['varyoffvg', 'vg0', ...DEVICES])
  t.equal(off.exit, 0, off.stderr)
})

void t.test('vgs names a damaged descriptor copy; varyonvg repairs it', async (t) => {
  const { readLabel, readVgdaArea } = await import('../../../src/lvm/metadata-io.js')
  const { openFileDevice } = await import('../../../src/io/index.js')
  const { vgdaSlotOffset } = await import('../../../src/format/index.js')
  const device = await openFileDevice(p('pv2'))
  const label = await readLabel(device)
  const read = await readVgdaArea(device, label, label.vgId, 0)
  const offset = vgdaSlotOffset(label, 0, read.best!.slot) + 600
  const byte = Buffer.alloc(1)
  await device.read(byte, offset)
  byte[0] = byte[0]! ^ 0x10
  await device.write(byte, offset)
  await device.close()
  const vgs = await cli(['vgs', ...DEVICES])
  t.equal(vgs.exit, 0, 'quorum holds: the area falls back to its previous slot')
  t.match(vgs.stderr, `bad copy: ${p('pv2')} area 0: `)
  const on = await cli(['varyonvg', 'vg0', ...DEVICES])
  t.equal(on.exit, 0, on.stderr)
  const again = await cli(['vgs', ...DEVICES])
  t.notMatch(again.stderr, /bad copy/, 'the vary-on rewrote the damaged slot')
})

void t.test('day two: backups, pvchange, lvchange flags, vgcfgrestore, vgrename, vgremove, pvremove', async (t) => {
  const { readdirSync } = await import('node:fs')
  const { vgdaSlotOffset } = await import('../../../src/format/index.js')
  const { readLabel } = await import('../../../src/lvm/metadata-io.js')
  const { openFileDevice } = await import('../../../src/io/index.js')
  const rs = ['r0', 'r1', 'r2'].map(p)
  const RDEV = ['--devices', rs.join(',')]
  for (const f of rs) await makeFile(f, 8 << 20)
  const ok = async (argv: string[]): Promise<Record<string, unknown>> => {
    const r = await cli([...argv, '--json', ...RDEV])
    t.equal(r.exit, 0, `${argv.join(' ')}: ${r.stderr}`)
    return r.exit === 0 ? JSON.parse(r.stdout) as Record<string, unknown> : {}
  }
  await cli(['pvcreate', '--metadata-size', '64K', ...rs])
  const vgId = (await ok(['vgcreate', 'rvg', ...rs, '--pp-size', '256K']))['vgId'] as string
  await ok(['lvcreate', 'rvg', 'lv0', '--size', '512K', '--copies', '2'])
  await ok(['lvcreate', 'rvg', 'lv1', '--size', '256K'])
  const backups = (): string[] => readdirSync(join(dir, 'backup', vgId)).sort()
  t.same(backups().length, 3, 'vgcreate and each lvcreate left a backup')

  const changed = await ok(['lvchange', 'rvg/lv1', '--activate', 'n', '--permission', 'r'])
  t.same([changed['active'], changed['permission']], [false, 'r'])
  const flagged = readFileSync(join(dir, 'backup', vgId, backups().at(-1)!), 'utf8')
  t.match(flagged, /\\"act\\":\\"n\\",\\"perm\\":\\"r\\"/, 'the descriptor carries act and perm')
  await ok(['lvchange', 'rvg/lv1', '--activate', 'y', '--permission', 'rw'])
  const plain = readFileSync(join(dir, 'backup', vgId, backups().at(-1)!), 'utf8')
  t.notMatch(plain, /\\"act\\"|\\"perm\\"/, 'back to the defaults: the keys are gone')

  const removed = await ok(['pvchange', 'rvg', rs[2]!, '--remove'])
  t.same([removed['after'], removed['copies']], ['removed', 3], 'the removed PV left the placement (2 + 1)')
  const vgs = await cli(['vgs', '--json', ...RDEV])
  t.equal(vgs.exit, 0, 'the VG keeps its quorum without it')
  const back = await ok(['pvchange', 'rvg', rs[2]!, '--return'])
  t.same([back['before'], back['after'], back['copies']], ['removed', 'active', 3])

  // Every descriptor copy trashed: the newest backup puts the VG back.
  for (const f of rs) {
    const device = await openFileDevice(f)
    const label = await readLabel(device)
    const start = vgdaSlotOffset(label, 0, 0)
    await device.write(new Uint8Array(vgdaSlotOffset(label, 1, 1) + label.vgdaSlotBytes - start), start)
    await device.close()
  }
  const gone = await cli(['lvs', 'rvg', '--json', ...RDEV])
  t.notMatch(gone.stdout, /lv0/, 'no descriptor left')
  const list = await ok(['vgcfgrestore', 'rvg', '--list'])
  t.ok((list['backups'] as unknown[]).length >= 5)
  const restored = await ok(['vgcfgrestore', 'rvg'])
  t.ok((restored['seq'] as number) > (restored['backupSeq'] as number), 'committed above the backup seq')
  const lvs = await cli(['lvs', 'rvg', '--json', ...RDEV])
  t.match(lvs.stdout, /lv0/)
  t.match(lvs.stdout, /lv1/)

  // An older configuration (before lv1) wins at the next vary-on.
  const older = (list['backups'] as Array<{ path: string; lvs: number }>).find((b) => b.lvs === 1)!
  await ok(['vgcfgrestore', 'rvg', '-f', older.path])
  const after = await cli(['lvs', 'rvg', '--json', ...RDEV])
  t.match(after.stdout, /lv0/)
  t.notMatch(after.stdout, /lv1/, 'the older descriptor was adopted')

  await ok(['vgrename', 'rvg', 'rvg2'])
  t.equal((await cli(['lvs', 'rvg2', '--json', ...RDEV])).exit, 0, 'found by its new name')
  t.equal((await cli(['vgremove', 'rvg2', ...RDEV])).exit, 5, 'refused: it holds an LV')
  await ok(['vgremove', 'rvg2', '--force'])
  const pvs = await cli(['pvs', '--json', ...RDEV])
  t.notMatch(pvs.stdout, /rvg2/, 'every PV released')
  const wipe = await cli(['pvremove', ...rs])
  t.equal(wipe.exit, 0, wipe.stderr)
  const wiped = await cli(['pvs', '--json', ...RDEV])
  t.match(wiped.stdout, /not an lvmfs PV/)
})

void t.test('a backup that cannot be written warns and never fails the commit', async (t) => {
  const { FileDescriptorBackup } = await import('../../../src/lvm/index.js')
  writeFileSync(p('not-a-dir'), '')
  const warnings: string[] = []
  const backup = new FileDescriptorBackup(p('not-a-dir'), (m) => warnings.push(m), 2)
  const d = decodeBackup(readFileSync(p('vg0.json'), 'utf8'), 'vg0.json')
  await backup.save(d)
  t.match(warnings[0], /not written/)
  const kept = new FileDescriptorBackup(join(dir, 'keep2'), (m) => warnings.push(m), 2)
  for (const seq of [5, 6, 7]) await kept.save({ ...d, seq })
  t.same((await kept.list(d.vgId)).map((e) => e.seq), [6, 7], 'only the newest two are kept')
})

void t.test('vgcfgrestore, vgremove and vgrename refuse a VG its daemon serves', async (t) => {
  const { runInContext } = await import('../../../src/cli/io-context.js')
  for (const argv of [['vgcfgrestore', 'vg0'], ['vgremove', 'vg0'], ['vgrename', 'vg0', 'vgy']]) {
    let err = ''
    const stderr = { write: (chunk: string) => { err += chunk; return true } }
    const code = await runInContext({ stdout: { write: () => true }, stderr,
      online: { vg: { name: 'vg0' } as never, engine: {} as never, progress: () => undefined } },
    () => runCli([...argv, ...DEVICES]))
    t.equal(code, 5, argv.join(' '))
    t.match(err, /ENGINE_BUSY.*needs it unmounted/)
  }
})
