/**
 * The report engine of lvs/pvs/vgs without devices: LVM2 size units (dm_size_to_string),
 * `-o` and `--sort` parsing, sorting, rendering with and without separators, JSON rows; then
 * the lvs/pvs/vgs rows and fields from a hand-made descriptor and status (stale counts,
 * sync_percent, the attr columns, missing member PVs, replica columns).
 */
import t from 'tap'
import { LvmfsError } from '../../../src/errors/index.js'
import {
  cellText, formatSize, jsonRow, parseReportSpec, parseUnits, renderReport, sortRows, type FieldTable,
} from '../../../src/cli/report/format.js'
import type { VgDescriptor, VgStatus } from '../../../src/lvm/index.js'
import type { ReplicaStatus } from '../../../src/replication/index.js'
import { LV_DEFAULT, LV_FIELDS, LV_SORT, lvRows } from '../../../src/cli/report/fields-lv.js'
import { PV_FIELDS, pvRows } from '../../../src/cli/report/fields-pv.js'
import { VG_FIELDS, vgAttr, vgState, type VgRow } from '../../../src/cli/report/fields-vg.js'

/** The error `fn` throws (tap's t.throws takes a function as an Error class). */
function thrown(fn: () => unknown): LvmfsError | undefined {
  try {
    fn()
  } catch (error) {
    if (error instanceof LvmfsError) return error
    throw error
  }
  return undefined
}

const KIB = 1024
const MIB = 1024 * KIB
const GIB = 1024 * MIB

void t.test('sizes print as LVM2 prints them', async (t) => {
  const u = (type: string, suffix = true) => ({ type, suffix })
  const cases: Array<[number, string, string]> = [
    [GIB, 'h', '1.00g'], [GIB, 'H', '1.07G'], [GIB, 'r', '1.00g'], [2043 * MIB, 'r', '<2.00g'],
    [2043 * MIB, 'h', '2.00g'], [GIB, 'b', '1073741824B'], [GIB, 'B', '1073741824B'], [GIB, 's', '2097152S'],
    [GIB, 'k', '1048576.00k'], [GIB, 'K', '1073741.82K'], [GIB, 'm', '1024.00m'], [GIB, 'M', '1073.74M'],
    [GIB, 't', '0.00t'], [5 * 1024 * GIB, 'h', '5.00t'], [1000 ** 4, 'H', '1.00T'], [512, 'h', '512b'],
    [512, 'H', '512B'], [1.5 * MIB, 'h', '1.50m'],
    // glibc's %.2f rounds exact ties to even; "<" marks a value rounded up.
    [1.125 * MIB, 'm', '1.12m'], [1.375 * MIB, 'm', '1.38m'], [1.125 * MIB, 'r', '1.12m'],
    [1.375 * MIB, 'r', '<1.38m'],
    [0, 'h', '0 '], [0, 'r', '0 '], [0, 'm', '0m'], [0, 'b', '0B'], [0, 'G', '0G'],
  ]
  for (const [bytes, type, text] of cases) t.equal(formatSize(bytes, u(type)), text, `${bytes} --units ${type}`)
  t.equal(formatSize(GIB, u('g', false)), '1.00', '--nosuffix')
  t.equal(formatSize(GIB, u('b', false)), '1073741824')
  t.equal(formatSize(0, u('m', false)), '0')
  t.equal(formatSize(GIB, u('h', false)), '1.00g', 'human sizes keep their suffix (LVM2)')
  t.equal(formatSize(GIB, u('h'), 'short'), '1.00 GiB', 'the *display spelling')
  t.equal(formatSize(GIB, u('H'), 'short'), '1.07 GB')
  t.equal(formatSize(2 * 1000, u('H'), 'short'), '2.00 kB')
  t.equal(formatSize(0, u('h'), 'short'), '0   ')
  t.equal(formatSize(4096, u('b'), 'short'), '4096 B')
})

void t.test('--units accepts exactly the LVM2 letters', async (t) => {
  for (const ok of ['h', 'H', 'r', 'R', 'b', 'B', 's', 'S', 'k', 'K', 'm', 'M', 'g', 'G', 't', 'T', 'p', 'P',
    'e', 'E']) t.equal(parseUnits(ok, false).type, ok)
  t.same(parseUnits(undefined, true), { type: 'r', suffix: false }, 'default: r, like lvm.conf')
  for (const bad of ['x', 'gb', '', '2k', 'kk']) {
    const e = thrown(() => parseUnits(bad, false))
    t.ok(e?.code === 'ENGINE_USAGE' && e.exitCode === 3 && e.message.includes(`"${bad}"`),
      `--units ${JSON.stringify(bad)}: ${e?.message}`)
  }
})

