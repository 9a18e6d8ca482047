/** A FIFO mutex: `run(fn)` executes fn after every earlier fn has settled. */
export class Serial {
  #tail: Promise<unknown> = Promise.resolve()

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(fn, fn)
    this.#tail = result.catch(() => {})
    return result
  }
}
