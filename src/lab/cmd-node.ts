/**
 * Node.js tooling and a few host commands: `npm install -g` (Debian's npm), the `claude` CLI it installs,
 * `userdel`, `modinfo -F version`, and `nvidia-modprobe -u -c=0` (makes /dev/nvidia-uvm like the real one).
 */
import { defineCommand } from 'just-bash';
import type { Command } from 'just-bash';
import { fail, isRoot, ok, parseFlags, readText, type Ctx, type Result } from './cmd-util';
import type { Machine, World } from './world';

/** The npm registry as the lab knows it: package -> versions. */
const NPM_REGISTRY: Record<string, string[]> = {
  '@anthropic-ai/claude-code': ['2.1.12', '2.1.11', '2.0.76', '1.0.128'],
};
export const CLAUDE_PKG = 'npm:@anthropic-ai/claude-code';

export function nodeCommands(world: World, m: Machine): Command[] {
  const host = world.host;
  const rt = () => world.runtime(m.key);
  const journal = (op: string, detail: string): void => {
    host.record('ssh', op, m.vmid ?? undefined, detail);
  };
  const installedVersion = (): string | undefined =>
    rt().packages.find((p) => p.startsWith(`${CLAUDE_PKG}@`))?.slice(CLAUDE_PKG.length + 1);

  const npm = defineCommand('npm', async (args, ctx): Promise<Result> => {
    const [sub, ...rest] = args;
    if (sub === '--version' || sub === '-v') return ok('9.2.0\n');
    if (sub !== 'install' && sub !== 'i') return fail(`Unknown command: "${sub ?? ''}"\n`, 1);
    const { flags, operands } = parseFlags(rest, []);
    if (!flags['-g'] && !flags['--global']) return fail('npm ERR! code ENOENT\nnpm ERR! syscall open\nnpm ERR! path /root/package.json\n', 254);
    if (!isRoot(ctx)) return fail('npm ERR! code EACCES\nnpm ERR! syscall mkdir\nnpm ERR! path /usr/local/lib/node_modules\n', 243);
    const out: string[] = [];
    for (const spec of operands) {
      const at = spec.lastIndexOf('@');
      const [name, want] = at > 0 ? [spec.slice(0, at), spec.slice(at + 1)] : [spec, undefined];
      const versions = NPM_REGISTRY[name];
      if (!versions) return fail(`npm ERR! code E404\nnpm ERR! 404 Not Found - GET https://registry.npmjs.org/${name.replace('/', '%2f')} - Not found\n`, 1);
      const version = want ?? versions[0];
      if (!version || !versions.includes(version)) {
        return fail(`npm ERR! code ETARGET\nnpm ERR! notarget No matching version found for ${name}@${want}.\n`, 1);
      }
      await host.delay(1500);
      const pkgs = rt().packages.filter((p) => !p.startsWith(`npm:${name}@`));
      pkgs.push(`npm:${name}@${version}`);
      rt().packages = pkgs;
      world.packagesChanged(m);
      journal('npm install -g', `${name}@${version}`);
      out.push(`\nadded 3 packages in 2s\n`);
    }
    return ok(out.join(''));
  });

  const claude = defineCommand('claude', async (args): Promise<Result> => {
    const version = installedVersion();
    if (!version) return fail('bash: claude: command not found\n', 127);
    if (args[0] === '--version' || args[0] === '-v') return ok(`${version} (Claude Code)\n`);
    return fail('Error: claude needs an interactive terminal or --print\n', 1);
  });

  const userdel = defineCommand('userdel', async (args, ctx): Promise<Result> => {
    if (!isRoot(ctx)) return fail('userdel: Permission denied.\nuserdel: cannot lock /etc/passwd; try again later.\n', 1);
    const { flags, operands } = parseFlags(args, []);
    const name = operands[0];
    if (!name) return fail('Usage: userdel [options] LOGIN\n', 2);
    const passwd = (await readText(ctx, '/etc/passwd')) ?? '';
    const entry = passwd.split('\n').find((l) => l.split(':')[0] === name);
    if (!entry) return fail(`userdel: user '${name}' does not exist\n`, 6);
    const home = entry.split(':')[5] ?? `/home/${name}`;
    await ctx.fs.writeFile('/etc/passwd', drop(passwd, name));
    await ctx.fs.writeFile('/etc/shadow', drop((await readText(ctx, '/etc/shadow')) ?? '', name));
    const group = (await readText(ctx, '/etc/group')) ?? '';
    const groups = group
      .split('\n')
      .filter((l) => l && l.split(':')[0] !== name)
      .map((l) => {
        const f = l.split(':');
        f[3] = (f[3] ?? '').split(',').filter((u) => u && u !== name).join(',');
        return f.join(':');
      });
    await ctx.fs.writeFile('/etc/group', `${groups.join('\n')}\n`);
    if (flags['-r'] || flags['--remove']) await ctx.fs.rm(home, { recursive: true, force: true });
    journal('userdel', name);
    return ok();
  });

  const modinfo = defineCommand('modinfo', async (args): Promise<Result> => {
    const { flags, operands } = parseFlags(args, ['-F', '--field']);
    const mod = operands[0];
    const field = flags['-F'] ?? flags['--field'];
    if (m.vmid !== null) return fail(`modinfo: ERROR: Module alias ${mod ?? ''} not found.\n`, 1);
    const known: Record<string, string> = { nvidia: host.state.node.nvidiaDriver, nvidia_uvm: host.state.node.nvidiaDriver, 'nvidia-uvm': host.state.node.nvidiaDriver, nouveau: '', vfio_pci: '' };
    if (!mod || !(mod in known)) return fail(`modinfo: ERROR: Module ${mod ?? ''} not found.\n`, 1);
    if (field === 'version') return ok(known[mod] ? `${known[mod]}\n` : '');
    return ok(`filename:       /lib/modules/${host.state.node.kernel}/updates/dkms/${mod}.ko\nversion:        ${known[mod]}\nlicense:        NVIDIA\n`);
  });

  const nvidiaModprobe = defineCommand('nvidia-modprobe', async (args, ctx: Ctx): Promise<Result> => {
    if (m.vmid !== null || !isRoot(ctx)) return fail('', 1);
    if (args.includes('-u') && !host.state.node.modules.includes('nvidia_uvm')) {
      if (!host.state.node.modules.includes('nvidia')) return fail('', 1);
      host.state.node.modules.push('nvidia_uvm');
      journal('nvidia-modprobe', '-u');
    }
    return ok();
  });

  return [npm, claude, userdel, modinfo, nvidiaModprobe];
}

function drop(text: string, name: string): string {
  return `${text.split('\n').filter((l) => l && l.split(':')[0] !== name).join('\n')}\n`;
}
