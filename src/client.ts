// The `pve-vllm` CLI. Exit codes: 0 success, 1 the deploy failed (after compensation), 2 bad input.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { EXIT_BAD_INPUT, EXIT_FAILED, UsageError } from './cli/exit';
import { TemporalFlags, withTemporalFlags } from './cli/connection';
import { ACTIVITY_SLOTS } from './limits';
import { FAULT_NAMES } from './lab/state';
import type { Io } from './cli/run-commands';

const io: Io = { out: process.stdout, err: process.stderr };

function positiveInt(name: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError(`${name}: got ${JSON.stringify(v)}; allowed: a positive integer`);
    return Number(v);
  };
}
/** The lab's time scale: its longest simulated step, stretched, must still fit Node's timers (and an evening). */
export const MAX_TIME_SCALE = 100;
function timeScale(v: string): number {
  if (!/^(\d+\.?\d*|\.\d+)$/.test(v) || !(Number(v) > 0) || Number(v) > MAX_TIME_SCALE) {
    throw new InvalidArgumentError(`--time-scale: got ${JSON.stringify(v)}; allowed: a number greater than 0, at most ${MAX_TIME_SCALE} (1 = the lab's realistic profile)`);
  }
  return Number(v);
}
function port(name: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 65535) throw new InvalidArgumentError(`${name}: got ${JSON.stringify(v)}; allowed: a TCP port, 1 to 65535`);
    return Number(v);
  };
}
/** Temporal's default limit on an id's length is 1000; an empty id or control characters are refused there too. */
function workflowId(name: string) {
  return (v: string): string => {
    if (!/^[^\x00-\x1f\x7f]{1,1000}$/.test(v) || v.trim() !== v) {
      throw new InvalidArgumentError(`${name}: got ${JSON.stringify(v)}; allowed: 1 to 1000 characters, no control characters or surrounding spaces (e.g. pve-vllm-pve)`);
    }
    return v;
  };
}
const workflowIdArg = workflowId('workflowId');
const collect = (v: string, prev: string[]) => [...prev, v];
const collectFault = (v: string, prev: string[]) => {
  if (!(FAULT_NAMES as readonly string[]).includes(v)) throw new InvalidArgumentError(`--fault: got ${JSON.stringify(v)}; allowed: ${FAULT_NAMES.join(', ')}`);
  return [...prev, v];
};

