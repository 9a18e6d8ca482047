/**
 * The report engine behind lvs/pvs/vgs and the *display verbs, pure (no devices, no commander):
 * field tables, `-o` / `--sort` parsing, LVM2 size units, and rendering as aligned columns,
 * separated values or JSON. Output follows LVM2's libdevmapper report (dm_report_output,
 * dm_size_to_string) so scripts written against LVM2 read it unchanged.
 */
import { LvmfsError } from '../../errors/index.js'

export type FieldKind = 'string' | 'number' | 'size' | 'percent'
export type FieldValue = string | number | undefined

export interface FieldDef<R> {
  /** The LVM2 name where LVM2 has one (lv_name, pv_free, vg_extent_count). */
  readonly name: string
  readonly aliases?: readonly string[]
  readonly heading: string
  readonly kind: FieldKind
  /** Undefined: the field does not apply to this row (empty cell, absent from JSON). */
  get(row: R): FieldValue
  /** Text rendering for composite values (lag); sizes inside use the report's units. */
  text?(row: R, units: Units): string | undefined
}

export type FieldTable<R> = readonly FieldDef<R>[]

export interface ReportSpec<R> {
  readonly fields: readonly FieldDef<R>[]
  readonly sort: ReadonlyArray<{ readonly field: FieldDef<R>; readonly descending: boolean }>
  /** True when `-o` was given: JSON then reports exactly these fields. */
  readonly selected: boolean
}

export interface Units {
  /** h/H human (1024/1000), r/R human with LVM2's "<" when rounded up, else one fixed unit. */
  readonly type: string
  readonly suffix: boolean
}

export const DEFAULT_UNITS: Units = { type: 'r', suffix: true }

function usage(message: string, detail?: string): LvmfsError {
  return new LvmfsError('ENGINE_USAGE', message, detail === undefined ? {} : { detail })
}

export function findField<R>(table: FieldTable<R>, name: string): FieldDef<R> | undefined {
  const key = name.trim().toLowerCase()
  return table.find((f) => f.name === key || (f.aliases ?? []).includes(key))
}

function requireField<R>(table: FieldTable<R>, name: string, verb: string, what: string): FieldDef<R> {
  const field = findField(table, name)
  if (field !== undefined) return field
  throw usage(`${verb}: unrecognised ${what} "${name}"; valid fields: ${table.map((f) => f.name).join(', ')}`,
    `Aliases: ${table.filter((f) => f.aliases?.length).map((f) => `${f.aliases!.join('/')} = ${f.name}`)
      .join(', ')}.`)
}

/** Comma or space separated, as LVM2 accepts (`-o lv_name,size` and `-o "lv_name size"`). */
function words(list: string): string[] {
  return list.split(/[,\s]+/).filter((w) => w !== '')
}

/**
 * `-o` values (each may be repeated): a plain list replaces the defaults, `+a,b` appends to
 * them and `-a` removes a column, as in LVM2. `--sort a,-b`: `-` sorts descending.
 */
export function parseReportSpec<R>(table: FieldTable<R>, defaults: readonly string[], verb: string,
  options: readonly string[] | undefined, sort: string | undefined, defaultSort: readonly string[]): ReportSpec<R> {
  let names = [...defaults]
  for (const option of options ?? []) {
    const trimmed = option.trim()
    if (trimmed.startsWith('+')) names.push(...words(trimmed.slice(1)))
    else if (trimmed.startsWith('-')) {
      const drop = words(trimmed.slice(1)).map((n) => requireField(table, n, verb, 'field'))
      names = names.filter((n) => !drop.includes(requireField(table, n, verb, 'field')))
    } else names = words(trimmed)
  }
  const fields = names.map((n) => requireField(table, n, verb, 'field'))
  if (fields.length === 0) throw usage(`${verb}: no fields selected`)
  const sortKeys = sort === undefined ? defaultSort.map((n) => `+${n}`) : words(sort)
  if (sortKeys.length === 0) throw usage(`${verb}: --sort names no field`)
  return {
    fields, selected: options !== undefined && options.length > 0,
    sort: sortKeys.map((key) => {
      const descending = key.startsWith('-')
      const name = key.startsWith('-') || key.startsWith('+') ? key.slice(1) : key
      return { field: requireField(table, name, verb, 'sort field'), descending }
    }),
  }
}

export function parseUnits(text: string | undefined, nosuffix: boolean): Units {
  if (text === undefined) return { ...DEFAULT_UNITS, suffix: !nosuffix }
  if (!/^[hHrRbBsSkKmMgGtTpPeE]$/.test(text)) {
    throw usage(`--units "${text}": expected one of h H r R b B s S k K m M g G t T p P e E`,
      'Lower case is powers of 1024, upper case powers of 1000; h/H human-readable, b bytes, s sectors.')
  }
  return { type: text, suffix: !nosuffix }
}

const PREFIXES = 'EPTGMK'

/** How a size is spelled: one letter as in reports (`1.00g`) or the short form of the
 * *display verbs (`1.00 GiB`). */
export type SuffixStyle = 'unit' | 'short'

function suffixOf(letter: string, base: 1024 | 1000 | 0, style: SuffixStyle): string {
  if (style === 'unit') return letter
  if (letter === 'B' || letter === 'b') return ' B'
  if (letter === 'S') return ' Se'
  return base === 1024 ? ` ${letter.toUpperCase()}iB` : letter === 'K' ? ' kB' : ` ${letter}B`
}

/** `%.*f` of num/den with C's round-half-even on exact ties (glibc printf), which toFixed
 * does not do (1.125 prints 1.12 in LVM2). */
