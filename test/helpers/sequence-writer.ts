// Writes stamped 4 KiB blocks (offset, sequence) at random offsets of a file, one at a time,
// and logs "offset sequence" BEFORE issuing each write, so the log lists every write that can
// have reached the file, in order (the last may not have). Runs until killed or a write fails.
// Usage: sequence-writer.ts FILE SIZE_BYTES LOG FIRST_SEQUENCE
import { closeSync, constants, openSync, writeSync } from 'node:fs'
import { stamp } from './stamps.js'

const [file, sizeText, logPath, firstText] = process.argv.slice(2)
const blocks = Math.floor(Number(sizeText) / 4096)
const fd = openSync(file!, constants.O_WRONLY)
const log = openSync(logPath!, 'a')
process.stdout.write('{"ready":true}\n')
for (let sequence = Number(firstText); ; sequence++) {
  const offset = Math.floor(Math.random() * blocks) * 4096
  writeSync(log, `${offset} ${sequence}\n`)
  try {
    writeSync(fd, stamp(offset, sequence), 0, 4096, offset)
  } catch {
    break
  }
}
closeSync(log)