interface Row { name: string; size: number; n?: number }
const FIELDS: FieldTable<Row> = [
  { name: 'x_name', aliases: ['name'], heading: 'Name', kind: 'string', get: (r) => r.name },
  { name: 'x_size', aliases: ['size'], heading: 'Size', kind: 'size', get: (r) => r.size },
  { name: 'x_n', heading: 'N', kind: 'number', get: (r) => r.n },
  { name: 'x_pct', heading: 'Pct', kind: 'percent', get: (r) => (r.n === undefined ? undefined : r.n / 2) },
]
const spec = (o?: string[], sort?: string) => parseReportSpec(FIELDS, ['x_name', 'x_size'], 'xs', o, sort, ['x_name'])
const names = (s: ReturnType<typeof spec>) => s.fields.map((f) => f.name)

void t.test('-o replaces, "+" appends, "-" drops; aliases resolve to the LVM2 name', async (t) => {
  t.same(names(spec()), ['x_name', 'x_size'])
  t.equal(spec().selected, false)
  t.same(names(spec(['size,name'])), ['x_size', 'x_name'])
  t.equal(spec(['size']).selected, true)
  t.same(names(spec(['+x_n'])), ['x_name', 'x_size', 'x_n'])
  t.same(names(spec(['+x_n', '-size'])), ['x_name', 'x_n'], 'repeated -o apply in order')
  t.same(names(spec(['NAME x_pct'])), ['x_name', 'x_pct'], 'space separated, any case')
})

void t.test('an unknown field is a usage error naming it and the valid fields', async (t) => {
  const bad = (o: string[] | undefined, sort?: string, what = 'nope') => {
    const e = thrown(() => spec(o, sort))
    t.ok(e?.code === 'ENGINE_USAGE' && e.exitCode === 3 && e.message.includes(`"${what}"`) &&
      e.message.includes('valid fields: x_name, x_size, x_n, x_pct'), `${JSON.stringify([o, sort])}: ${e?.message}`)
  }
  bad(['x_name,nope'])
  bad(['+nope'])
  bad(['-nope'])
  bad(undefined, 'x_name,-nope')
  t.match(thrown(() => spec([','])), { code: 'ENGINE_USAGE', message: 'xs: no fields selected' })
})

void t.test('--sort: several keys, "-" descending, numbers as numbers, ties keep their order', async (t) => {
  const rows: Row[] = [{ name: 'b', size: 10 }, { name: 'a', size: 9, n: 1 }, { name: 'c', size: 10, n: 2 },
    { name: 'a', size: 100 }]
  const order = (sort: string) => sortRows(rows, spec(undefined, sort)).map((r) => `${r.name}${r.size}`)
  t.same(order('name'), ['a9', 'a100', 'b10', 'c10'])
  t.same(order('size'), ['a9', 'b10', 'c10', 'a100'], 'numeric, not 10 < 100 < 9')
  t.same(order('-size,name'), ['a100', 'b10', 'c10', 'a9'])
  t.same(order('-size,-name'), ['a100', 'c10', 'b10', 'a9'])
  t.same(order('x_n'), ['b10', 'a100', 'a9', 'c10'], 'absent values first')
  t.same(sortRows(rows, spec()).map((r) => r.name), ['a', 'a', 'b', 'c'], 'the default sort')
})

void t.test('rendering: aligned columns, separators, headings, JSON', async (t) => {
  const rows: Row[] = [{ name: 'long-name', size: GIB, n: 3 }, { name: 'b', size: 512 * KIB }]
  const s = spec(['name,size,x_n,x_pct'])
  const units = { type: 'h', suffix: true }
  t.equal(renderReport(rows, s, { units, headings: true }),
    '  Name         Size N  Pct\n' +
    '  long-name   1.00g 3 1.50\n' +
    '  b         512.00k\n', 'strings left, numbers right, LVM2\'s two-space prefix, no trailing blanks')
  t.equal(renderReport(rows, s, { units: { type: 'b', suffix: true }, headings: false, separator: ',' }),
    '  long-name,1073741824B,3,1.50\n  b,524288B,,\n')
  t.equal(renderReport(rows, s, { units: { type: 'm', suffix: false }, headings: true, separator: '|' }),
    '  Name|Size|N|Pct\n  long-name|1024.00|3|1.50\n  b|0.50||\n')
  t.equal(renderReport(rows, s, { units, headings: false, separator: ':', aligned: true }),
    '  long-name:  1.00g:3:1.50\n  b        :512.00k: :\n', '--aligned pads every column')
  t.same(jsonRow(rows[0]!, s.fields), { x_name: 'long-name', x_size: GIB, x_n: 3, x_pct: 1.5 })
  t.same(jsonRow(rows[1]!, s.fields), { x_name: 'b', x_size: 512 * KIB }, 'absent values are left out')
})

