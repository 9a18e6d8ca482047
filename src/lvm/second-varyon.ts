/**
 * Vary-on of a VG that is already online in this process (reference: "a check is made for any
 * physical volumes ... with a state of LVM_PVMISSING, and an attempt will be made to open
 * those"). vvg_in needs to name only the PVs to bring back. A named MISSING member whose device
 * opens and carries the right label becomes ACTIVE: its copies are rewritten from the current
 * descriptor and status and its MISSING flag is cleared (a status commit). REMOVED members stay
 * removed (returning them is setPvState(pv, 'active'), lvm_changepv's job).
 */
import { LvmfsError, isLvmfsError } from '../errors/index.js'
import { ZERO_ID } from '../format/index.js'
import type { PvStatusName, VvgIn, VvgOut } from './model.js'
import type { OnlineVg } from './online-vg.js'
import { closeProbes, probeEntries } from './probe.js'
import type { VaryOnResult } from './varyon.js'

export async function secondVaryOn(vg: OnlineVg, vvgIn: readonly VvgIn[], statEntries: boolean): Promise<VaryOnResult> {
  const out: VvgOut[] = []
  const named = new Set<string>()
  const activePaths = new Map<string, string>()
  for (const [pvId, rt] of vg.pvs.entries()) activePaths.set(rt.device.path, pvId)
  const toProbe = vvgIn.filter((e) => !activePaths.has(e.name))
  const probes = await probeEntries(toProbe, vg.vgId, vg.opener, { readOnly: false, statEntries })
  try {
    for (const entry of vvgIn) {
      const pvIdHeld = activePaths.get(entry.name)
      if (pvIdHeld !== undefined) {
        const status = entry.pvId !== undefined && entry.pvId !== pvIdHeld ? 'LVM_NAMIDNMTCH' : 'LVM_PVACTIVE'
        named.add(pvIdHeld)
        out.push({ pvId: entry.pvId ?? pvIdHeld, name: entry.name, status })
        continue
      }
      const probe = probes.find((p) => p.entry === entry)!
      const pvIndex = vg.descriptor.pvs.findIndex((pv) => pv.pvId === probe.pvId)
      let status: PvStatusName
      if (probe.status === 'LVM_DUPPVID' || probe.status === 'LVM_NAMIDNMTCH') status = probe.status
      else if (pvIndex < 0) status = 'LVM_INVPVID'
      else if (probe.status === 'LVM_PVNOTINVG') status = 'LVM_LVMRECNMTCH'
      else if (probe.status === 'LVM_PVNOTFND') {
        status = vg.pvState(pvIndex) === 'removed' ? 'LVM_PVREMOVED' : 'LVM_PVMISSING'
      }
      else status = await bringBack(vg, pvIndex, entry.name, probe)
      if (pvIndex >= 0) named.add(probe.pvId)
      const pvId = probe.pvId === ZERO_ID && entry.pvId !== undefined ? entry.pvId : probe.pvId
      out.push({ pvId, name: entry.name, status })
    }
  } catch (error) {
    await closeProbes(probes)
    if (isLvmfsError(error)) {
      return { rc: 'LVM_NOQUORUM', rcRef: -122, vvgOut: out, error: new LvmfsError('LVM_NOQUORUM',
        `vary-on of online "${vg.name}" failed`, { cause: error }) }
    }
    throw error
  }
  vg.descriptor.pvs.forEach((pv, i) => {
    if (named.has(pv.pvId)) return
    const state = vg.pvState(i)
    out.push({ pvId: pv.pvId, name: state === 'active' ? vg.device(i)!.path : null,
      status: state === 'active' ? 'LVM_PVACTIVE' : state === 'missing' ? 'LVM_PVMISSING' : 'LVM_PVREMOVED' })
  })
  const rc = out.every((o) => o.status === 'LVM_PVACTIVE') ? 'LVM_SUCCESS' : 'LVM_CHKVVGOUT'
  return { rc, rcRef: rc === 'LVM_SUCCESS' ? 0 : 51, vvgOut: out, vg, descriptor: vg.descriptor, status: vg.status }
}

async function bringBack(vg: OnlineVg, pvIndex: number, name: string,
  probe: { device?: import('../io/index.js').BlockDevice; label?: import('../format/index.js').PvLabel }): Promise<PvStatusName> {
  const state = vg.pvState(pvIndex)
  const pv = vg.descriptor.pvs[pvIndex]!
  if (state === 'active') {
    await probe.device?.close()
    return 'LVM_PVACTIVE'
  }
  if (state === 'removed') {
    await probe.device?.close()
    return 'LVM_PVREMOVED'
  }
  if (probe.label!.ppCount !== pv.ppCount) {
    await probe.device?.close()
    return 'LVM_LVMRECNMTCH'
  }
  const device = probe.device!
  delete probe.device
  await vg.serial(() => vg.returnPv(pvIndex, name, device))
  return 'LVM_PVACTIVE'
}
