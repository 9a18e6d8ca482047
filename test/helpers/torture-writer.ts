/**
 * The writer of the mirror crash torture (scripts/torture-mirror.ts, test/e2e/mirror-kill9.test.ts):
 * random writes into a mounted volume file, several in flight, reporting each one it issues and
 * each one acknowledged, so the parent knows exactly which writes must survive a kill -9 of the
 * daemon.
 *
 * "Acknowledged" means pwrite(2) returned. The file is opened O_DIRECT (and the daemon serves
 * volume files FOPEN_DIRECT_IO anyway), so no kernel page cache sits above the daemon: pwrite
 * returns only when the daemon replied to the FUSE WRITE, i.e. after it wrote every fresh copy
 * (docs/architecture.md, "The path of one write"). There is no fsync and no O_SYNC on purpose:
 * a kill -9 of the daemon is not a power loss, and the backing files' page cache survives it, so
 * every write whose pwrite returned must survive it without any flush.
 *
 * Content: sector s of write generation g holds fillSectors(tag, s, g) (torture-content.ts).
 * Writes in flight at once never overlap, so for every sector the writes that touched it are
 * ordered (each was issued after the previous one over it was acknowledged): the latest
 * acknowledged one wins, and at most one unacknowledged write can also be there.
 *
 * Output on stdout, one line per event, written synchronously (writeSync on fd 1) before the
 * next write is issued:
 *   S <session>                     session started: the file is open
 *   I <gen> <offsetBytes> <lengthBytes>   issued: written before pwrite is called
 *   A <gen> <bytes>                 acknowledged: pwrite returned `bytes` (a short count acknowledges
 *                                   only that prefix, and the session stops issuing)
 *   F <gen> <errno code>            pwrite failed (EIO/ENOTCONN once the daemon is dead)
 *   E <session> <acknowledged> <failed>   every issued write has an answer, the file is closed
 *
 * Modes:
 *   torture-writer.ts --serve
 *       sessions on demand: one JSON line per session on stdin, {session, file, sizeBytes, tag,
 *       seed, firstGen, depth?, hotBytes?, maxWrites?}; a session ends at its first failed (or
 *       short) write or after maxWrites. Lets one writer process serve many crash points without
 *       a node start each.
 *   torture-writer.ts FILE SIZE_BYTES [--tag N] [--seed N] [--first-gen N] [--depth N]
 *       one session, then exit.
 */
import { close, constants, open, write, writeSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { SECTOR_BYTES, fillSectors, prng } from './torture-content.js'

interface WriterSession {
  readonly session: number
  readonly file: string
  readonly sizeBytes: number
  readonly tag: number
  readonly seed: number
  readonly firstGen: number
  /** Writes in flight at once (default 4). */
  readonly depth?: number
  /** Half the writes land in a window this large (default 8 MiB), so acknowledged data is overwritten often. */
  readonly hotBytes?: number
  readonly maxWrites?: number
}

const MAX_WRITE_BYTES = 1 << 20

function emit(line: string): void {
  writeSync(1, line + '\n')
}

/** Mostly 4 KiB writes and writes of a few hundred KiB up to 1 MiB, in whole sectors. */
function writeLength(random: () => number, sizeBytes: number): number {
  const roll = random()
  let sectors: number
  if (roll < 0.5) sectors = 1
  else if (roll < 0.7) sectors = 2 + Math.floor(random() * 63)
  else sectors = 64 + Math.floor(random() * (MAX_WRITE_BYTES / SECTOR_BYTES - 63))
  return Math.min(sectors * SECTOR_BYTES, sizeBytes)
}

function openFile(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    open(path, constants.O_RDWR | constants.O_DIRECT, (error, fd) => (error ? reject(error) : resolve(fd)))
  })
}

function pwrite(fd: number, buffer: Buffer, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    write(fd, buffer, 0, buffer.length, position, (error, written) => (error ? reject(error) : resolve(written)))
  })
}

