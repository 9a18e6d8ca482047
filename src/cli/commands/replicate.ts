import type { Command } from 'commander'
import { LvmfsError, LSM_STATUSES } from '../../errors/index.js'
import { REPLICATION_TYPES } from '../../replication/index.js'
import { stderr } from '../io-context.js'
import { addDeviceOptions, print, requireName, type DeviceOptions } from '../lvm-cli.js'
import { parseVgLv, progressBar } from '../mirror-cli.js'
import { withReplication } from './replication-common.js'
import { percentProgress } from './job.js'

interface ReplicateOptions extends DeviceOptions {
  readonly type?: string
  readonly pool?: string
  readonly targetVg?: string
  readonly interval?: string
  readonly wait?: boolean
}

function intervalMs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const seconds = Number(text)
  if (!Number.isFinite(seconds) || seconds < 0.01 || seconds > 86_400) {
    throw new LvmfsError('LSM_ERR_INVALID_ARGUMENT', `invalid --interval "${text}"`, {
      detail: 'Expected seconds from 0.01 to 86400.' })
  }
  return Math.round(seconds * 1000)
}

/**
 * `lvmfs replicate VG/LV NAME --type clone|copy|mirror-sync|mirror-async [--pool VG]
 * [--interval S] [--wait]`: lsm_volume_replicate. Prints the new volume (LSM_ERR_OK) or the
 * job id (LSM_ERR_JOB_STARTED); --wait runs the job to completion with a progress bar.
 */
export function register(program: Command): void {
  addDeviceOptions(program.command('replicate').description('clone, copy or mirror a logical volume (lsm_volume_replicate)')
    .argument('<vg/lv>', 'source volume group and logical volume')
    .argument('<name>', 'name of the new volume')
    .requiredOption('--type <type>', `one of ${REPLICATION_TYPES.join(', ')}`)
    .option('--pool <vg>', 'volume group of the new volume (default: the source VG)')
    .option('--target-vg <vg>', 'the same as --pool: the VG of the new volume, possibly on another site\'s PVs')
    .option('--interval <seconds>', 'mirror-async: propagation interval (default 1)')
    .option('--wait', 'run a started job to completion before returning'))
    .action(async (source: string, name: string, options: ReplicateOptions) => {
      const { vgName, lvName } = parseVgLv(source)
      requireName('logical volume', name)
      if (options.pool !== undefined && options.targetVg !== undefined && options.pool !== options.targetVg) {
        throw new LvmfsError('LSM_ERR_INVALID_ARGUMENT', `--pool "${options.pool}" and --target-vg ` +
          `"${options.targetVg}" name different VGs`, { detail: '--target-vg is another name for --pool.' })
      }
      const pool = options.pool ?? options.targetVg
      if (pool !== undefined) requireName('volume group', pool)
      const interval = intervalMs(options.interval)
      const bar = options.wait === true ? progressBar({ ...options, vgName }) : undefined
      const outcome = await withReplication([vgName, pool ?? vgName], options, async (repl) => {
        const result = await repl.replicate({ vg: vgName, lv: lvName, name, type: options.type ?? '',
          ...(pool === undefined ? {} : { pool }),
          ...(interval === undefined ? {} : { intervalMs: interval }) })
        if (result.status !== 'LSM_ERR_JOB_STARTED' || options.wait !== true) return { result, job: undefined }
        try {
          const job = await repl.waitJob(result.jobId, (status) => bar?.onProgress?.(percentProgress(status.percent)))
          return { result, job }
        } finally {
          bar?.stop()
        }
      })
      const { result, job } = outcome
      const volume = `${result.volume.vg}/${result.volume.lv}`
      const json = { status: result.status, rc: LSM_STATUSES[result.status], volume: result.volume,
        ...(result.status === 'LSM_ERR_JOB_STARTED' ? { job: result.jobId } : {}), ...(job === undefined ? {} : { jobStatus: job }) }
      if (result.status === 'LSM_ERR_OK') {
        print(options, json, `${options.type} ${volume} created (LSM_ERR_OK)\n`)
        return
      }
      print(options, json, `job ${result.jobId} started for ${volume} (LSM_ERR_JOB_STARTED)` +
        (job === undefined ? '' : `; ${job.state.toLowerCase()} ${job.percent}%`) + '\n')
      if (job === undefined && options.json !== true) {
        stderr().write(`lvmfs: the job runs while the VG is mounted; otherwise resume it with lvmfs job ${result.jobId} --wait\n`)
      }
      if (job?.state === 'ERROR') {
        throw new LvmfsError('LSM_ERR_INVALID_ARGUMENT', `job ${result.jobId} failed: ${job.error ?? 'unknown error'}`)
      }
    })
}
