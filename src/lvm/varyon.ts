/**
 * lvm_varyonvg and lvm_varyoffvg (shared/reference/aix-lvm_varyonvg.txt).
 *
 * Algorithm (domain.md §6.6):
 *  1. Validate parameters → LVM_INVALID_PARAM.
 *  2. Probe each vvg_in entry (probe.ts): LVM_NOTCHARDEV / LVM_INV_DEVENT / LVM_INVCONFIG abort;
 *     otherwise provisional PVNOTFND / PVNOTINVG / PVINVG, or DUPPVID / NAMIDNMTCH.
 *  3. Read all copies on PVINVG devices and choose (read-vg.ts). No valid copy: LVM_NOVGDAS
 *     with override, else LVM_NOQUORUM; no majority without override: LVM_NOQUORUM. In those
 *     cases vvg_out holds only the provisional statuses and NOTHING has been written.
 *  4. Membership: ACTIVE / MISSING / REMOVED / INVPVID / LVMRECNMTCH / NONAME per entry and per
 *     unnamed member. Gates: NONAME without missname_von → LVM_MISSPVNAME; a MISSING member
 *     without misspv_von → LVM_MISSINGPV (REMOVED members do not block, per the reference).
 *     Still nothing written.
 *  5. Forced vary-on (override and no quorum): missing members become REMOVED and their copies
 *     leave the placement (a descriptor commit needing only the new placement's majority).
 *  6. Recovery: if any reachable copy position is stale, torn or absent, the adopted descriptor
 *     is committed again (seq above every seq seen, so it supersedes any unseen minority
 *     write); the status is committed when it changed (MISSING flags) or a copy was stale.
 *  7. Return LVM_SUCCESS, or LVM_CHKVVGOUT when some vvg_out status is not ACTIVE.
 * A vary-on of a VG already online in this process returns MISSING PVs named in vvg_in to
 * ACTIVE (second-varyon.ts). `readOnly` runs steps 1-4 only, without claiming devices.
 */
import { CODES, LvmfsError, isLvmfsError } from '../errors/index.js'
import { isId, NAME_PATTERN } from '../format/index.js'
import { descriptorProblems } from './descriptor.js'
import type { ReadStats } from './metadata-io.js'
import type { PvStatusName, VaryOnFlags, VaryOnRc, VgDescriptor, VgStatus, VvgIn, VvgOut } from './model.js'
import type { DescriptorBackup } from './backup.js'
import { CopySlots } from './commit.js'
import { OnlineVg } from './online-vg.js'
import { PvSet, type DeviceOpener } from './pv-set.js'
import type { OnlineVgRegistry } from './vg-registry.js'
import { closeProbes, probeEntries, RcError, type Probe } from './probe.js'
import { readVgCopies, type VgRead } from './read-vg.js'
import { statusEquals, statusFromRecords } from './status.js'
import { placeKey } from './placement.js'
import { defaultOpener } from './pv-ops.js'
import { secondVaryOn } from './second-varyon.js'
import { resolveVgId, scanLabels } from './scan.js'
import type { VolumeGroup } from './volume-group.js'

export interface VaryOnRequest {
  readonly vgName?: string
  readonly vgId?: string
  /** Candidate devices: used to find the VG by name and, without vvgIn, as vvg_in (the
   * devices whose label names the VG). */
  readonly devices?: readonly string[]
  readonly vvgIn?: readonly VvgIn[]
  readonly flags?: VaryOnFlags
  readonly opener?: DeviceOpener
  /** Steps 1-4 only: no writes, no exclusive claims (pvs/vgs/lvs). */
  readonly readOnly?: boolean
  /** Shared vary-on (lvm/shared-vg.ts): PVs are opened without the exclusive claim, and only a VG
   * created with --shared is accepted (LVM_INVCONFIG otherwise). The caller holds the VG lock EX
   * of the DLM meanwhile, since recovery may write. */
  readonly shared?: boolean
  readonly stats?: ReadStats
  /** The VGs this process has online: the new VG joins it, and a vary-on of a VG already in
   * it is a second vary-on (second-varyon.ts). Without one, the caller owns the VG alone. */
  readonly registry?: OnlineVgRegistry
  /** Receives every descriptor the VG commits from now on (backup.ts). */
  readonly backup?: DescriptorBackup
}

