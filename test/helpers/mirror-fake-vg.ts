/**
 * A small VolumeGroup for mirror tests: real PV files (optionally behind FaultyDevice), a fixed
 * layout (MWC area at 64 KiB, PPs from 1 MiB), and descriptor + status kept in a JSON file
 * next to the PVs, replaced atomically (rename) on every commit so kill -9 leaves either the
 * old or the new status. It implements exactly the VolumeGroup surface the mirror engine uses;
 * VG-management calls throw. Round-robin allocation puts the copies of an LP on distinct PVs.
 */
import {
  closeSync, fsyncSync, openSync, readFileSync, readSync, renameSync, truncateSync, writeFileSync, writeSync,
} from 'node:fs'
import { join } from 'node:path'
import type { BlockDevice } from '../../src/io/block-device.js'
import { FaultyDevice, openFileDevice } from '../../src/io/index.js'
import type {
  LvCreateOptions, LvDescriptor, PvState, StaleChange, VgChangeEvent, VgDescriptor, VgState, VgStatus,
  VolumeGroup,
} from '../../src/lvm/index.js'

export const FAKE_MWC_OFFSET = 64 * 1024
export const FAKE_MWC_BYTES = 256 * 1024
export const FAKE_DATA_OFFSET = 1024 * 1024

interface Persisted {
  descriptor: VgDescriptor
  missing: boolean[]
  stale: number[][]
  dirtyLvs: number[]
}

function stateFile(dir: string): string {
  return join(dir, 'vg.json')
}

function pvFile(dir: string, pvIndex: number): string {
  return join(dir, `pv${pvIndex}.img`)
}

function persist(dir: string, state: Persisted): void {
  const tmp = stateFile(dir) + '.tmp'
  writeFileSync(tmp, JSON.stringify(state))
  const fd = openSync(tmp, 'r')
  fsyncSync(fd)
  closeSync(fd)
  renameSync(tmp, stateFile(dir))
}

/** Creates PV files and an empty VG description in `dir`. */
export function createFakeVg(dir: string, options: { pvCount: number, ppSizeBytes: number, ppsPerPv: number }): void {
  const pvs = []
  for (let pvIndex = 0; pvIndex < options.pvCount; pvIndex++) {
    writeFileSync(pvFile(dir, pvIndex), Buffer.alloc(0))
    truncateSync(pvFile(dir, pvIndex), FAKE_DATA_OFFSET + options.ppsPerPv * options.ppSizeBytes)
    pvs.push({ pvId: `${'0'.repeat(31)}${pvIndex}`, lastPath: pvFile(dir, pvIndex), ppCount: options.ppsPerPv, removed: false })
  }
  const descriptor: VgDescriptor = { vgId: 'f'.repeat(32), name: 'vg0', seq: 1, timestampMs: 0,
    ppSizeBytes: options.ppSizeBytes, pvs, lvs: [], nextLvId: 1, descriptorCopies: [] }
  persist(dir, { descriptor, missing: pvs.map(() => false), stale: pvs.map(() => []), dirtyLvs: [] })
}


export class FakeVg implements VolumeGroup {
  readonly dir: string
  readonly faulty: FaultyDevice[]
  state: VgState = 'online'
  autoResync = false
  noOpenLvs = false
  #state: Persisted
  #devices: BlockDevice[]
  /** Number of status commits (markStale/clearStale/setLvDirty/setPvState). */
  statusCommits = 0

  private constructor(dir: string, state: Persisted, devices: FaultyDevice[]) {
    this.dir = dir
    this.#state = state
    this.faulty = devices
    this.#devices = devices
  }

  static async open(dir: string, options: { autoResync?: boolean } = {}): Promise<FakeVg> {
    const state = JSON.parse(readFileSync(stateFile(dir), 'utf8')) as Persisted
    const devices: FaultyDevice[] = []
    for (let pvIndex = 0; pvIndex < state.descriptor.pvs.length; pvIndex++) {
      devices.push(new FaultyDevice(await openFileDevice(pvFile(dir, pvIndex))))
    }
    // A re-varyon brings every reachable PV back to active (its stale PPs stay stale).
    state.missing = state.missing.map(() => false)
    const vg = new FakeVg(dir, state, devices)
    vg.autoResync = options.autoResync ?? false
    persist(dir, state)
    return vg
  }

