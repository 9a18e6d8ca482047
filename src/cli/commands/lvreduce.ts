import type { Command } from 'commander'
import { registerResize } from './lvresize-common.js'

/** `lvmfs lvreduce VG LV --size [-]SIZE` */
export function register(program: Command): void {
  registerResize(program, 'lvreduce')
}