export interface VaryOnResult {
  readonly rc: VaryOnRc
  /** AIX number of rc where known (0, 51, or a negative liblvm value). */
  readonly rcRef: number | undefined
  readonly vvgOut: readonly VvgOut[]
  readonly vg?: VolumeGroup
  /** The typed error behind a failing rc (its code may be more specific, e.g. LVM_VGFORK). */
  readonly error?: LvmfsError
  /** Read-only mode: what was adopted. */
  readonly descriptor?: VgDescriptor
  readonly status?: VgStatus
  /** Descriptor copies found valid / placement size, and names of bad copies (diagnostics). */
  readonly copies?: { readonly present: number; readonly total: number; readonly bad: readonly string[] }
}

const RC_CODES = new Set(['LVM_ALLOCERR', 'LVM_INVALID_PARAM', 'LVM_INVCONFIG', 'LVM_INV_DEVENT', 'LVM_MAPFOPN',
  'LVM_MAPFRDWR', 'LVM_MISSINGPV', 'LVM_MISSPVNAME', 'LVM_NOQUORUM', 'LVM_NOTCHARDEV', 'LVM_NOVGDAS'])

export function rcRef(rc: VaryOnRc): number | undefined {
  if (rc === 'LVM_SUCCESS') return 0
  if (rc === 'LVM_CHKVVGOUT') return 51
  return (CODES[rc] as { ref?: number }).ref
}

export function failure(rc: VaryOnRc, error: LvmfsError, vvgOut: readonly VvgOut[] = []): VaryOnResult {
  return { rc, rcRef: rcRef(rc), vvgOut, error }
}

export async function varyOnVg(request: VaryOnRequest): Promise<VaryOnResult> {
  try {
    return await varyOnChecked(request)
  } catch (error) {
    if (error instanceof RcError) return failure(error.error.code as VaryOnRc, error.error)
    if (error instanceof RangeError) {
      return failure('LVM_ALLOCERR', new LvmfsError('LVM_ALLOCERR', 'memory allocation failed', { cause: error }))
    }
    if (isLvmfsError(error) && RC_CODES.has(error.code)) return failure(error.code as VaryOnRc, error)
    throw error
  }
}

function invalid(message: string, detail?: string): RcError {
  return new RcError(new LvmfsError('LVM_INVALID_PARAM', message, detail === undefined ? {} : { detail }))
}

function validateRequest(request: VaryOnRequest): void {
  const flags = request.flags ?? {}
  for (const [name, value] of Object.entries(flags)) {
    if (value !== undefined && typeof value !== 'boolean') throw invalid(`flag ${name} is not a boolean`)
  }
  if (flags.override === true && flags.misspvVon !== true) {
    throw invalid('override (--force) needs misspv_von (--missing-ok)')
  }
  if (request.vgId === undefined && request.vgName === undefined) throw invalid('no VG name or id')
  if (request.vgId !== undefined && !isId(request.vgId)) throw invalid(`malformed VG id "${request.vgId}"`)
  if (request.vgName !== undefined && !NAME_PATTERN.test(request.vgName)) {
    throw invalid(`invalid VG name "${request.vgName}"`)
  }
  if (request.vvgIn === undefined && request.devices === undefined) throw invalid('neither vvg_in nor devices given')
  const names = new Set<string>()
  for (const entry of request.vvgIn ?? []) {
    if (typeof entry.name !== 'string' || entry.name === '' || entry.name.includes('\0')) {
      throw invalid('empty or malformed device name in vvg_in')
    }
    if (entry.pvId !== undefined && !isId(entry.pvId)) throw invalid(`malformed PV id "${entry.pvId}"`)
    if (names.has(entry.name)) throw invalid(`device "${entry.name}" appears twice in vvg_in`)
    names.add(entry.name)
  }
}