  get vgId(): string { return this.#state.descriptor.vgId }
  get name(): string { return this.#state.descriptor.name }
  get descriptor(): VgDescriptor { return this.#state.descriptor }
  get ppSizeBytes(): number { return this.#state.descriptor.ppSizeBytes }
  get status(): VgStatus {
    return { seq: this.statusCommits, missing: this.#state.missing,
      stale: this.#state.stale.map(() => new Uint8Array(0)), dirtyLvs: this.#state.dirtyLvs }
  }

  pvState(pvIndex: number): PvState {
    return this.#state.missing[pvIndex] === true ? 'missing' : 'active'
  }

  device(pvIndex: number): BlockDevice | undefined {
    return this.pvState(pvIndex) === 'active' ? this.#devices[pvIndex] : undefined
  }

  ppOffsetBytes(_pvIndex: number, pp: number): number {
    return FAKE_DATA_OFFSET + pp * this.ppSizeBytes
  }

  mwcArea(_pvIndex: number): { offsetBytes: number, sizeBytes: number } {
    return { offsetBytes: FAKE_MWC_OFFSET, sizeBytes: FAKE_MWC_BYTES }
  }

  isStale(pvIndex: number, pp: number): boolean {
    return this.#state.stale[pvIndex]!.includes(pp)
  }

  lvByName(name: string): LvDescriptor | undefined {
    return this.#state.descriptor.lvs.find((lv) => lv.name === name)
  }

  lvById(lvId: number): LvDescriptor | undefined {
    return this.#state.descriptor.lvs.find((lv) => lv.lvId === lvId)
  }

  lpCountForBytes(bytes: number): number {
    return Math.ceil(bytes / this.ppSizeBytes)
  }

  #commit(): void {
    this.statusCommits += 1
    persist(this.dir, this.#state)
  }

  async lvCreate(options: LvCreateOptions): Promise<LvDescriptor> {
    const pvCount = this.#state.descriptor.pvs.length
    const used = new Set<string>()
    for (const lv of this.#state.descriptor.lvs) for (const copies of lv.lps) for (const c of copies) used.add(`${c.pvIndex}:${c.pp}`)
    const copies = options.copies ?? 1
    const lps = []
    for (let lp = 0; lp < options.lpCount; lp++) {
      const refs = []
      for (let copy = 0; copy < copies; copy++) {
        const pvIndex = copy % pvCount
        let pp = 0
        while (used.has(`${pvIndex}:${pp}`)) pp++
        if (pp >= this.#state.descriptor.pvs[pvIndex]!.ppCount) throw new Error('fake VG full')
        used.add(`${pvIndex}:${pp}`)
        refs.push({ pvIndex, pp })
      }
      lps.push(refs)
    }
    const lv: LvDescriptor = { lvId: this.#state.descriptor.nextLvId, name: options.name, copies,
      strict: options.strict ?? 'y', schedule: options.schedule ?? 'p', mwc: options.mwc ?? 'active', lps, ext: {} }
    this.#state.descriptor = { ...this.#state.descriptor, lvs: [...this.#state.descriptor.lvs, lv],
      nextLvId: lv.lvId + 1, seq: this.#state.descriptor.seq + 1 }
    this.#commit()
    return lv
  }

  async markStale(changes: readonly StaleChange[]): Promise<void> {
    for (const { pvIndex, pp } of changes) if (!this.isStale(pvIndex, pp)) this.#state.stale[pvIndex]!.push(pp)
    this.#commit()
    this.#statusChanged()
  }

  async clearStale(changes: readonly StaleChange[]): Promise<void> {
    for (const { pvIndex, pp } of changes) {
      this.#state.stale[pvIndex] = this.#state.stale[pvIndex]!.filter((value) => value !== pp)
    }
    this.#commit()
    this.#statusChanged()
  }

  #statusChanged(): void {
    for (const listener of this.#listeners) listener({ kind: 'status', descriptor: this.descriptor, status: this.status })
  }

  async setLvDirty(lvId: number, dirty: boolean): Promise<void> {
    this.#state.dirtyLvs = dirty ? [...new Set([...this.#state.dirtyLvs, lvId])]
      : this.#state.dirtyLvs.filter((value) => value !== lvId)
    this.#commit()
  }

  async setPvState(pvIndex: number, state: PvState): Promise<void> {
    this.#state.missing[pvIndex] = state !== 'active'
    this.#commit()
  }

  async varyOff(): Promise<void> {
    this.state = 'offline'
    for (const device of this.#devices) await device.close()
  }

  /** Stale PPs of every PV (for assertions). */
  stalePps(): number[][] {
    return this.#state.stale.map((pps) => [...pps].sort((a, b) => a - b))
  }

  readonly #listeners = new Set<(event: VgChangeEvent) => void>()

  onChange(listener: (event: VgChangeEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }
  onForceOff(_listener: (error: Error) => void): () => void { return () => {} }
  async lvExtend(): Promise<LvDescriptor> { throw new Error('not in the fake VG') }
  async lvReduce(): Promise<LvDescriptor> { throw new Error('not in the fake VG') }
  async lvSwapLps(): Promise<LvDescriptor> { throw new Error('not in the fake VG') }
  async lvRemove(): Promise<void> { throw new Error('not in the fake VG') }
  async lvRename(): Promise<LvDescriptor> { throw new Error('not in the fake VG') }
  async lvChange(): Promise<LvDescriptor> { throw new Error('not in the fake VG') }
  async lvAddCopies(): Promise<LvDescriptor> { throw new Error('not in the fake VG') }
  async lvDropCopies(): Promise<LvDescriptor> { throw new Error('not in the fake VG') }
  async lvMoveCopy(): Promise<LvDescriptor> { throw new Error('not in the fake VG') }
  async lvSetExt(): Promise<LvDescriptor> { throw new Error('not in the fake VG') }
  async vgExtend(): Promise<void> { throw new Error('not in the fake VG') }
  async vgReduce(): Promise<void> { throw new Error('not in the fake VG') }
}

/** Reads copy `copyIndex` of the whole LV straight from the PV files (bypassing the engine). */
export function readCopy(dir: string, vg: { descriptor: VgDescriptor }, lvName: string, copyIndex: number): Buffer {
  const lv = vg.descriptor.lvs.find((candidate) => candidate.name === lvName)!
  const pp = vg.descriptor.ppSizeBytes
  const out = Buffer.alloc(lv.lps.length * pp)
  lv.lps.forEach((copies, lp) => {
    const copy = copies[copyIndex]!
    const fd = openSync(pvFile(dir, copy.pvIndex), 'r')
    try {
      const chunk = out.subarray(lp * pp, (lp + 1) * pp)
      let done = 0
      while (done < pp) done += readSync(fd, chunk, done, pp - done, FAKE_DATA_OFFSET + copy.pp * pp + done)
    } finally {
      closeSync(fd)
    }
  })
  return out
}


/** Writes bytes straight into one copy in the PV file (simulated corruption). */
export function patchCopy(dir: string, vg: { descriptor: VgDescriptor }, lvName: string, copyIndex: number,
  lvOffsetBytes: number, bytes: Buffer): void {
  const lv = vg.descriptor.lvs.find((candidate) => candidate.name === lvName)!
  const pp = vg.descriptor.ppSizeBytes
  const lp = Math.floor(lvOffsetBytes / pp)
  const copy = lv.lps[lp]![copyIndex]!
  const fd = openSync(pvFile(dir, copy.pvIndex), 'r+')
  try {
    writeSync(fd, bytes, 0, bytes.length, FAKE_DATA_OFFSET + copy.pp * pp + (lvOffsetBytes - lp * pp))
  } finally {
    closeSync(fd)
  }
}
