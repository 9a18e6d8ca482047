// Writes 4 KiB blocks at random offsets of a file, each stamped with (offset, sequence), makes
// each durable with fdatasync, and only then appends "offset sequence" to a journal that is
// itself fsynced: the journal lists exactly the acknowledged writes, each with the wall clock (ms)
// of its acknowledgement as a third column. Runs until killed or until a write fails.
// Usage: ack-writer.ts FILE SIZE_BYTES JOURNAL [FIRST_SEQUENCE, default 1]
import { closeSync, constants, fdatasyncSync, fsyncSync, openSync, writeSync } from 'node:fs'
import { stamp } from './stamps.js'

const [file, sizeText, journalPath, firstText] = process.argv.slice(2)
const blocks = Math.floor(Number(sizeText) / 4096)
const fd = openSync(file!, constants.O_RDWR)
const journal = openSync(journalPath!, 'a')
process.stdout.write('{"ready":true}\n')
for (let sequence = Number(firstText ?? 1); ; sequence++) {
  const block = Math.floor(Math.random() * blocks)
  try {
    writeSync(fd, stamp(block * 4096, sequence), 0, 4096, block * 4096)
    fdatasyncSync(fd)
  } catch {
    break
  }
  writeSync(journal, `${block * 4096} ${sequence} ${Date.now()}\n`)
  fsyncSync(journal)
}
closeSync(journal)