async function varyOnChecked(request: VaryOnRequest): Promise<VaryOnResult> {
  validateRequest(request)
  const opener = request.opener ?? defaultOpener
  const statEntries = opener === defaultOpener
  const flags = request.flags ?? {}
  const readOnly = request.readOnly === true
  const candidates = [...new Set([...(request.devices ?? []), ...(request.vvgIn ?? []).map((e) => e.name)])]
  const scanned = request.vvgIn === undefined || request.vgId === undefined
    ? await scanLabels(candidates, opener) : undefined
  const vgId = request.vgId ?? await resolveVgId(request.vgName!, candidates, opener, scanned)
  if (vgId === undefined) {
    // A VG on devices that cannot be reached (a remote PV whose host is away) names them.
    const unreadable = (scanned ?? []).filter((d) => d.label === undefined && d.problem !== undefined &&
      d.problem !== 'not an lvmfs PV')
    throw invalid(`no volume group named "${request.vgName}" on the given devices`, unreadable.length === 0 ? undefined
      : `Devices that could not be read: ${unreadable.map((d) => `${d.path} (${d.problem!})`).join('; ')}.`)
  }
  const online = request.registry?.get(vgId)
  if (online !== undefined && !readOnly) {
    // Without vvg_in, only devices whose label names this VG are candidates to come back.
    const named = request.vvgIn ?? scanned!.filter((d) => d.label?.vgId === vgId).map((d) => ({ name: d.path }))
    return secondVaryOn(online, named, statEntries)
  }
  let vvgIn = request.vvgIn
  if (vvgIn === undefined) {
    vvgIn = scanned!.filter((d) => d.label?.vgId === vgId && request.devices!.includes(d.path))
      .map((d) => ({ name: d.path }))
  }
  const shared = request.shared === true
  const probes = await probeEntries(vvgIn, vgId, opener, { readOnly, shared, statEntries,
    ...(request.stats ? { stats: request.stats } : {}) })
  let handedOver = false
  try {
    const members = probes.filter((p) => p.status === 'LVM_PVINVG')
    const read = await readVgCopies(vgId, members, request.stats)
    const refusal = read.kind === 'chosen' && !readOnly ? sharedMismatch(read.descriptor, shared) : undefined
    if (refusal !== undefined) return failure('LVM_INVCONFIG', refusal, provisional(probes))
    const result = await decide(read, probes, flags, readOnly, opener, request.registry, request.backup)
    handedOver = result.vg !== undefined
    return result
  } finally {
    if (!handedOver) await closeProbes(probes)
  }
}

/** A shared vary-on needs a VG created with --shared; a non-shared one keeps its exclusive claim. */
function sharedMismatch(d: VgDescriptor, shared: boolean): LvmfsError | undefined {
  if (!shared || d.shared === true) return undefined
  return new LvmfsError('LVM_INVCONFIG', `volume group "${d.name}" is not shared`, {
    detail: 'Only a VG created with vgcreate --shared may be varied on by several processes.',
    hint: 'Mount it without --lvs (one process serves every LV).', context: { vg: d.name } })
}

function provisional(probes: readonly Probe[]): VvgOut[] {
  return probes.map((p) => ({ pvId: p.pvId, name: p.entry.name,
    status: p.status === 'LVM_PVINVG' || p.status === 'LVM_PVNOTINVG' ? p.status : 'LVM_PVNOTFND' }))
}

function badCopies(read: VgRead, probes: readonly Probe[]): string[] {
  const path = (pvId: string): string => probes.find((p) => p.pvId === pvId)?.entry.name ?? pvId
  // Any slot that failed a check (not merely empty or of another VG) is worth naming, even
  // when the area fell back to its other slot.
  return read.areas.filter((a) => a.problems.some((p) => p !== 'empty' && p !== 'foreign'))
    .map((a) => `${path(a.pvId)} area ${a.area}: ${a.problems.filter((p) => p !== 'empty').join(',')}`)
}

