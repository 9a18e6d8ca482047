import { LvmfsError } from '../errors/index.js'

const SIZE_UNITS: Record<string, number> = {
  '': 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4, P: 1024 ** 5,
}

/** Parses "1G", "512M", "4k", "1073741824" into bytes; `what` names the option in errors. */
export function parseSizeBytes(text: string, what: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([bkmgtp]?)(?:i?b)?$/i.exec(text.trim())
  if (!match) {
    throw new LvmfsError('ENGINE_USAGE', `invalid size for ${what}: "${text}"`, {
      hint: 'Use a number with an optional suffix K, M, G or T (powers of 1024), e.g. 512M.',
    })
  }
  const bytes = Number(match[1]) * SIZE_UNITS[match[2]!.toUpperCase()]!
  if (!Number.isSafeInteger(Math.round(bytes)) || bytes <= 0) {
    throw new LvmfsError('ENGINE_USAGE', `size for ${what} out of range: "${text}"`)
  }
  return Math.round(bytes)
}

export function parseIntegerOption(text: string, what: string, min: number, max: number): number {
  const value = Number(text)
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new LvmfsError('ENGINE_USAGE', `invalid ${what}: "${text}"`, {
      detail: `Expected an integer from ${min} to ${max}.`,
    })
  }
  return value
}

/** Like parseSizeBytes, but 0 is allowed: a byte offset ("0", "4M", "1048576"). */
export function parseOffsetBytes(text: string, what: string): number {
  return /^\s*0+\s*[bkmgtp]?(?:i?b)?\s*$/i.test(text) ? 0 : parseSizeBytes(text, what)
}

/** Parses a list of non-negative integers with ranges: "5", "5,9,13", "0-15", "0-3,8". */
export function parseIndexList(text: string, what: string, max = 2 ** 32 - 1): number[] {
  const out = new Set<number>()
  for (const part of text.split(',')) {
    const range = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part)
    const from = range ? Number(range[1]) : NaN
    const to = range?.[2] === undefined ? from : Number(range[2])
    if (!range || from > to || to > max) {
      throw new LvmfsError('ENGINE_USAGE', `invalid ${what}: "${text}"`, {
        detail: `Expected numbers from 0 to ${max} or ranges N-M, separated by commas (e.g. 5,9,12-15).` })
    }
    if (out.size + (to - from + 1) > 1 << 20) {
      throw new LvmfsError('ENGINE_USAGE', `${what}: "${text}" names more than ${1 << 20} entries`)
    }
    for (let index = from; index <= to; index++) out.add(index)
  }
  return [...out].sort((a, b) => a - b)
}