export function buildProgram(run: (p: Promise<number>) => void): Command {
  const program = new Command('pve-vllm')
    .description('Deploy vLLM on a Proxmox VE host with NVIDIA GPU passthrough, as a durable Temporal workflow')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  withTemporalFlags(program.command('worker').description('run a worker: executes deploy workflows and their activities'))
    .addOption(new Option('--max-concurrent-activities <n>', 'activity slots').argParser(positiveInt('--max-concurrent-activities')).default(ACTIVITY_SLOTS))
    .action((o: TemporalFlags & { maxConcurrentActivities: number }) => run(import('./cli/worker-command').then((m) => m.workerCommand(o, io))));

  withTemporalFlags(program.command('deploy').description('validate the config and start a deploy'))
    .requiredOption('-c, --config <file>', 'deploy config (YAML)')
    .option('--model <id>', 'override model.id')
    .option('--max-model-len <n>', 'override model.maxModelLen', positiveInt('--max-model-len'))
    .option('--watch', 'follow the run live until it ends')
    .option('--json', 'wait for the end and print one JSON report')
    .option('--workflow-id <id>', 'workflow id (default: pve-vllm-<node>: one deploy per node at a time)', workflowId('--workflow-id'))
    .action((o) => run(import('./cli/run-commands').then((m) => m.deployCommand(o, io))));

  withTemporalFlags(program.command('teardown').description('take a completed deploy back: vLLM off the card, frontends and GPU as before the first deploy'))
    .requiredOption('-c, --config <file>', 'deploy config (YAML) of the deploy to take back')
    .option('--watch', 'follow the run live until it ends')
    .option('--json', 'print one JSON report')
    .option('--workflow-id <id>', 'workflow id (default: pve-vllm-<node>, the deploy\'s: never both at once)', workflowId('--workflow-id'))
    .action((o) => run(import('./cli/run-commands').then((m) => m.teardownCommand(o, io))));

  withTemporalFlags(program.command('status').argument('<workflowId>', 'the run, e.g. pve-vllm-pve', workflowIdArg).description('show a run: step, checkpoints, pending decisions'))
    .option('--json', 'print JSON')
    .action((id: string, o) => run(import('./cli/run-commands').then((m) => m.statusCommand(id, o, io))));

  withTemporalFlags(
    program
      .command('decide')
      .argument('<workflowId>', 'the run, e.g. pve-vllm-pve', workflowIdArg)
      .argument('<decision>', 'openwebui or frontend')
      .argument('<choice>', 'openwebui: repurpose|keep|scrap; frontend: openwebui|comfyui|both')
      .description('answer a decision (a rejected choice prints the reason and exits 2)'),
  )
    .option('--by <name>', 'who decided (default: $USER)')
    .action((id: string, decision: string, choice: string, o) => run(import('./cli/run-commands').then((m) => m.decideCommand(id, decision, choice, o, io))));

  withTemporalFlags(program.command('cancel').argument('<workflowId>', 'the run, e.g. pve-vllm-pve', workflowIdArg).description('cancel a run; its changes are undone'))
    .option('--json', 'print the final report as JSON')
    .option('--no-wait', 'do not wait for the undo to finish')
    .action((id: string, o) => run(import('./cli/run-commands').then((m) => m.cancelCommand(id, o, io))));

  withTemporalFlags(program.command('history').argument('<workflowId>', 'the run, e.g. pve-vllm-pve', workflowIdArg).description('the step timeline of a run'))
    .option('--json', 'print JSON')
    .action((id: string, o) => run(import('./cli/run-commands').then((m) => m.historyCommand(id, o, io))));

  program
    .command('plan')
    .description('validate the config and run every offline preflight; changes nothing')
    .requiredOption('-c, --config <file>', 'deploy config (YAML)')
    .option('--model <id>', 'override model.id')
    .option('--max-model-len <n>', 'override model.maxModelLen', positiveInt('--max-model-len'))
    .option('--live', 'also read the host (SSH and API, read-only) and say what the deploy would do to what is there')
    .option('--json', 'print JSON')
    .action((o) => run(import('./cli/plan').then((m) => m.planCommand(o, io))));

  program
    .command('lab')
    .description('run the simulated Proxmox host on 127.0.0.1 until killed')
    .option('--config-out <file>', 'write a deploy config pointing at the lab')
    .option('--state <file>', 'load and save the lab state here')
    .option('--fault <name>', `arm a fault: ${FAULT_NAMES.join(', ')} (repeatable)`, collectFault, [])
    .option('--time-scale <x>', `stretch (>1) or shrink (<1) the lab's durations (at most ${MAX_TIME_SCALE})`, timeScale)
    .action((o) => run(import('./cli/lab-command').then((m) => m.labCommand(o, io))));

  program
    .command('demo')
    .description('deploy onto the lab with a local dev server, its Web UI and a worker')
    .option('--decide <decision=choice>', 'pre-answer: openwebui=keep, frontend=openwebui … (repeatable)', collect, [])
    .option('--fault <name>', `arm a lab fault: ${FAULT_NAMES.join(', ')} (repeatable)`, collectFault, [])
    .option('--lab-state <file>', 'keep the lab state in this file (run twice to see a no-op re-run)')
    .option('--model <id>', 'override the model')
    .option('--max-model-len <n>', 'override the context length', positiveInt('--max-model-len'))
    .option('--json', 'print one JSON report')
    .option('--keep', 'keep the dev server and Web UI up until Ctrl-C')
    .option('--teardown', 'after a completed deploy, take it back with `teardown`: the lab ends as it began')
    .option('--ui-port <port>', 'Web UI port', port('--ui-port'), 8233)
    .option('--time-scale <x>', `lab time scale: 1 = the lab's realistic profile, scaled down; at most ${MAX_TIME_SCALE} (default 0.25, under a minute)`, timeScale, 0.25)
    .action((o) => run(import('./cli/demo').then((m) => m.demoCommand(o, io))));

  return program;
}

export async function main(argv: string[]): Promise<number> {
  let pending: Promise<number> | undefined;
  // The command runs beside the parse, not inside it: parseAsync would await it and rethrow its error past
  // the handling below (bad input as exit 2, other failures as one line). Marked handled now, awaited below.
  const program = buildProgram((p) => {
    pending = p;
    p.catch(() => undefined);
  });
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return EXIT_BAD_INPUT;
    }
    throw err;
  }
  if (!pending) return 0;
  try {
    return await pending;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err.write(`${err.message}\n`);
      return EXIT_BAD_INPUT;
    }
    io.err.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_FAILED;
  }
}

export function runMain(argv: string[]): void {
  main(argv).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(EXIT_FAILED);
    },
  );
}

if (require.main === module) runMain(process.argv);