async function decide(read: VgRead, probes: readonly Probe[], flags: VaryOnFlags, readOnly: boolean,
  opener: DeviceOpener, registry: OnlineVgRegistry | undefined,
  backup: DescriptorBackup | undefined): Promise<VaryOnResult> {
  const override = flags.override === true
  if (read.kind !== 'chosen') {
    const rc = read.kind === 'novgdas' && override ? 'LVM_NOVGDAS' : 'LVM_NOQUORUM'
    const error = read.kind === 'fork' ? read.error : new LvmfsError(rc, read.error.message)
    const bad = badCopies(read, probes)
    return { ...failure(rc, error, provisional(probes)), copies: { present: 0, total: 0, bad } }
  }
  const copies = { present: read.present, total: read.total, bad: badCopies(read, probes) }
  if (read.records.length === 0) {
    const rc = override ? 'LVM_NOVGDAS' : 'LVM_NOQUORUM'
    return { ...failure(rc, new LvmfsError(rc, 'no valid status area (VGSA) copy')), vvgOut: provisional(probes), copies }
  }
  const forced = !read.vgdaQuorum || !read.vgsaQuorum
  if (forced && !override) {
    return { ...failure('LVM_NOQUORUM', new LvmfsError('LVM_NOQUORUM',
      `cannot vary on volume group "${read.descriptor.name}"`, {
        detail: `${read.present} of ${read.total} descriptor copies are readable (status quorum: ` +
          `${read.vgsaQuorum}); quorum needs ${Math.floor(read.total / 2) + 1}.`,
        hint: 'Restore the missing PVs, or vary on with --force if you accept the risk.',
        context: { present: read.present, total: read.total } }), provisional(probes)), copies }
  }
  const d = read.descriptor
  const problems = descriptorProblems(d)
  if (problems.length > 0) {
    return failure('LVM_INVCONFIG', new LvmfsError('LVM_INVCONFIG', `descriptor of "${d.name}" is inconsistent`, {
      detail: problems.slice(0, 5).join('; ') + '.' }), provisional(probes))
  }
  const m = membership(d, probes, flags)
  if (m.vvgOut.some((o) => o.status === 'LVM_NONAME') && flags.missnameVon !== true) {
    return { ...failure('LVM_MISSPVNAME', new LvmfsError('LVM_MISSPVNAME',
      `a PV of "${d.name}" was not named (not found among the devices)`, {
        hint: 'Give its device, or vary on with --noname-ok to treat it as missing.' }), m.vvgOut), copies }
  }
  const vvgOut = m.vvgOut.map((o) => (o.status === 'LVM_NONAME' ? { ...o, status: 'LVM_PVMISSING' as const } : o))
  if (m.missing.length > 0 && flags.misspvVon !== true) {
    return { ...failure('LVM_MISSINGPV', new LvmfsError('LVM_MISSINGPV',
      `${m.missing.length} PV(s) of "${d.name}" are missing`, {
        hint: 'Restore them, or vary on with --missing-ok.' }), vvgOut), copies }
  }
  const status = statusFromRecords(read.records, d)
  const wanted: VgStatus = { ...status, missing: d.pvs.map((_, i) => m.missing.includes(i)) }
  if (readOnly) return { rc: rcOf(vvgOut), rcRef: rcRef(rcOf(vvgOut)), vvgOut, descriptor: d, status: wanted, copies }
  return activate({ read, probes, flags, vvgOut, missing: m.missing, forced, wanted, opener, copies, registry,
    backup })
}

function rcOf(vvgOut: readonly VvgOut[]): VaryOnRc {
  return vvgOut.every((o) => o.status === 'LVM_PVACTIVE') ? 'LVM_SUCCESS' : 'LVM_CHKVVGOUT'
}

interface Membership {
  vvgOut: VvgOut[]
  /** Member indexes that are MISSING (not removed). */
  missing: number[]
  /** pvId → probe of the device that is that member, ACTIVE. */
  active: Map<string, Probe>
}

function membership(d: VgDescriptor, probes: readonly Probe[], flags: VaryOnFlags): Membership {
  const index = new Map(d.pvs.map((pv, i) => [pv.pvId, i]))
  const named = new Set<string>()
  const active = new Map<string, Probe>()
  const missing = new Set<number>()
  const vvgOut: VvgOut[] = probes.map((p) => {
    const out = (status: PvStatusName): VvgOut => ({ pvId: p.pvId, name: p.entry.name, status })
    if (p.status === 'LVM_DUPPVID' || p.status === 'LVM_NAMIDNMTCH') return out(p.status)
    const i = index.get(p.pvId)
    if (i === undefined) return out('LVM_INVPVID')
    const pv = d.pvs[i]!
    named.add(p.pvId)
    if (pv.removed) return out('LVM_PVREMOVED')
    if (p.status === 'LVM_PVNOTFND') {
      missing.add(i)
      return out('LVM_PVMISSING')
    }
    const label = p.label!
    if (p.status === 'LVM_PVNOTINVG' || label.ppCount !== pv.ppCount || 2 ** label.ppSizeLog2 !== d.ppSizeBytes) {
      missing.add(i)
      return out('LVM_LVMRECNMTCH')
    }
    active.set(p.pvId, p)
    return out('LVM_PVACTIVE')
  })
  d.pvs.forEach((pv, i) => {
    if (named.has(pv.pvId)) return
    if (pv.removed) {
      vvgOut.push({ pvId: pv.pvId, name: null, status: 'LVM_PVREMOVED' })
      return
    }
    missing.add(i)
    vvgOut.push({ pvId: pv.pvId, name: null, status: flags.missnameVon === true ? 'LVM_PVMISSING' : 'LVM_NONAME' })
  })
  return { vvgOut, missing: [...missing].sort((a, b) => a - b), active }
}

