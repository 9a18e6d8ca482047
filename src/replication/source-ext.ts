/**
 * Updates of a source's `ext.replicaSource` (children, generation, commit count floor, dirty
 * chunks), one at a time per source: each is a read-modify-commit of the descriptor.
 */
import type { Generation } from '../format/index.js'
import type { Located, ReplicationContext } from './context.js'
import { freshGeneration } from './generations.js'
import { KeyedMutex } from '../util/index.js'
import { keyOf, sourceOf, withSource, type ChildRef, type SourceExt } from './model.js'

export class SourceExts {
  readonly #ctx: ReplicationContext
  readonly #locks = new KeyedMutex()

  constructor(ctx: ReplicationContext) {
    this.#ctx = ctx
  }

  async update(source: Located, change: (ext: SourceExt) => SourceExt): Promise<SourceExt> {
    const release = await this.#locks.lock(`${source.engine.vg.name}:${source.lv.lvId}`)
    try {
      const lv = this.#ctx.fresh(source)
      const current = sourceOf(lv) ?? { children: [], generation: freshGeneration(), commitCount: 0, dirty: {} }
      const next = change(current)
      await source.engine.vg.lvSetExt(lv.name, withSource(lv, next))
      return next
    } finally {
      release()
    }
  }

  async generation(source: Located): Promise<Generation> {
    const existing = sourceOf(this.#ctx.fresh(source))
    if (existing !== undefined) return existing.generation
    return (await this.update(source, (ext) => ext)).generation
  }

  async addChild(source: Located, child: ChildRef): Promise<void> {
    await this.update(source, (ext) => ({ ...ext,
      children: [...ext.children.filter((c) => !(c.vg === child.vg && c.lv === child.lv)), child] }))
  }

  /** Drops a target from its source's children and dirty sets. */
  async removeChild(source: Located, vgName: string, lvName: string): Promise<void> {
    await this.update(source, (ext) => {
      const dirty = { ...ext.dirty }
      delete dirty[keyOf(vgName, lvName)]
      return { ...ext, dirty, children: ext.children.filter((c) => !(c.vg === vgName && c.lv === lvName)) }
    })
  }
}
