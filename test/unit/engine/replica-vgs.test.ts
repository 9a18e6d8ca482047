/**
 * ReplicaVgs bookkeeping: which VGs a daemon holds online for replication (those its sources'
 * replicas live in, and those asked for by name), and the retry period's setting.
 */
import t from 'tap'
import { ReplicaVgs, replicaRetryMs, DEFAULT_REPLICA_RETRY_MS } from '../../../src/engine/replica-vgs.js'
import type { VolumeGroup } from '../../../src/lvm/index.js'
import type { ReplicationEngine } from '../../../src/replication/index.js'

void t.test('LVMFS_REPLICA_RETRY_MS: default, a value, and a bad value named', async (t) => {
  t.equal(replicaRetryMs({}), DEFAULT_REPLICA_RETRY_MS)
  t.equal(replicaRetryMs({ LVMFS_REPLICA_RETRY_MS: '750' }), 750)
  t.throws(() => replicaRetryMs({ LVMFS_REPLICA_RETRY_MS: 'often' }), { code: 'ENGINE_USAGE',
    context: { field: 'LVMFS_REPLICA_RETRY_MS' } })
  t.throws(() => replicaRetryMs({ LVMFS_REPLICA_RETRY_MS: '1' }), { code: 'ENGINE_USAGE' })
})

void t.test('related VGs: the other VGs the sources\' children name, never the own one', async (t) => {
  const child = (vg: string, lv: string): object => ({ vg, lv, kind: 'mirror-async' })
  const vg = { name: 'vg0', state: 'online', descriptor: { lvs: [
    { name: 's', ext: { replicaSource: { children: [child('dr', 'm'), child('vg0', 'c')] } } },
    { name: 't', ext: { replicaSource: { children: [child('pool', 'k'), child('dr', 'n')] } } },
    { name: 'plain', ext: {} },
  ] } } as unknown as VolumeGroup
  const log = { info: () => {}, warn: () => {} }
  const replicaVgs = new ReplicaVgs({ vg, replication: {} as ReplicationEngine, devices: [], log, onChange: () => {} })
  t.same(replicaVgs.related(), ['dr', 'pool'])
  t.same(replicaVgs.states(), [{ vg: 'dr', state: 'unreachable' }, { vg: 'pool', state: 'unreachable' }],
    'nothing is online before the first attempt')
  t.equal(replicaVgs.vg('dr'), undefined)
})
