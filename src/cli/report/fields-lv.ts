/**
 * lvs / lvdisplay fields: one row per LV, built from the VG's descriptor and status (scanned
 * from the devices, or the daemon's online VG when the command runs there) and, for replicas,
 * the replication engine's status (mark and lag exist only in the daemon serving the VG).
 */
import { isThinLv, isThinPool, thinOf, type LvDescriptor, type VgDescriptor, type VgStatus } from '../../lvm/index.js'
import { replicaOf, type ReplicaStatus } from '../../replication/index.js'
import { formatSize, type FieldTable } from './format.js'

export interface LvRow {
  readonly vg: string
  readonly vgId: string
  readonly lv: LvDescriptor
  readonly ppSizeBytes: number
  readonly stalePps: number
  /** LPs whose copies are all fresh. */
  readonly syncedLps: number
  /** Some copy sits on a PV that is missing or removed. */
  readonly partial: boolean
  readonly dirty: boolean
  /** Served by the daemon this command runs in. */
  readonly active: boolean
  /** lvId -> name of every LV of the VG (a thin LV names its pool and origin by lvId). */
  readonly lvNames: ReadonlyMap<number, string>
  readonly replica?: { readonly kind: string; readonly origin: string; readonly sync: string;
    readonly lwm?: number; readonly lag?: ReplicaStatus['lag'] }
}

export function isStale(status: VgStatus | undefined, pvIndex: number, pp: number): boolean {
  return ((status?.stale[pvIndex]?.[pp >> 3] ?? 0) & (1 << (pp & 7))) !== 0
}

export function lvRows(vgName: string, d: VgDescriptor, status: VgStatus | undefined, active: boolean,
  live: ReadonlyMap<string, ReplicaStatus>): LvRow[] {
  const gone = d.pvs.map((pv, i) => pv.removed || status?.missing[i] === true)
  const lvNames = new Map(d.lvs.map((lv) => [lv.lvId, lv.name]))
  return d.lvs.map((lv) => {
    let stalePps = 0
    let syncedLps = 0
    for (const copies of lv.lps) {
      const stale = copies.filter((r) => isStale(status, r.pvIndex, r.pp)).length
      stalePps += stale
      if (stale === 0) syncedLps++
    }
    const replica = replicaOf(lv)
    const status0 = live.get(`${vgName}/${lv.name}`)
    return { vg: vgName, vgId: d.vgId, lv, ppSizeBytes: d.ppSizeBytes, stalePps, syncedLps, active, lvNames,
      partial: lv.lps.some((copies) => copies.some((r) => gone[r.pvIndex] === true)),
      dirty: status?.dirtyLvs.includes(lv.lvId) ?? false,
      ...(replica === undefined ? {} : { replica: {
        kind: replica.kind, origin: status0?.origin ?? `${replica.source.vg}/${replica.source.lv}`,
        sync: status0?.syncState ?? replica.state,
        ...(status0?.lwm === undefined ? {} : { lwm: status0.lwm }),
        ...(status0?.lag === undefined ? {} : { lag: status0.lag }) } }) }
  })
}

const sizeOf = (r: LvRow): number => thinOf(r.lv)?.virtualBytes ?? r.lv.lps.length * r.ppSizeBytes

/** The pool a thin LV lives in, and the thin LV a snapshot was taken of (by name). */
function thinPoolName(r: LvRow): string | undefined {
  const thin = thinOf(r.lv)
  return thin === undefined ? undefined : r.lvNames.get(thin.poolLvId)
}

function thinOriginName(r: LvRow): string | undefined {
  const origin = thinOf(r.lv)?.originLvId
  return origin === undefined ? undefined : r.lvNames.get(origin)
}

/**
 * LVM2's 10-character lv_attr, mapped where lvmfs has the concept: type (m mirrored), w, the
 * allocation policy from strictness (n normal = strict, a anywhere = non-strict, l cling =
 * superstrict), state (a when served here), target type (m) and health (p partial); the
 * rest have no lvmfs equivalent and stay "-".
 */
export function lvAttr(r: LvRow): string {
  const mirrored = r.lv.copies > 1
  const alloc = r.lv.strict === 'y' ? 'n' : r.lv.strict === 'n' ? 'a' : 'l'
  // LVM2's volume types: t thin pool, V thin volume; target type t for both.
  const thin = isThinLv(r.lv) ? 'V' : isThinPool(r.lv) ? 't' : undefined
  const type = thin ?? (mirrored ? 'm' : '-')
  const target = thin !== undefined ? 't' : mirrored ? 'm' : '-'
  return `${type}w${alloc}-${r.active ? 'a' : '-'}-${target}-${r.partial ? 'p' : '-'}-`
}

