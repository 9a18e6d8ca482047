/**
 * Low-water marks of the AIX/370 calls: chlwm (read or raise the mark of one site of a
 * replicated volume) and primrec (reconcile an async target outside the propagator, then chlwm).
 * Site 1 is the source, whose mark is its commit count; targets are sites 2, 3, …
 */
import { FLAG_COMPLETE, FLAG_CONSISTENT } from '../format/index.js'
import type { AsyncCatchUp } from './async-catch-up.js'
import type { AsyncMirrors } from './async-mirror.js'
import type { Located, ReplicationContext } from './context.js'
import { lsm } from './lsm-error.js'
import { replicaOf, sourceOf } from './model.js'
import type { SplitRejoin } from './split.js'

interface Site {
  readonly site: number
  readonly vg: string
  readonly lv: string
  /** Undefined for a site that is down. */
  readonly located?: Located
}

export interface PrimrecReport {
  readonly previousLwm: number
  readonly lwm: number
  readonly copiedChunks: number
}

export class LowWaterMarks {
  readonly #ctx: ReplicationContext
  readonly #async: AsyncMirrors
  readonly #catchUp: AsyncCatchUp
  readonly #split: SplitRejoin

  constructor(ctx: ReplicationContext, async: AsyncMirrors, catchUp: AsyncCatchUp, split: SplitRejoin) {
    this.#ctx = ctx
    this.#async = async
    this.#catchUp = catchUp
    this.#split = split
  }

  /**
   * chlwm(gfs, site, lwm) on the replicated volume VG/LV. On the local site (the copy VG/LV
   * names) it sets the mark to max(lwm, current) and returns the previous mark; for another
   * site it returns that copy's mark and changes nothing. Site 1 is the source, whose mark is
   * its commit count.
   */
  async chlwm(vgName: string, lvName: string, site: number, lwm: number): Promise<number> {
    const ctx = this.#ctx
    const uid = ctx.options.uid?.() ?? process.getuid?.() ?? 0
    if (uid !== 0) throw lsm('LWM_EPERM', 'chlwm needs superuser authority', { context: { uid } })
    if (site === 0) throw lsm('LWM_EBADST', 'site 0 is not a site', { detail: 'Sites are numbered from 1 (the source).' })
    if (!Number.isSafeInteger(site) || site < 0 || !Number.isSafeInteger(lwm) || lwm < 0) {
      throw lsm('LWM_EINVAL', `invalid site ${site} or mark ${lwm}`, { detail: 'Both are non-negative integers.' })
    }
    const located = this.#locateReplicated(vgName, lvName)
    const copies = this.#sitesOf(located)
    const localSite = replicaOf(located.lv)?.site ?? 1
    const at = copies.find((copy) => copy.site === site)
    if (at === undefined) {
      throw lsm('LWM_EINVAL', `"${vgName}/${lvName}" has no copy at site ${site}`, {
        detail: `Sites: ${copies.map((copy) => copy.site).join(', ')}.` })
    }
    if (at.located === undefined) {
      throw lsm('LWM_ESITEDN1', `site ${site} (${at.vg}/${at.lv}) is down: its volume group is not online`)
    }
    if (site !== localSite) return await this.#markOf(site, at.located)
    if (site === 1) return await ctx.counts.raise(vgName, located.lv, lwm)
    const previous = (await ctx.superblocks.of(located)).lwm
    if (lwm > previous) await ctx.superblocks.update(located, (sb) => ({ ...sb, lwm: Math.max(sb.lwm, lwm) }), false)
    return previous
  }

