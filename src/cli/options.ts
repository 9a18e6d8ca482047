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