function fixed(num: bigint, den: bigint, precision: number): string {
  const scale = 10n ** BigInt(precision)
  let q = (num * scale) / den
  const twice = ((num * scale) % den) * 2n
  if (twice > den || (twice === den && q % 2n === 1n)) q += 1n
  if (precision === 0) return q.toString()
  const digits = q.toString().padStart(precision + 1, '0')
  return `${digits.slice(0, -precision)}.${digits.slice(-precision)}`
}

/** dm_size_to_string with si_unit_consistency = 1 (LVM2's default). */
export function formatSize(bytes: number, units: Units, style: SuffixStyle = 'unit'): string {
  const type = units.type
  const human = 'hHrR'.includes(type)
  if (bytes === 0) {
    if (human) return style === 'unit' ? '0 ' : '0   '
    if (!units.suffix) return '0'
    return `0${fixedSuffix(type, style)}`
  }
  const size = BigInt(Math.round(bytes))
  if (!human) {
    const { factor, letter, base } = fixedUnit(type)
    const precision = letter.toUpperCase() === 'B' || letter === 'S' ? 0 : 2
    return fixed(size, factor, precision) + (units.suffix ? suffixOf(letter, base, style) : '')
  }
  const base = type === 'H' || type === 'R' ? 1000 : 1024
  const unit = BigInt(base)
  let byte = unit ** 6n
  let s = 0
  for (; s < 6 && size < byte; s++) byte /= unit
  const letter = s < 6 ? (base === 1000 ? PREFIXES[s]! : PREFIXES[s]!.toLowerCase()) : (base === 1000 ? 'B' : 'b')
  const precision = s < 6 ? 2 : 0
  let prefix = ''
  if (s < 6 && (type === 'r' || type === 'R')) {
    const twice = ((size * 100n) % byte) * 2n
    const q = (size * 100n) / byte
    if (twice > byte || (twice === byte && q % 2n === 1n)) prefix = '<'
  }
  // LVM2 keeps the suffix of human-readable sizes even with --nosuffix: the unit varies by row.
  return prefix + fixed(size, byte, precision) + suffixOf(letter, base, style)
}

function fixedUnit(type: string): { factor: bigint; letter: string; base: 1024 | 1000 | 0 } {
  if (type === 'b' || type === 'B') return { factor: 1n, letter: 'B', base: 0 }
  if (type === 's' || type === 'S') return { factor: 512n, letter: 'S', base: 0 }
  const upper = type === type.toUpperCase()
  const power = 6 - PREFIXES.indexOf(type.toUpperCase())
  return { factor: (upper ? 1000n : 1024n) ** BigInt(power), letter: type, base: upper ? 1000 : 1024 }
}

function fixedSuffix(type: string, style: SuffixStyle): string {
  const { letter, base } = fixedUnit(type)
  return suffixOf(letter, base, style)
}

/** A percentage as LVM2 prints it (display_percent: two decimals). */
export function formatPercent(value: number): string {
  return value.toFixed(2)
}

export function cellText<R>(field: FieldDef<R>, row: R, units: Units, style: SuffixStyle = 'unit'): string {
  const custom = field.text?.(row, units)
  if (custom !== undefined) return custom
  const value = field.get(row)
  if (value === undefined) return ''
  if (field.kind === 'size' && typeof value === 'number') return formatSize(value, units, style)
  if (field.kind === 'percent' && typeof value === 'number') return formatPercent(value)
  return String(value)
}

function compare(a: FieldValue, b: FieldValue): number {
  if (a === b) return 0
  // An absent value sorts first, like LVM2's empty string.
  if (a === undefined) return -1
  if (b === undefined) return 1
  if (typeof a === 'number' && typeof b === 'number') return a - b
  const x = String(a)
  const y = String(b)
  return x < y ? -1 : x > y ? 1 : 0
}

export function sortRows<R>(rows: readonly R[], spec: ReportSpec<R>): R[] {
  return rows.map((row, index) => ({ row, index })).sort((a, b) => {
    for (const { field, descending } of spec.sort) {
      const order = compare(field.get(a.row), field.get(b.row))
      if (order !== 0) return descending ? -order : order
    }
    return a.index - b.index
  }).map((entry) => entry.row)
}

export interface RenderOptions {
  readonly units: Units
  readonly headings: boolean
  /** Set: cells joined by it, unpadded (unless `aligned`). Unset: aligned columns, one space. */
  readonly separator?: string
  readonly aligned?: boolean
}

/** Every line starts with LVM2's log prefix, two spaces, also with --separator (scripts written
 * for LVM2 strip it). Numbers and sizes are right-aligned, everything else left-aligned. */
export function renderReport<R>(rows: readonly R[], spec: ReportSpec<R>, options: RenderOptions): string {
  const cells = rows.map((row) => spec.fields.map((f) => cellText(f, row, options.units)))
  const headings = spec.fields.map((f) => f.heading)
  const lines = options.headings ? [headings, ...cells] : cells
  if (options.separator !== undefined && options.aligned !== true) {
    return lines.map((line) => `  ${line.join(options.separator)}\n`).join('')
  }
  const widths = spec.fields.map((_, i) => Math.max(0, ...lines.map((line) => line[i]!.length)))
  const right = spec.fields.map((f) => f.kind !== 'string')
  return lines.map((line) => {
    const padded = line.map((cell, i) => (right[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
    return `  ${padded.join(options.separator ?? ' ')}`.trimEnd() + '\n'
  }).join('')
}

/** One row as JSON: canonical field names, numbers as numbers (sizes in bytes), absent
 * values left out. */
export function jsonRow<R>(row: R, fields: readonly FieldDef<R>[]): Record<string, string | number> {
  const out: Record<string, string | number> = {}
  for (const field of fields) {
    const value = field.get(row)
    if (value !== undefined) out[field.name] = value
  }
  return out
}