// --- the lvs/pvs/vgs fields -------------------------------------------------------------------

const PP = 1024 * 1024
const ref = (pvIndex: number, pp: number) => ({ pvIndex, pp })
const d: VgDescriptor = {
  vgId: 'a'.repeat(32), name: 'vg0', seq: 7, timestampMs: 0, ppSizeBytes: PP, nextLvId: 4,
  pvs: [{ pvId: '1'.repeat(32), lastPath: '/dev/p0', ppCount: 10, removed: false },
    { pvId: '2'.repeat(32), lastPath: '/dev/p1', ppCount: 10, removed: false },
    { pvId: '3'.repeat(32), lastPath: '/dev/p2', ppCount: 10, removed: false }],
  lvs: [
    { lvId: 1, name: 'mir', copies: 2, strict: 'y', schedule: 'p', mwc: 'active', ext: {},
      lps: [[ref(0, 0), ref(1, 0)], [ref(0, 1), ref(1, 1)], [ref(0, 2), ref(1, 2)]] },
    { lvId: 2, name: 'lin', copies: 1, strict: 'n', schedule: 's', mwc: 'off', ext: {}, lps: [[ref(2, 0)]] },
    { lvId: 3, name: 'dst', copies: 1, strict: 's', schedule: 'p', mwc: 'off', lps: [[ref(0, 3)], [ref(0, 4)]],
      ext: { replica: { kind: 'mirror-async', source: { vg: 'vg0', lv: 'lin', lvId: 2 }, dataLps: 1,
        state: 'complete', createdAtMs: 0 } } },
  ],
  descriptorCopies: [{ pvIndex: 0, area: 0 }, { pvIndex: 1, area: 0 }, { pvIndex: 2, area: 0 }],
}
// PP 1 of PV 1 (mir LP 1, copy 1) is stale; PV 2 is missing.
const stale = [new Uint8Array(2), Uint8Array.of(0b10, 0), new Uint8Array(2)]
const status: VgStatus = { seq: 3, missing: [false, false, true], stale, dirtyLvs: [] }
const live = new Map<string, ReplicaStatus>([['vg0/dst', { vg: 'vg0', lv: 'dst', kind: 'mirror-async',
  origin: 'vg0/lin', state: 'complete', syncState: 'behind', lwm: 41,
  lag: { commitCount: 44, lwm: 41, commits: 3, bytes: 196608, seconds: 1.5 } }]])

void t.test('LV rows: stale PPs, sync percent, attributes, replica state', async (t) => {
  const rows = lvRows('vg0', d, status, false, live)
  const get = (lv: string, field: string) => LV_FIELDS.find((f) => f.name === field)!.get(rows.find((r) =>
    r.lv.name === lv)!)
  t.equal(get('mir', 'stale'), 1)
  t.equal(get('mir', 'sync_percent'), 66.66, 'two of three LPs have every copy fresh (floored, never 100 early)')
  t.equal(get('lin', 'sync_percent'), undefined, 'a linear LV has no sync percent (blank, as in LVM2)')
  t.equal(get('mir', 'lv_attr'), 'mwn---m---')
  t.equal(get('lin', 'lv_attr'), '-wa-----p-', 'non-strict = anywhere; its PV is missing: partial')
  t.equal(get('dst', 'lv_attr'), '-wl-------')
  t.equal(get('mir', 'lv_size'), 3 * PP)
  t.equal(get('dst', 'origin'), 'vg0/lin')
  t.equal(get('dst', 'lwm'), 41)
  t.equal(get('dst', 'lag_bytes'), 196608)
  const lag = LV_FIELDS.find((f) => f.name === 'lag')!
  const dst = rows.find((r) => r.lv.name === 'dst')!
  t.equal(cellText(lag, dst, { type: 'k', suffix: true }), '3 commits, 192.00k, 1.5s', 'the lag in the units asked')
  t.equal(get('mir', 'origin'), undefined)
  const active = lvRows('vg0', d, status, true, new Map())
  t.equal(LV_FIELDS.find((f) => f.name === 'lv_attr')!.get(active[0]!), 'mwn-a-m---', 'served here: active')
  t.equal(active.find((r) => r.lv.name === 'dst')!.replica!.sync, 'complete', 'offline: the state on disk')
})