interface ActivateInput {
  read: Extract<VgRead, { kind: 'chosen' }>
  probes: readonly Probe[]
  flags: VaryOnFlags
  vvgOut: VvgOut[]
  missing: number[]
  forced: boolean
  wanted: VgStatus
  opener: DeviceOpener
  copies: NonNullable<VaryOnResult['copies']>
  registry: OnlineVgRegistry | undefined
  backup: DescriptorBackup | undefined
}

async function activate(input: ActivateInput): Promise<VaryOnResult> {
  const { read, probes } = input
  const d = read.descriptor
  const pvs = new PvSet()
  for (const p of probes) {
    if (p.device === undefined || p.label === undefined) continue
    const i = d.pvs.findIndex((pv) => pv.pvId === p.pvId)
    if (i >= 0 && !d.pvs[i]!.removed && !input.missing.includes(i)) {
      pvs.add({ device: p.device, label: p.label })
    }
    else await p.device.close()
    delete p.device
  }
  const slots = new CopySlots(read.maxSeq, read.maxStatusSeq)
  slots.learnAll(read.areas)
  const adopted = statusFromRecords(read.records, d)
  const vg = new OnlineVg({ descriptor: d, status: adopted, pvs, slots, flags: input.flags, opener: input.opener,
    ...(input.backup === undefined ? {} : { backup: input.backup }) })
  let vvgOut = input.vvgOut
  try {
    if (input.forced && input.missing.length > 0) {
      await vg.commitPvRemoval(input.missing, true)
      const removedIds = new Set(input.missing.map((i) => d.pvs[i]!.pvId))
      vvgOut = vvgOut.map((o) => (removedIds.has(o.pvId) && o.status === 'LVM_PVMISSING'
        ? { ...o, status: 'LVM_PVREMOVED' as const } : o))
    } else {
      await recover(vg, read, input.wanted)
    }
    // An lvconvert interrupted between its commits: its new copies become stale now.
    await vg.settleUnsyncedCopies()
  } catch (error) {
    await vg.varyOff()
    if (isLvmfsError(error)) {
      return { ...failure('LVM_NOQUORUM', new LvmfsError('LVM_NOQUORUM', `vary-on of "${d.name}" could not ` +
        'commit its recovery to a majority of copies', { cause: error })), vvgOut, copies: input.copies }
    }
    throw error
  }
  input.registry?.add(vg)
  const rc = rcOf(vvgOut)
  return { rc, rcRef: rcRef(rc), vvgOut, vg, descriptor: vg.descriptor, status: vg.status, copies: input.copies }
}

/** Descriptor recovery: rewrite when any reachable placement position is not current. */
export async function recover(vg: OnlineVg, read: Extract<VgRead, { kind: 'chosen' }>, wanted: VgStatus): Promise<void> {
  const d = read.descriptor
  const byKey = new Map(read.areas.map((a) => [placeKey(a.pvId, a.area), a]))
  let vgdaStale = false
  let vgsaStale = false
  for (const c of d.descriptorCopies) {
    const pvId = d.pvs[c.pvIndex]!.pvId
    if (!vg.pvs.has(pvId)) continue
    const a = byKey.get(placeKey(pvId, c.area))
    if (a?.vgda?.seq !== d.seq || a.vgda.crc !== read.crc) vgdaStale = true
    if (a?.vgsa?.record.seq !== read.records[0]!.seq) vgsaStale = true
  }
  const first = statusFromRecords([read.records[0]!], d)
  if (read.records.some((r) => !statusEquals(statusFromRecords([r], d), first))) vgsaStale = true
  if (vgdaStale) await vg.commitDescriptor(d)
  if (vgsaStale || !statusEquals(vg.status, wanted)) await vg.commitStatus(wanted, true)
}

export async function varyOffVg(vg: VolumeGroup): Promise<void> {
  await vg.varyOff()
}

