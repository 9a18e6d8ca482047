/**
 * lvs/pvs/vgs/lvdisplay through the CLI, in process, on sparse PV files: exact
 * `--noheadings --separator , --units b` output, JSON of selected fields, and a bad field
 * refused with exit 3 before any device is touched (every PV file's sha256 unchanged).
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { readFileSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { captureCli } from '../../helpers/mirror-cli-fixture.js'

const dir = t.testdir()
const savedLockDir = process.env['LVMFS_LOCK_DIR']
process.env['LVMFS_LOCK_DIR'] = join(dir, 'locks')
t.teardown(() => {
  if (savedLockDir === undefined) delete process.env['LVMFS_LOCK_DIR']
  else process.env['LVMFS_LOCK_DIR'] = savedLockDir
})
const FILES = ['pv0', 'pv1', 'pv2'].map((name) => join(dir, name))
const DEVICES = ['--devices', FILES.join(',')]
const hashes = (): string[] => FILES.map((f) => createHash('sha256').update(readFileSync(f)).digest('hex'))

async function ok(argv: string[]): Promise<string> {
  const r = await captureCli(argv)
  if (r.code !== 0) throw new Error(`${argv.join(' ')}: exit ${r.code}: ${r.stderr}`)
  return r.stdout
}

t.before(async () => {
  for (const f of FILES) {
    writeFileSync(f, '')
    truncateSync(f, 8 << 20)
  }
  await ok(['pvcreate', '--metadata-size', '64K', ...FILES])
  await ok(['vgcreate', 'vg0', FILES[0]!, FILES[1]!, '--pp-size', '256K', ...DEVICES])
  await ok(['lvcreate', 'vg0', 'mir', '--size', '1M', '--copies', '2', ...DEVICES])
  await ok(['lvcreate', 'vg0', 'lin', '--size', '512K', ...DEVICES])
})

void t.test('lvs -o ... --noheadings --separator , --units b', async (t) => {
  const out = await ok(['lvs', '-o', 'lv_name,vg_name,size,copies,sync_percent,stale,origin,lag,lv_attr',
    '--noheadings', '--separator', ',', '--units', 'b', ...DEVICES])
  t.equal(out, '  lin,vg0,524288B,1,,0,,,-wn-------\n  mir,vg0,1048576B,2,100.00,0,,,mwn---m---\n')
  t.equal(await ok(['lvs', 'vg0/mir', '-o', 'name', '-o', '+lp_count', '--sort', '-size', '--noheadings',
    ...DEVICES]), '  mir 4\n', 'VG/LV, repeated -o')
  const json = JSON.parse(await ok(['lvs', 'vg0', '-o', 'lv_name,lv_size,copies', '--sort', '-lv_size', '--json',
    ...DEVICES])) as unknown
  t.same(json, { report: [{ lv: [{ lv_name: 'mir', lv_size: 1048576, copies: 2 },
    { lv_name: 'lin', lv_size: 524288, copies: 1 }] }] })
  const legacy = JSON.parse(await ok(['lvs', 'vg0', '--json', ...DEVICES])) as { lvs: Array<{ lv: string }> }
  t.same(legacy.lvs.map((lv) => lv.lv), ['lin', 'mir'], 'without -o, the JSON lvs always printed')
})

void t.test('pvs and vgs with fields and units', async (t) => {
  t.equal(await ok(['pvs', '-o', 'pv_name,vg_name,pv_pe_alloc_count,pv_attr', '--separator', '|', ...DEVICES]),
    `  PV|VG|Alloc|Attr\n  ${FILES[0]}|vg0|6|a--\n  ${FILES[1]}|vg0|4|a--\n  ${FILES[2]}||0|---\n`)
  t.equal(await ok(['vgs', '-o', 'vg_name,pv_count,lv_count,vg_extent_size,vg_free_count,quorum,vg_state',
    '--units', 'k', '--nosuffix', '--noheadings', ...DEVICES]), '  vg0 2 2 256.00 50 3/3 ok\n'.replace('50',
    String(await freePps())))
  const vgs = JSON.parse(await ok(['vgs', '-o', '+vg_uuid', '--json', ...DEVICES])) as
    { report: Array<{ vg: Array<Record<string, unknown>> }> }
  t.equal(vgs.report[0]!.vg[0]!['pv_count'], 2, 'numbers as numbers')
  t.match(vgs.report[0]!.vg[0]!['vg_uuid'], /^[0-9a-f]{32}$/, '+field appends to the defaults')
})

async function freePps(): Promise<number> {
  const legacy = JSON.parse(await ok(['vgs', '--json', ...DEVICES])) as { vgs: Array<{ freePps: number }> }
  return legacy.vgs[0]!.freePps
}

void t.test('lvdisplay', async (t) => {
  const out = await ok(['lvdisplay', 'vg0/mir', ...DEVICES])
  t.match(out, /^ {2}--- Logical volume ---\n {2}LV Name {16}mir\n {2}VG Name {16}vg0\n/)
  t.match(out, /\n {2}LV Size {16}1\.00 MiB\n/)
  t.match(out, /\n {2}Mirrored volumes {7}2\n/)
  const json = JSON.parse(await ok(['lvdisplay', 'vg0/mir', '--json', ...DEVICES])) as
    { lvs: Array<Record<string, unknown>> }
  t.match(json.lvs, [{ lv_name: 'mir', lv_size: 1048576, copies: 2, sync_percent: 100, stale: 0 }])
})

void t.test('an unknown field or unit: exit 3, ENGINE_USAGE naming it, no byte of any PV changed', async (t) => {
  const before = hashes()
  for (const argv of [['lvs', '-o', 'lv_name,bogus'], ['lvs', 'vg0', '--sort', 'bogus'], ['pvs', '-o', '+bogus'],
    ['vgs', '-o', 'bogus'], ['lvs', '--units', 'bogus'], ['lvdisplay', '--units', 'bogus']]) {
    const r = await captureCli([...argv, ...DEVICES])
    t.equal(r.code, 3, argv.join(' '))
    t.match(r.stderr, /^lvmfs: ENGINE_USAGE: .*"bogus"/, `${argv.join(' ')}: names it`)
    if (argv[1] === '-o') t.match(r.stderr, /valid fields: \w+_name, /, 'and lists the valid fields')
    t.equal(r.stdout, '')
    t.same(hashes(), before, `${argv.join(' ')}: no byte changed`)
  }
})
