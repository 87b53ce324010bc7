// Ansible as users would run it for the same job: a playbook of N `command: /bin/true` tasks over SSH to the
// bench's sshd, pipelining on, no fact gathering, ControlPersist as Ansible's default ssh_args set it.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { BenchSshd } from './sshd';

export interface AnsibleInfo {
  path: string;
  version: string;
}

export function findAnsiblePlaybook(): AnsibleInfo | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const path = join(dir, 'ansible-playbook');
    try {
      const out = execFileSync(path, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      // "ansible-playbook [core 2.14.18]"
      const version = /\[core ([^\]]+)\]/.exec(out)?.[1] ?? out.split('\n')[0]?.trim() ?? 'unknown';
      return { path, version };
    } catch {
      // not here, or not runnable: keep looking
    }
  }
  return undefined;
}

export interface AnsibleProject {
  /** run a playbook of n tasks; resolves with its wall time in ms */
  run(n: number): Promise<number>;
  cleanup(): void;
}

export function prepareAnsible(info: AnsibleInfo, sshd: BenchSshd): AnsibleProject {
  const dir = mkdtempSync(join(tmpdir(), 'pve-vllm-bench-ansible-'));
  const cp = join(dir, 'cp');
  mkdirSync(cp);
  writeFileSync(
    join(dir, 'ansible.cfg'),
    [
      '[defaults]',
      'host_key_checking = False',
      'gathering = explicit',
      'interpreter_python = /usr/bin/python3',
      'retry_files_enabled = False',
      'forks = 1',
      `local_tmp = ${join(dir, 'tmp')}`,
      '[ssh_connection]',
      'pipelining = True',
      // ssh_args left at Ansible's default (-C -o ControlMaster=auto -o ControlPersist=60s); a private
      // control_path_dir keeps its master connection apart from anything else on the machine.
      `control_path_dir = ${cp}`,
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'inventory.ini'),
    `bench ansible_host=${sshd.host} ansible_port=${sshd.port} ansible_user=${sshd.user} ` +
      `ansible_ssh_private_key_file=${sshd.clientKeyPath} ` +
      `ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'\n`,
  );
  const playbooks = new Map<number, string>();
  const playbook = (n: number): string => {
    let path = playbooks.get(n);
    if (path) return path;
    const tasks = Array.from({ length: n }, (_, i) => `    - name: step ${i + 1}\n      command: /bin/true\n      changed_when: false\n`);
    path = join(dir, `steps-${n}.yml`);
    writeFileSync(path, `- hosts: bench\n  gather_facts: false\n  tasks:\n${tasks.join('')}`);
    playbooks.set(n, path);
    return path;
  };
  const env = { ...process.env, ANSIBLE_CONFIG: join(dir, 'ansible.cfg'), ANSIBLE_NOCOLOR: '1', ANSIBLE_FORCE_COLOR: '0' };

  return {
    run: (n) =>
      new Promise<number>((resolve, reject) => {
        const path = playbook(n);
        const started = performance.now();
        const child = spawn(info.path, ['-i', join(dir, 'inventory.ini'), path], { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
        child.stderr.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
        child.once('error', reject);
        child.once('exit', (code) => {
          const ms = performance.now() - started;
          if (code === 0 && new RegExp(`ok=${n}\\b`).test(out)) resolve(ms);
          else reject(new Error(`ansible-playbook (${n} tasks) exited ${code}:\n${out}`));
        });
      }),
    cleanup: () => {
      // End the ControlPersist master (it would linger 60 s holding a session on the sshd), then the files.
      for (const socket of readdirSync(cp)) {
        try {
          execFileSync('ssh', ['-O', 'exit', '-S', join(cp, socket), 'bench'], { stdio: 'ignore', timeout: 5000 });
        } catch {
          // already gone
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
