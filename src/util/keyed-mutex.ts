/**
 * Exclusive locks by string key, granted in request order. Multi-key acquisitions take keys in
 * sorted order so two writers spanning the same chunks never deadlock.
 */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>()

  async lock(key: string): Promise<() => void> {
    const previous = this.#tails.get(key) ?? Promise.resolve()
    let release!: () => void
    const mine = new Promise<void>((resolve) => { release = resolve })
    const tail = previous.then(() => mine)
    this.#tails.set(key, tail)
    await previous
    return () => {
      release()
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    }
  }

  async lockAll(keys: readonly string[]): Promise<() => void> {
    const sorted = [...new Set(keys)].sort()
    const releases: Array<() => void> = []
    for (const key of sorted) releases.push(await this.lock(key))
    return () => { for (const release of releases.reverse()) release() }
  }
}