/** Runs one session until a write fails or `maxWrites` are issued; never throws. */
async function runSession(options: WriterSession): Promise<void> {
  const depth = options.depth ?? 4
  const sectors = Math.floor(options.sizeBytes / SECTOR_BYTES)
  const hotSectors = Math.min(sectors, Math.floor((options.hotBytes ?? 8 << 20) / SECTOR_BYTES))
  const random = prng(options.seed)
  const hotStart = Math.floor(random() * (sectors - hotSectors + 1))
  let fd: number
  try {
    fd = await openFile(options.file)
  } catch (error) {
    emit(`F 0 ${(error as NodeJS.ErrnoException).code ?? 'ERROR'}`)
    emit(`E ${options.session} 0 0`)
    return
  }
  emit(`S ${options.session}`)
  const inFlight = new Map<number, { first: number; count: number }>()
  let gen = options.firstGen
  let issued = 0
  let acknowledged = 0
  let failed = 0
  let stopped = false
  const pick = (): { first: number; count: number } | undefined => {
    for (let attempt = 0; attempt < 16; attempt++) {
      const count = Math.min(writeLength(random, options.sizeBytes) / SECTOR_BYTES, sectors)
      const hot = random() < 0.5 && hotSectors >= count
      const first = hot ? hotStart + Math.floor(random() * (hotSectors - count + 1))
        : Math.floor(random() * (sectors - count + 1))
      const overlaps = [...inFlight.values()].some((range) => first < range.first + range.count &&
        range.first < first + count)
      if (!overlaps) return { first, count }
    }
    return undefined
  }
  const slot = async (): Promise<void> => {
    const buffer = Buffer.alloc(MAX_WRITE_BYTES)
    while (!stopped && (options.maxWrites === undefined || issued < options.maxWrites)) {
      const range = pick()
      if (range === undefined) {
        await new Promise((resolve) => setImmediate(resolve))
        continue
      }
      const myGen = gen++
      issued++
      const data = buffer.subarray(0, range.count * SECTOR_BYTES)
      fillSectors(data, options.tag, range.first, myGen)
      inFlight.set(myGen, range)
      emit(`I ${myGen} ${range.first * SECTOR_BYTES} ${data.length}`)
      try {
        const written = await pwrite(fd, data, range.first * SECTOR_BYTES)
        emit(`A ${myGen} ${written}`)
        acknowledged++
        if (written !== data.length) stopped = true
      } catch (error) {
        emit(`F ${myGen} ${(error as NodeJS.ErrnoException).code ?? 'ERROR'}`)
        failed++
        stopped = true
      } finally {
        inFlight.delete(myGen)
      }
    }
  }
  await Promise.all(Array.from({ length: depth }, () => slot()))
  await new Promise<void>((resolve) => close(fd, () => resolve()))
  emit(`E ${options.session} ${acknowledged} ${failed}`)
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: {
    serve: { type: 'boolean' }, tag: { type: 'string' }, seed: { type: 'string' },
    'first-gen': { type: 'string' }, depth: { type: 'string' } } })
  if (values.serve === true) {
    const lines = createInterface({ input: process.stdin })
    // One session at a time, in order.
    let chain = Promise.resolve()
    lines.on('line', (line) => {
      if (line.trim() === '') return
      const session = JSON.parse(line) as WriterSession
      chain = chain.then(() => runSession(session))
    })
    await new Promise<void>((resolve) => lines.once('close', () => resolve()))
    await chain
    return
  }
  const [file, sizeText] = positionals
  if (file === undefined || sizeText === undefined) {
    process.stderr.write('usage: torture-writer.ts --serve | FILE SIZE_BYTES [--tag N] [--seed N] [--first-gen N] [--depth N]\n')
    process.exitCode = 3
    return
  }
  await runSession({ session: 1, file, sizeBytes: Number(sizeText), tag: Number(values.tag ?? 1),
    seed: Number(values.seed ?? Date.now() % 2 ** 31), firstGen: Number(values['first-gen'] ?? 1),
    ...(values.depth === undefined ? {} : { depth: Number(values.depth) }) })
}

await main()