void t.test('the default lvs report of those rows', async (t) => {
  const spec = parseReportSpec(LV_FIELDS, LV_DEFAULT, 'lvs', ['lv_name,copies,sync_percent,stale,origin,lag'],
    undefined, LV_SORT)
  const rows = sortRows(lvRows('vg0', d, status, false, live), spec)
  t.equal(renderReport(rows, spec, { units: { type: 'b', suffix: true }, headings: false, separator: ';' }),
    '  dst;1;;0;vg0/lin;3 commits, 196608B, 1.5s\n  lin;1;;0;;\n  mir;2;66.66;1;;\n')
  t.same(jsonRow(rows[2]!, spec.fields), { lv_name: 'mir', copies: 2, sync_percent: 66.66, stale: 1 })
})

void t.test('PV rows: scanned, orphan, duplicate, and a member no device carries', async (t) => {
  const label = (pvId: string, vgId: string) => ({ pvId, vgId, ppSizeLog2: vgId === '0'.repeat(32) ? 0 : 20,
    ppCount: 10, deviceSizeBytes: 12 * PP }) as never
  const devices = [{ path: '/dev/p0', label: label('1'.repeat(32), d.vgId) },
    { path: '/dev/p1', label: label('2'.repeat(32), d.vgId) }, { path: '/dev/o', label: label('9'.repeat(32), '0'.repeat(32)) },
    { path: '/dev/o2', label: label('9'.repeat(32), '0'.repeat(32)) }, { path: '/dev/junk' }]
  const rows = pvRows(devices, [{ name: 'vg0', vgId: d.vgId, descriptor: d, status, vvgOut: [
    { pvId: '1'.repeat(32), name: '/dev/p0', status: 'LVM_PVACTIVE' },
    { pvId: '2'.repeat(32), name: '/dev/p1', status: 'LVM_PVACTIVE' },
    { pvId: '3'.repeat(32), name: null, status: 'LVM_NONAME' }] }])
  const text = (field: string) => rows.map((r) => cellText(PV_FIELDS.find((f) => f.name === field)!, r,
    { type: 'm', suffix: true }))
  t.same(text('pv_name'), ['/dev/p0', '/dev/p1', '/dev/o', '/dev/o2', '/dev/p2'])
  t.same(text('pv_state'), ['active', 'active', '', '', 'missing'])
  t.same(text('pv_attr'), ['a--', 'a--', '---', '---', '--m'])
  t.same(text('pv_status'), ['LVM_PVACTIVE', 'LVM_PVACTIVE', 'LVM_DUPPVID', 'LVM_DUPPVID', 'LVM_NONAME'])
  t.same(text('pv_pe_alloc_count'), ['5', '3', '0', '0', '1'])
  t.same(text('pv_free'), ['5.00m', '7.00m', '12.00m', '12.00m', '9.00m'])
  t.same(text('pv_used'), ['5.00m', '3.00m', '0m', '0m', '1.00m'])
  t.same(text('stale'), ['0', '1', '0', '0', '0'])
})

void t.test('VG rows: sizes, counts, attributes and state', async (t) => {
  const row: VgRow = { name: 'vg0', vgId: d.vgId, rc: 'LVM_CHKVVGOUT', descriptor: d, active: false,
    copies: { present: 2, total: 3 }, vvgOut: [{ pvId: '3'.repeat(32), name: null, status: 'LVM_NONAME' }] }
  const text = (field: string) => cellText(VG_FIELDS.find((f) => f.name === field)!, row, { type: 'b', suffix: true })
  t.same(['vg_size', 'vg_free', 'vg_extent_count', 'vg_free_count', 'vg_alloc_count', 'pv_count', 'lv_count',
    'vg_missing_pv_count', 'quorum', 'vg_seqno'].map(text),
  ['31457280B', '22020096B', '30', '21', '9', '3', '3', '1', '2/3', '7'])
  t.equal(vgAttr(row), 'wz-pn-')
  t.equal(vgState(row), 'partial')
  t.equal(vgState({ ...row, error: 'LVM_NOQUORUM' }), 'LVM_NOQUORUM')
  t.equal(vgAttr({ ...row, vvgOut: [], descriptor: { ...d, shared: true } }), 'wz--ns')
})
