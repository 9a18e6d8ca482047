/**
 * The LVM2 report options shared by lvs, pvs and vgs, and the step from parsed options to
 * printed output. Options are validated before any device is scanned, so a bad field costs
 * no I/O.
 */
import type { Command } from 'commander'
import { stdout } from '../io-context.js'
import { displayJson, renderDisplay, type DisplayItem } from './display.js'
import {
  jsonRow, parseReportSpec, parseUnits, renderReport, sortRows, type FieldTable, type ReportSpec, type Units,
} from './format.js'

export interface ReportCliOptions {
  readonly options?: string[]
  readonly sort?: string
  readonly units?: string
  readonly noheadings?: boolean
  readonly separator?: string
  readonly aligned?: boolean
  readonly nosuffix?: boolean
  readonly json?: boolean
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}

export function addUnitsOption(command: Command): Command {
  return command.option('--units <unit>',
    'size units: h|H|r|R human, b, s sectors, k|m|g|t|p|e (1024), K|M|G|T|P|E (1000)')
}

export function addReportOptions<R>(command: Command, fields: FieldTable<R>): Command {
  return addUnitsOption(command)
    .option('-o, --options <fields>', `fields to show (comma-separated; "+f" appends to the defaults, "-f" drops one; ` +
      `repeatable): ${fields.map((f) => f.name).join(', ')}`, collect)
    .option('-O, --sort <fields>', 'sort by these fields ("-f" descending)')
    .option('--noheadings', 'no heading line')
    .option('--separator <text>', 'separate the fields by this text instead of aligning them')
    .option('--aligned', 'with --separator: keep the columns aligned')
    .option('--nosuffix', 'no unit suffix on sizes (with --units other than h/H/r/R)')
}

export interface Report<R> {
  readonly spec: ReportSpec<R>
  readonly units: Units
  /** Prints the rows sorted; JSON with `-o` reports the selected fields, else `legacy`. */
  print(rows: readonly R[], jsonKey: string, legacy: (sorted: readonly R[]) => unknown): void
}

export function report<R>(verb: string, fields: FieldTable<R>, defaults: readonly string[],
  defaultSort: readonly string[], options: ReportCliOptions): Report<R> {
  const spec = parseReportSpec(fields, defaults, verb, options.options, options.sort, defaultSort)
  const units = parseUnits(options.units, options.nosuffix === true)
  return {
    spec, units,
    print(rows, jsonKey, legacy) {
      const sorted = sortRows(rows, spec)
      if (options.json === true) {
        // LVM2's --reportformat json shape when fields are chosen; without -o the shape lvmfs
        // always printed, so existing scripts keep working.
        const json = spec.selected ? { report: [{ [jsonKey]: sorted.map((r) => jsonRow(r, spec.fields)) }] }
          : legacy(sorted)
        stdout().write(JSON.stringify(json) + '\n')
        return
      }
      stdout().write(renderReport(sorted, spec, { units, headings: options.noheadings !== true,
        ...(options.separator === undefined ? {} : { separator: options.separator }),
        ...(options.aligned === undefined ? {} : { aligned: options.aligned }) }))
    },
  }
}

export interface DisplaySpec<R> {
  readonly title: string
  readonly keyWidth: number
  readonly table: FieldTable<R>
  readonly items: readonly DisplayItem<R>[]
  readonly jsonKey: string
  /** The order of the blocks. */
  readonly key: (row: R) => string
}

/** Prints the blocks of a *display verb (or their JSON), ordered by `spec.key`. */
export function printDisplay<R>(spec: DisplaySpec<R>, rows: readonly R[],
  options: { readonly json?: boolean; readonly units?: string }): void {
  const units = parseUnits(options.units, false)
  const sorted = [...rows].sort((a, b) => (spec.key(a) < spec.key(b) ? -1 : spec.key(a) > spec.key(b) ? 1 : 0))
  stdout().write(options.json === true
    ? JSON.stringify({ [spec.jsonKey]: sorted.map((r) => displayJson(spec.table, spec.items, r)) }) + '\n'
    : renderDisplay(spec.title, spec.keyWidth, spec.table, spec.items, sorted, units))
}