  #locateReplicated(vgName: string, lvName: string): Located {
    const engine = this.#ctx.engines.get(vgName)
    if (engine === undefined || engine.vg.state !== 'online') {
      throw lsm('LWM_ENOSTORE', `volume group "${vgName}" is not mounted (not online)`, { context: { vg: vgName } })
    }
    const lv = engine.vg.lvByName(lvName)
    const replicated = lv !== undefined && ((replicaOf(lv)?.kind === 'mirror-async' && replicaOf(lv)?.state !== 'split') ||
      (sourceOf(lv)?.children ?? []).some((c) => c.kind === 'mirror-async' && c.split !== true))
    if (lv === undefined || !replicated) {
      throw lsm('LWM_ENOSTORE', `"${vgName}/${lvName}" is not a replicated volume`, {
        detail: 'Low-water marks exist for asynchronous mirrors (source and targets).' })
    }
    return { engine, lv }
  }

  /** The copies of a replicated volume by site. */
  #sitesOf(located: Located): Site[] {
    const ctx = this.#ctx
    const replica = replicaOf(located.lv)
    let source: Located | undefined = replica === undefined ? located : undefined
    if (replica !== undefined) {
      try {
        source = ctx.sourceOfReplica(replica)
      } catch {
        source = undefined
      }
    }
    const sourceVg = replica?.source.vg ?? located.engine.vg.name
    const sourceLv = replica?.source.lv ?? located.lv.name
    const sites: Site[] = [
      { site: 1, vg: sourceVg, lv: sourceLv, ...(source === undefined ? {} : { located: source }) }]
    const recorded = source === undefined ? [] : sourceOf(ctx.fresh(source))?.children ?? []
    for (const child of recorded) {
      if (child.kind !== 'mirror-async' || child.split === true) continue
      const engine = ctx.engines.get(child.vg)
      const lv = engine?.vg.state === 'online' ? engine.vg.lvByName(child.lv) : undefined
      sites.push({ site: child.site ?? 2, vg: child.vg, lv: child.lv,
        ...(engine === undefined || lv === undefined ? {} : { located: { engine, lv } }) })
    }
    if (replica?.site !== undefined && !sites.some((entry) => entry.site === replica.site)) {
      sites.push({ site: replica.site, vg: located.engine.vg.name, lv: located.lv.name, located })
    }
    return sites
  }

  async #markOf(site: number, located: Located): Promise<number> {
    if (site === 1) return await this.#ctx.counts.current(located.engine.vg.name, located.lv)
    return (await this.#ctx.superblocks.of(located)).lwm
  }

  /**
   * primrec: reconcile an async target outside the propagator. Copies the chunks changed since
   * its mark (every chunk with `full`) from the source, then raises the mark with chlwm to the
   * source's commit count at the start. On a split target it reattaches the pair when the
   * generations allow it (never when both sides took writes).
   */
  async primrec(vgName: string, lvName: string, options: { full?: boolean } = {}): Promise<PrimrecReport> {
    const ctx = this.#ctx
    const engine = ctx.engines.get(vgName)
    const lv = engine?.vg.lvByName(lvName)
    const replica = lv === undefined ? undefined : replicaOf(lv)
    if (engine === undefined || engine.vg.state !== 'online') {
      throw lsm('LWM_ENOSTORE', `volume group "${vgName}" is not mounted`)
    }
    if (lv === undefined || replica?.kind !== 'mirror-async') {
      throw lsm('LWM_ENOSTORE', `"${vgName}/${lvName}" is not a copy of an asynchronous mirror`)
    }
    const target: Located = { engine, lv }
    const source = ctx.sourceOfReplica(replica)
    let full = options.full === true
    if (replica.state === 'split') {
      await this.#split.rejoin(source, target)
      full = true
    }
    const state = ctx.asyncStates.of(vgName, ctx.fresh(target))
    const work = state.running.then(async () => {
      const sb = await ctx.superblocks.of(target)
      this.#async.checkGenerations(source, target, sb)
      const count = await ctx.counts.current(replica.source.vg, source.lv)
      const chunks = full ? Array.from({ length: replica.dataLps }, (_, chunk) => chunk) : [...state.lastCount.keys()]
      await this.#catchUp.catchUp(source, target, state, chunks)
      await ctx.io.flush(target.engine, ctx.fresh(target))
      const previous = await this.chlwm(vgName, lvName, replica.site ?? 2, count)
      const lwm = await this.#async.raiseMark(source, target, state, count)
      await ctx.superblocks.update(target, (s) => ({ ...s, flags: s.flags | FLAG_COMPLETE | FLAG_CONSISTENT }), false)
      return { previousLwm: previous, lwm, copiedChunks: chunks.length }
    })
    state.running = work.then(() => undefined, () => undefined)
    return await work
  }
}