export const LV_FIELDS: FieldTable<LvRow> = [
  { name: 'lv_name', aliases: ['name', 'lv'], heading: 'LV', kind: 'string', get: (r) => r.lv.name },
  { name: 'vg_name', aliases: ['vg'], heading: 'VG', kind: 'string', get: (r) => r.vg },
  { name: 'lv_full_name', heading: 'LV', kind: 'string', get: (r) => `${r.vg}/${r.lv.name}` },
  { name: 'lv_attr', aliases: ['attr'], heading: 'Attr', kind: 'string', get: lvAttr },
  { name: 'lv_active', aliases: ['active'], heading: 'Active', kind: 'string', get: (r) => (r.active ? 'active' : '') },
  { name: 'lv_id', aliases: ['lv_uuid', 'uuid', 'id'], heading: 'Id', kind: 'number', get: (r) => r.lv.lvId },
  { name: 'lv_size', aliases: ['size', 'lsize'], heading: 'LSize', kind: 'size', get: sizeOf },
  { name: 'lp_count', aliases: ['le_count', 'lv_extent_count'], heading: 'LPs', kind: 'number',
    get: (r) => r.lv.lps.length },
  { name: 'copies', aliases: ['#copies'], heading: 'Copies', kind: 'number', get: (r) => r.lv.copies },
  { name: 'sync_percent', aliases: ['copy_percent', 'cpy%sync'], heading: 'Cpy%Sync', kind: 'percent',
    get: (r) => (r.lv.copies === 1 ? undefined
      : r.lv.lps.length === 0 ? 100 : Math.floor((r.syncedLps * 10000) / r.lv.lps.length) / 100) },
  { name: 'stale', aliases: ['stale_pps'], heading: 'Stale', kind: 'number', get: (r) => r.stalePps },
  { name: 'strict', heading: 'Strict', kind: 'string', get: (r) => r.lv.strict },
  { name: 'schedule', aliases: ['sched'], heading: 'Sched', kind: 'string', get: (r) => r.lv.schedule },
  { name: 'mwc', heading: 'MWC', kind: 'string', get: (r) => r.lv.mwc },
  { name: 'al_extents', heading: 'AL', kind: 'number', get: (r) => (r.lv.mwc === 'active' ? r.lv.alExtents ?? 1237
    : undefined) },
  { name: 'dirty', heading: 'Dirty', kind: 'string', get: (r) => (r.dirty ? 'y' : 'n') },
  { name: 'origin', heading: 'Origin', kind: 'string', get: (r) => thinOriginName(r) ?? r.replica?.origin },
  { name: 'pool_lv', aliases: ['pool'], heading: 'Pool', kind: 'string', get: thinPoolName },
  { name: 'replica_type', aliases: ['replica'], heading: 'Replica', kind: 'string', get: (r) => r.replica?.kind },
  { name: 'sync_state', heading: 'Sync', kind: 'string', get: (r) => r.replica?.sync },
  { name: 'lwm', aliases: ['mark'], heading: 'Mark', kind: 'number', get: (r) => r.replica?.lwm },
  { name: 'lag', heading: 'Lag', kind: 'string',
    get: (r) => (r.replica?.lag === undefined ? undefined : lagText(r.replica.lag, 'b')),
    text: (r, units) => (r.replica?.lag === undefined ? undefined : lagText(r.replica.lag, units.type, units.suffix)) },
  { name: 'lag_commits', heading: 'LagC', kind: 'number', get: (r) => r.replica?.lag?.commits },
  { name: 'lag_bytes', heading: 'LagSize', kind: 'size', get: (r) => r.replica?.lag?.bytes },
  { name: 'lag_seconds', heading: 'LagS', kind: 'number', get: (r) => r.replica?.lag?.seconds },
]

function lagText(lag: NonNullable<ReplicaStatus['lag']>, unitType: string, suffix = true): string {
  return `${lag.commits} commits, ${formatSize(lag.bytes, { type: unitType, suffix })}, ${lag.seconds.toFixed(1)}s`
}

export const LV_DEFAULT = ['lv_name', 'vg_name', 'lv_attr', 'lv_id', 'lv_size', 'lp_count', 'copies', 'sync_percent',
  'stale', 'strict', 'schedule', 'mwc', 'pool_lv', 'origin', 'replica_type', 'sync_state', 'lwm', 'lag']
export const LV_SORT = ['vg_name', 'lv_name']
