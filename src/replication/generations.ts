/**
 * Generation ids (DRBD-style) for split-brain detection between a source and a replica that
 * were apart (split): each side has {current, history}; the pair records the `base` generation
 * both had when they were last attached. A side that takes a write while apart starts a new
 * generation (current becomes a fresh id, the old one goes to history), once.
 *
 * compareGenerations is pure; the table test in test/unit/replication is its specification.
 */
import { randomBytes } from 'node:crypto'
import type { Generation } from '../format/index.js'

export type GenerationVerdict =
  /** neither side wrote since the base: attach incrementally */
  | 'same'
  /** only the source wrote: the replica can be brought forward from the source */
  | 'source-ahead'
  /** only the replica wrote: attaching would discard its writes */
  | 'replica-ahead'
  /** both wrote while apart: split brain, never merged */
  | 'conflict'
  /** no common generation: different data sets */
  | 'unrelated'

export function newGenerationId(): string {
  return randomBytes(16).toString('hex')
}

export function freshGeneration(): Generation {
  return { current: newGenerationId(), history: [] }
}

/** The generation after a side's first write while apart. */
export function nextGeneration(generation: Generation): Generation {
  return { current: newGenerationId(), history: [generation.current, ...generation.history].slice(0, 2) }
}

function knows(generation: Generation, id: string): boolean {
  return generation.current === id || generation.history.includes(id)
}

export function compareGenerations(source: Generation, replica: Generation, base: string): GenerationVerdict {
  if (!knows(source, base) || !knows(replica, base)) return 'unrelated'
  const sourceMoved = source.current !== base
  const replicaMoved = replica.current !== base
  if (sourceMoved && replicaMoved) return 'conflict'
  if (replicaMoved) return 'replica-ahead'
  if (sourceMoved) return 'source-ahead'
  return 'same'
}
