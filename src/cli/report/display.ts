/**
 * The key/value blocks of lvdisplay, vgdisplay and pvdisplay, in LVM2's layout
 * ("  --- Logical volume ---", then one "  Key<padding>value" line per item). Each item names a
 * report field, so the values and their JSON are the same as in lvs/vgs/pvs.
 */
import { cellText, formatSize, type FieldDef, type FieldTable, type Units } from './format.js'

export interface DisplayItem<R> {
  readonly label: string
  /** The report field behind the item (its value is the item's JSON). */
  readonly field: string
  /** How the display spells it, when not as the report does. */
  readonly text?: (row: R, units: Units) => string
  /** Shown only when it returns true. */
  readonly when?: (row: R) => boolean
}

function fieldOf<R>(table: FieldTable<R>, name: string): FieldDef<R> {
  const field = table.find((f) => f.name === name)
  // A display naming a field that does not exist is a bug in this module, not user input.
  if (field === undefined) throw new Error(`display names unknown field ${name}`)
  return field
}

/** LVM2 pads keys to 22 columns in lvdisplay and 21 in vgdisplay and pvdisplay. */
export function renderDisplay<R>(title: string, keyWidth: number, table: FieldTable<R>,
  items: readonly DisplayItem<R>[], rows: readonly R[], units: Units): string {
  return rows.map((row) => {
    const lines = items.filter((item) => item.when?.(row) ?? true).map((item) => {
      const value = item.text?.(row, units) ?? cellText(fieldOf(table, item.field), row, units, 'short')
      return `  ${item.label.padEnd(keyWidth)} ${value}`.trimEnd()
    })
    return `  --- ${title} ---\n${lines.join('\n')}\n\n`
  }).join('')
}

/** The JSON of a display: every field it shows, by its report name, numbers as numbers. */
export function displayJson<R>(table: FieldTable<R>, items: readonly DisplayItem<R>[],
  row: R): Record<string, string | number> {
  const out: Record<string, string | number> = {}
  for (const item of items) {
    if (!(item.when?.(row) ?? true)) continue
    const value = fieldOf(table, item.field).get(row)
    if (value !== undefined) out[item.field] = value
  }
  return out
}

/** "384 / 1.50 GiB": a PP count with its size, as LVM2's "Alloc PE / Size". */
export function countAndSize(count: number, ppSizeBytes: number, units: Units): string {
  return `${count} / ${formatSize(count * ppSizeBytes, units, 'short')}`
}
