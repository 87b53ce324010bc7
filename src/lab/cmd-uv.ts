/**
 * `uv pip install --python <venv python> <pkgs>` as the community-scripts CTs use it (ComfyUI, OpenWebUI).
 * Installed Python packages are recorded as `pip:<name>` so services can tell whether an import would work,
 * and a second install of the same packages changes (and journals) nothing. Registered after cmd-node.ts,
 * so this one is the `uv` the CTs run.
 */
import { defineCommand } from 'just-bash';
import type { Command } from 'just-bash';
import { fail, ok, parseFlags, type Result } from './cmd-util';
import type { Machine, World } from './world';

const PYPI: Record<string, string> = { openai: '1.99.9', numpy: '2.3.2', pillow: '11.3.0', requests: '2.32.4' };

export function uvCommands(world: World, m: Machine): Command[] {
  if (m.vmid === null) return [];
  const uv = defineCommand('uv', async (args, ctx): Promise<Result> => {
    if (args[0] === '--version') return ok('uv 0.8.13\n');
    if (args[0] !== 'pip' || args[1] !== 'install') return fail(`error: unrecognized subcommand '${args[0] ?? ''}'\n`, 2);
    const { flags, operands } = parseFlags(args.slice(2), ['--python', '-p', '-r']);
    const py = String(flags['--python'] ?? flags['-p'] ?? '');
    if (!py) return fail('error: No virtual environment found; run `uv venv` to create an environment, or pass `--system` to install into a non-virtual environment\n', 2);
    if (!(await ctx.fs.exists(ctx.fs.resolvePath(ctx.cwd, py)))) return fail(`error: Failed to inspect Python interpreter from provided path at \`${py}\`\n  Caused by: Python interpreter not found at \`${py}\`\n`, 2);
    const rt = world.runtime(m.key);
    const wanted = operands.map((o) => o.toLowerCase().replace(/[<>=!~].*$/, ''));
    for (const w of wanted) if (!PYPI[w]) return fail(`  × No solution found when resolving dependencies:\n  ╰─▶ Because ${w} was not found in the package registry and you require ${w}, we can conclude that your requirements are unsatisfiable.\n`, 1);
    const fresh = wanted.filter((w) => !rt.packages.includes(`pip:${w}`));
    if (fresh.length === 0) return ok('', `Using Python 3.12.3 environment at: ${py.replace(/\/bin\/python3?$/, '')}\nAudited ${wanted.length} package${wanted.length === 1 ? '' : 's'} in 3ms\n`);
    await world.host.delay(1500);
    for (const w of fresh) rt.packages.push(`pip:${w}`);
    world.host.record('ssh', 'uv pip install', m.vmid ?? undefined, fresh.join(' '));
    const env = `Using Python 3.12.3 environment at: ${py.replace(/\/bin\/python3?$/, '')}\n`;
    return ok('', `${env}Resolved ${fresh.length + 8} packages in 412ms\nPrepared ${fresh.length} package${fresh.length === 1 ? '' : 's'} in 1.21s\nInstalled ${fresh.length} package${fresh.length === 1 ? '' : 's'} in 38ms\n${fresh.map((w) => ` + ${w}==${PYPI[w]}`).join('\n')}\n`);
  });
  return [uv];
}
