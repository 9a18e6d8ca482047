/**
 * The VGs a process has online, by vgId, so a second vary-on of one finds it (AIX: varyonvg on
 * a varied-on VG reports its PVs and retries the MISSING ones). The process that serves VGs
 * (the daemon, a test) owns one and passes it to varyOnVg; a VG leaves it when it goes offline
 * or is forced off.
 */
import type { OnlineVg } from './online-vg.js'

export class OnlineVgRegistry {
  readonly #byId = new Map<string, OnlineVg>()

  add(vg: OnlineVg): void {
    this.#byId.set(vg.vgId, vg)
    vg.onClose(() => {
      if (this.#byId.get(vg.vgId) === vg) this.#byId.delete(vg.vgId)
    })
  }

  get(vgId: string): OnlineVg | undefined {
    return this.#byId.get(vgId)
  }

  values(): OnlineVg[] {
    return [...this.#byId.values()]
  }
}
