// The decisions of the kernel block path (src/engine/block-devices.ts), on synthetic
// descriptors: which LVs are one run on one PV, which native maps are plain I/O, and which
// descriptor changes must take a device away before they commit.
import t from 'tap'
import { breaksDevice, isPlainMap, linearRunOf } from '../../../src/engine/block-devices.js'
import type { LvDescriptor, VgDescriptor } from '../../../src/lvm/index.js'
import type { VolumeMap } from '../../../src/native/index.js'

type Lps = Array<Array<{ pvIndex: number; pp: number }>>

function lvOf(lps: Lps, extra: Partial<Record<string, unknown>> = {}): LvDescriptor {
  return { lvId: 7, name: 'lin', copies: lps[0]?.length ?? 1, lps, ext: {}, ...extra } as unknown as LvDescriptor
}

function vgOf(...lvs: LvDescriptor[]): VgDescriptor {
  return { pvs: [{ pvId: 'pv-a' }, { pvId: 'pv-b' }], lvs } as unknown as VgDescriptor
}

const run4: Lps = [0, 1, 2, 3].map((i) => [{ pvIndex: 0, pp: 10 + i }])

t.test('linearRunOf: one run on one PV, nothing else', async (t) => {
  t.same(linearRunOf(vgOf(), lvOf(run4)), { pvIndex: 0, pvId: 'pv-a', firstPp: 10, lps: 4 })
  t.equal(linearRunOf(vgOf(), lvOf([[{ pvIndex: 0, pp: 10 }], [{ pvIndex: 0, pp: 12 }]])), undefined, 'a gap')
  t.equal(linearRunOf(vgOf(), lvOf([[{ pvIndex: 0, pp: 10 }], [{ pvIndex: 1, pp: 11 }]])), undefined, 'two PVs')
  t.equal(linearRunOf(vgOf(), lvOf([[{ pvIndex: 0, pp: 10 }, { pvIndex: 1, pp: 3 }]])), undefined, 'two copies')
  t.equal(linearRunOf(vgOf(), lvOf([])), undefined, 'no LPs')
})

function mapOf(extents: Array<Array<{ fd: number; offsetBytes: number; stale?: boolean }>>, gateBytes = 0): VolumeMap {
  return { sizeBytes: extents.length * 4096, extentBytes: 4096, gateBytes, readPolicy: 'primary',
    writeSchedule: 'parallel', readOnly: false,
    extents: extents.map((copies) => ({ copies: copies.map((copy) => ({ stale: false, ...copy })) })) } as VolumeMap
}

t.test('isPlainMap: one fresh copy per extent, one fd, contiguous offsets, no gates', async (t) => {
  t.ok(isPlainMap(mapOf([[{ fd: 3, offsetBytes: 8192 }], [{ fd: 3, offsetBytes: 12288 }]])))
  t.notOk(isPlainMap(mapOf([[{ fd: 3, offsetBytes: 8192 }]], 4096)), 'gated (MWC, clone, replication)')
  t.notOk(isPlainMap(mapOf([[{ fd: 3, offsetBytes: 0 }], [{ fd: 4, offsetBytes: 4096 }]])), 'two fds')
  t.notOk(isPlainMap(mapOf([[{ fd: 3, offsetBytes: 0 }], [{ fd: 3, offsetBytes: 8192 }]])), 'a gap')
  t.notOk(isPlainMap(mapOf([[{ fd: 3, offsetBytes: 0 }, { fd: 4, offsetBytes: 0 }]])), 'a sync-mirror target copy')
  t.notOk(isPlainMap(mapOf([[{ fd: 3, offsetBytes: 0, stale: true }]])), 'a stale copy')
  t.notOk(isPlainMap(mapOf([])), 'empty')
})

t.test('breaksDevice: what a commit may and may not do under a device', async (t) => {
  const range = { pvIndex: 0, pvId: 'pv-a', firstPp: 10, lps: 4, readOnly: false }
  const cases: Array<[string, VgDescriptor, string | undefined]> = [
    ['unchanged', vgOf(lvOf(run4)), undefined],
    ['renamed', vgOf(lvOf(run4, { name: 'other' })), undefined],
    ['extended (the device grows later, or stays)', vgOf(lvOf([...run4, [{ pvIndex: 1, pp: 0 }]])), undefined],
    ['MWC or other policy keys', vgOf(lvOf(run4, { mwc: 'passive' })), undefined],
    ['removed', vgOf(), 'removes the LV'],
    ['deactivated', vgOf(lvOf(run4, { inactive: true })), 'deactivates the LV'],
    ['made read-only', vgOf(lvOf(run4, { readOnly: true })), 'changes the LV\'s permission'],
    ['cloned', vgOf(lvOf(run4, { ext: { replicaSource: { children: [] } } })), 'gives the LV a replication role'],
    ['a replica', vgOf(lvOf(run4, { ext: { replica: { kind: 'copy' } } })), 'gives the LV a replication role'],
    ['reduced', vgOf(lvOf(run4.slice(0, 3))), 'shrinks the LV'],
    ['mirrored', vgOf(lvOf(run4.map((copies) => [...copies, { pvIndex: 1, pp: 0 }]))), 'adds copies to the LV'],
    ['one LP moved (pvmove)', vgOf(lvOf([run4[0]!, [{ pvIndex: 1, pp: 5 }], run4[2]!, run4[3]!])),
      'moves the LV\'s partitions'],
    ['PV index renumbered to another PV', { ...vgOf(lvOf(run4)), pvs: [{ pvId: 'pv-z' }] } as unknown as VgDescriptor,
      'moves the LV\'s partitions'],
  ]
  for (const [what, next, expected] of cases) t.equal(breaksDevice(range, next, 7), expected, what)
  t.equal(breaksDevice({ ...range, readOnly: true }, vgOf(lvOf(run4, { readOnly: true })), 7), undefined,
    'a read-only device of a read-only LV')
})
