import { startLab, type Lab } from '../../src/lab';
import { sh } from './helpers';

let lab: Lab;
beforeAll(async () => { lab = await startLab({ timeScale: 0.01 }); });
afterAll(async () => { await lab.stop(); });

describe('lab host over SSH', () => {
  it('reports real exit codes, stdout and stderr', async () => {
    expect(await sh(lab, 'echo out; echo err >&2; exit 3')).toEqual({ code: 3, stdout: 'out\n', stderr: 'err\n' });
    const nf = await sh(lab, 'frobnicate --now');
    expect(nf.code).toBe(127);
    expect(nf.stderr).toBe('bash: frobnicate: command not found\n');
  });

  it('creates a file only in a directory that exists, as the kernel does; a Debian system has its empty ones', async () => {
    expect(await sh(lab, 'echo x > /nonexistent/f')).toEqual({ code: 1, stdout: '', stderr: 'bash: line 1: /nonexistent/f: No such file or directory\n' });
    expect(await sh(lab, 'test -e /nonexistent; echo $?')).toMatchObject({ stdout: '1\n' });
    expect(await sh(lab, 'echo x > /etc/apt/sources.list.d/x.list && mkdir -p /a/b && echo y > /a/b/c && cat /a/b/c')).toMatchObject({ code: 0, stdout: 'y\n' });
    expect(await sh(lab, "install -m 0644 /a/b/c /nodir/c")).toEqual({ code: 1, stdout: '', stderr: "install: cannot create regular file '/nodir/c': No such file or directory\n" });
    expect((await sh(lab, 'install -D -m 0644 /a/b/c /newdir/c && cat /newdir/c')).stdout).toBe('y\n');
    expect(await sh(lab, 'curl -sS -o /nodir/k.asc https://download.docker.com/linux/debian/gpg')).toEqual({ code: 23, stdout: '', stderr: 'curl: (23) Failure writing output to destination\n' });
    expect(await sh(lab, 'ls -d /etc/apt/keyrings /etc/systemd/system /usr/local/bin')).toMatchObject({ code: 0 });
  });

  it('pct and qm take each subcommand\'s own options and arguments only, as getopt does', async () => {
    expect(await sh(lab, 'pct set 116 --password x')).toEqual({ code: 255, stdout: '', stderr: 'Unknown option: password\n400 unable to parse option\npct set <vmid> [OPTIONS]\n' });
    expect((await sh(lab, 'pct start 116 --purge 1')).stderr).toBe('Unknown option: purge\n400 unable to parse option\npct start <vmid> [OPTIONS]\n');
    expect(await sh(lab, 'pct stop 999 118')).toEqual({ code: 255, stdout: '', stderr: '400 too many arguments\npct stop <vmid> [OPTIONS]\n' });
    expect((await sh(lab, 'qm set 151 --timeout 5')).stderr).toBe('Unknown option: timeout\n400 unable to parse option\nqm set <vmid> [OPTIONS]\n');
    expect((await sh(lab, 'pct config 116')).stdout).not.toMatch(/password|storage|timeout/);
  });

  it('systemctl enable leaves a unit without an [Install] section static, and says why', async () => {
    expect((await sh(lab, 'cat > /etc/systemd/system/lab-static.service', '[Unit]\nDescription=x\n[Service]\nType=oneshot\nExecStart=/bin/true\n')).code).toBe(0);
    const en = await sh(lab, 'systemctl enable lab-static.service');
    expect({ code: en.code, stdout: en.stdout }).toEqual({ code: 0, stdout: '' });
    expect(en.stderr).toMatch(/^The unit files have no installation config \(WantedBy=, RequiredBy=, Also=,\nAlias= settings/);
    expect(await sh(lab, 'systemctl disable lab-static.service')).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(await sh(lab, 'systemctl is-enabled lab-static.service')).toEqual({ code: 0, stdout: 'static\n', stderr: '' });
    // With a WantedBy= it is enabled as usual.
    expect(await sh(lab, 'printf "[Install]\\nWantedBy=multi-user.target\\n" >> /etc/systemd/system/lab-static.service && systemctl enable lab-static.service')).toMatchObject({ code: 0, stderr: '' });
    expect((await sh(lab, 'systemctl is-enabled lab-static.service')).stdout).toBe('enabled\n');
    await sh(lab, 'systemctl disable lab-static.service; rm /etc/systemd/system/lab-static.service');
  });

  it('modprobe nvidia fails while vfio-pci holds the GPU; removing an unknown module is an error', async () => {
    expect(await sh(lab, 'modprobe nvidia')).toEqual({ code: 1, stdout: '', stderr: "modprobe: ERROR: could not insert 'nvidia': No such device\n" });
    expect(await sh(lab, 'modprobe nvidia-uvm')).toEqual({ code: 1, stdout: '', stderr: "modprobe: ERROR: could not insert 'nvidia': No such device\n" });
    expect((await sh(lab, 'lsmod')).stdout).not.toMatch(/^nvidia/m);
    expect(await sh(lab, 'modprobe -r bogusmod')).toEqual({ code: 1, stdout: '', stderr: 'modprobe: FATAL: Module bogusmod not found.\n' });
  });

  it('apt-get and systemctl refuse operations they do not have, in their own words', async () => {
    expect(await sh(lab, 'apt-get instal -y curl')).toEqual({ code: 100, stdout: '', stderr: 'E: Invalid operation instal\n' });
    expect(await sh(lab, 'systemctl frobnicate docker')).toEqual({ code: 1, stdout: '', stderr: 'Unknown command verb frobnicate.\n' });
  });

  it('curl writes -w even when it gets no answer: 000', async () => {
    expect(await sh(lab, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:1/")).toEqual({ code: 7, stdout: '000', stderr: '' });
  });

  it('pct list / status / config in PVE formats', async () => {
    const list = await sh(lab, 'pct list');
    expect(list.stdout.split('\n')[0]).toBe('VMID       Status     Lock         Name                ');
    expect(list.stdout).toContain('116        running                 openwebui           \n');
    expect(list.stdout).not.toContain('117 ');
    const st = await sh(lab, 'pct status 117');
    expect(st).toEqual({ code: 2, stdout: '', stderr: "Configuration file 'nodes/pve/lxc/117.conf' does not exist\n" });
    const conf = await sh(lab, 'pct config 118');
    const lines = conf.stdout.trim().split('\n');
    const firstLxc = lines.findIndex((l) => l.startsWith('lxc.'));
    expect(lines.slice(0, firstLxc).map((l) => l.split(':')[0])).toEqual([...lines.slice(0, firstLxc).map((l) => l.split(':')[0])].sort());
    expect(lines.slice(firstLxc).every((l) => l.startsWith('lxc.'))).toBe(true);
    expect(conf.stdout).toContain('lxc.cgroup2.devices.allow: c 195:* rwm\n');
  });

  it('qm list / config / set / stop follow qemu-server', async () => {
    const list = await sh(lab, 'qm list');
    expect(list.stdout).toBe('      VMID NAME                 STATUS     MEM(MB)    BOOTDISK(GB) PID       \n       151 gpu-vm               running    32768             64.00 2151      \n');
    expect((await sh(lab, 'qm config 151')).stdout).toContain('hostpci0: 0000:01:00.0,pcie=1,x-vga=1\nmachine: q35\n');
    expect((await sh(lab, 'qm set 151 --onboot 0')).stdout).toBe('update VM 151: -onboot 0\n');
    expect(await sh(lab, 'qm stop 151 && qm status 151')).toEqual({ code: 0, stdout: 'status: stopped\n', stderr: '' });
    expect((await sh(lab, 'qm stop 151')).code).toBe(0); // stopping a stopped VM is silent
    expect((await sh(lab, 'pct stop 117')).code).toBe(2);
  });

  it('pct exec needs -- before dash arguments; sysfs driver paths follow the binding', async () => {
    const noDash = await sh(lab, 'pct exec 116 ls -la');
    expect(noDash).toEqual({ code: 255, stdout: '', stderr: 'Unknown option: la\n400 unable to parse option\npct exec <vmid> [<extra-args>] [OPTIONS]\n' });
    expect((await sh(lab, 'pct exec 116 -- hostname')).stdout).toBe('openwebui\n');
    expect((await sh(lab, 'readlink /sys/bus/pci/devices/0000:01:00.0/driver')).stdout).toBe('../../../bus/pci/drivers/vfio-pci\n');
    expect((await sh(lab, 'ls /sys/bus/pci/drivers/vfio-pci')).stdout).toBe('0000:01:00.0\n0000:01:00.1\nbind\nnew_id\nremove_id\nunbind\n');
    const wrong = await sh(lab, 'echo 0000:01:00.0 > /sys/bus/pci/drivers/amdgpu/unbind');
    expect(wrong).toEqual({ code: 1, stdout: '', stderr: 'bash: line 1: echo: write error: No such device\n' });
    const absent = await sh(lab, 'echo 0000:01:00.0 > /sys/bus/pci/drivers/nvidia/bind');
    expect(absent).toEqual({ code: 1, stdout: '', stderr: 'bash: line 1: /sys/bus/pci/drivers/nvidia/bind: No such file or directory\n' });
    expect((await sh(lab, 'lsmod | grep nouveau')).stdout).toBe('nouveau              2961408  0\n');
    expect((await sh(lab, 'pct exec 118 -- nvidia-smi')).code).toBe(9); // userspace present, host driver not loaded
  });

  it('pct exec runs a program, not a shell line: builtins, assignments and missing programs are not found', async () => {
    const lxcAttach = (what: string) => ({ code: 127, stdout: '', stderr: `lxc-attach: 116: ../src/lxc/attach.c: lxc_attach_run_command: 1841 No such file or directory - Failed to exec "${what}"\n` });
    expect(await sh(lab, 'pct exec 116 -- cd /tmp')).toEqual(lxcAttach('cd'));
    expect(await sh(lab, 'pct exec 116 -- FOO=1 env')).toEqual(lxcAttach('FOO=1'));
    expect(await sh(lab, 'pct exec 116 -- frobnicate --now')).toEqual(lxcAttach('frobnicate'));
    // Each argv word arrives whole, unexpanded; a shell in the CT is the caller's to ask for.
    expect(await sh(lab, `pct exec 116 -- echo 'a  b' '$HOME'`)).toEqual({ code: 0, stdout: 'a  b $HOME\n', stderr: '' });
    expect(await sh(lab, `pct exec 116 -- sh -c 'cd /tmp && pwd'`)).toEqual({ code: 0, stdout: '/tmp\n', stderr: '' });
    // A command that fails inside the CT keeps its own status and words.
    expect(await sh(lab, `pct exec 116 -- sh -c 'frobnicate'`)).toEqual({ code: 127, stdout: '', stderr: 'bash: frobnicate: command not found\n' });
  });

  it('stdin is bytes through sh -c, pct exec and bash -s: UTF-8 lands as sent, counted in bytes', async () => {
    const text = 'modèle: Qwen—7B ✓\n'; // 22 bytes of UTF-8 in 18 characters
    const bytes = Buffer.byteLength(text);
    expect(await sh(lab, "sh -c 'cat > /root/u8 && wc -c < /root/u8 && cat /root/u8'", text)).toEqual({ code: 0, stdout: `${bytes}\n${text}`, stderr: '' });
    expect(await sh(lab, "pct exec 116 -- sh -c 'cat > /root/u8 && wc -c < /root/u8'", text)).toEqual({ code: 0, stdout: `${bytes}\n`, stderr: '' });
    expect(await sh(lab, 'bash -s', `wc -c <<'EOF'\n${text}EOF\n`)).toEqual({ code: 0, stdout: `${bytes}\n`, stderr: '' });
  });

  it('which finds programs on PATH, in the directories Debian puts them, and never builtins', async () => {
    expect(await sh(lab, 'which pct lspci cat modprobe')).toEqual({ code: 0, stdout: '/usr/sbin/pct\n/usr/bin/lspci\n/usr/bin/cat\n/usr/sbin/modprobe\n', stderr: '' });
    expect(await sh(lab, 'which docker cd')).toEqual({ code: 1, stdout: '', stderr: '' });
    expect(await sh(lab, 'PATH=/usr/bin:/bin which pct cat')).toEqual({ code: 1, stdout: '/usr/bin/cat\n', stderr: '' });
  });

  it('a devN passthrough of an absent device node stops the CT from starting', async () => {
    await sh(lab, 'pct create 130 local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst --hostname dev-test --rootfs local-lvm:8');
    expect((await sh(lab, 'pct set 130 -dev0 /dev/nvidia0')).code).toBe(0);
    expect(await sh(lab, 'pct start 130')).toEqual({ code: 255, stdout: '', stderr: "//dev/nvidia0 is not a device\nstartup for container '130' failed\n" });
    const same = lab.journal().length;
    await sh(lab, 'cat /etc/pve/lxc/130.conf > /tmp/c && cat /tmp/c > /etc/pve/lxc/130.conf');
    expect(lab.journal().length).toBe(same); // rewriting identical bytes changes nothing
    expect(await sh(lab, 'pct push 130 /etc/hostname /root/h')).toEqual({ code: 255, stdout: '', stderr: 'can only push files to a running CT\n' });
    expect((await sh(lab, 'pct destroy 130')).code).toBe(0);
    expect((await sh(lab, 'pct list')).stdout).not.toContain('130 ');
    expect(await sh(lab, 'echo hi > /tmp/p && pct push 116 /tmp/p /root/p --perms 0600 && pct exec 116 -- cat /root/p')).toEqual({ code: 0, stdout: 'hi\n', stderr: '' });
  });

  it('the config file and the state are one truth', async () => {
    const before = await sh(lab, 'cat /etc/pve/lxc/116.conf');
    expect(before.stdout).toContain('cores: 8\n');
    expect((await sh(lab, 'pct set 116 -cores 4 -memory 8192')).code).toBe(0);
    expect((await sh(lab, 'grep -E "^(cores|memory):" /etc/pve/lxc/116.conf')).stdout).toBe('cores: 4\nmemory: 8192\n');
    await sh(lab, 'echo "lxc.apparmor.profile: unconfined" >> /etc/pve/lxc/116.conf && echo "lxc.rootfs.path: /x" >> /etc/pve/lxc/116.conf');
    const conf = await sh(lab, 'pct config 116');
    expect(conf.stdout).toContain('lxc.apparmor.profile: unconfined\n');
    expect(conf.stdout).not.toContain('lxc.rootfs.path');
    expect(conf.stderr).toBe('vm 116 - lxc.rootfs.path: lxc.rootfs.path is auto generated from rootfs\n');
    const s = lab.state();
    expect(s.guests['116']?.lxc).toEqual([['lxc.apparmor.profile', 'unconfined']]);
    const bad = await sh(lab, 'pct set 116 -lxc.mount.entry "/dev/x dev/x none bind"');
    expect(bad.code).toBe(255);
    expect(bad.stderr).toMatch(/^Unknown option: lxc\.mount\.entry\n400 unable to parse option\npct set <vmid> \[OPTIONS\]\n$/);
  });

  it('sudo needs a valid sudoers.d entry; visudo rejects a bad file', async () => {
    expect((await sh(lab, 'visudo -cf /tmp/x')).code).toBe(127); // sudo is not part of a PVE install
    const inst = await sh(lab, 'apt-get install -y sudo');
    expect(inst.code).toBe(0);
    expect(inst.stdout).toContain('Setting up sudo (1.9.13p3-1+deb12u1) ...');
    await sh(lab, 'useradd -m -s /bin/bash claude && usermod -aG sudo claude && mkdir -p /home/claude/.ssh && chmod 700 /home/claude/.ssh');
    expect((await sh(lab, 'id claude')).stdout).toBe('uid=1000(claude) gid=1000(claude) groups=1000(claude),27(sudo)\n');
    expect((await sh(lab, 'useradd claude')).code).toBe(9);
    const { generateEd25519 } = await import('../../src/lab/ssh-server');
    const kp = generateEd25519('claude@test');
    await sh(lab, 'cat > /home/claude/.ssh/authorized_keys && chmod 600 /home/claude/.ssh/authorized_keys', `${kp.publicLine}\n`);
    const noRule = await sh(lab, 'sudo -n true', '', 'claude', kp.privatePem);
    expect(noRule).toEqual({ code: 1, stdout: '', stderr: 'sudo: a password is required\n' });
    const badFile = 'claude ALL=(ALL NOPASSWD:ALL\n';
    const chk = await sh(lab, 'cat > /tmp/claude && visudo -cf /tmp/claude', badFile);
    expect(chk.code).toBe(1);
    expect(chk.stderr).toMatch(/^\/tmp\/claude:1:\d+: syntax error\nclaude ALL=\(ALL NOPASSWD:ALL\n\s*\^~~~\n$/);
    const good = await sh(lab, 'cat > /tmp/claude && visudo -cf /tmp/claude && install -m 0440 /tmp/claude /etc/sudoers.d/claude', 'claude ALL=(ALL) NOPASSWD:ALL\n');
    expect(good).toEqual({ code: 0, stdout: '/tmp/claude: parsed OK\n', stderr: '' });
    expect(await sh(lab, 'sudo -n true && sudo -n whoami', '', 'claude', kp.privatePem)).toEqual({ code: 0, stdout: 'root\n', stderr: '' });
    expect((await sh(lab, 'pct list', '', 'claude', kp.privatePem)).code).toBe(255);
    // sudo execs a program as pct exec does; leading NAME=value words are its environment.
    expect(await sh(lab, 'sudo -n cd /tmp', '', 'claude', kp.privatePem)).toEqual({ code: 1, stdout: '', stderr: 'sudo: cd: command not found\n' });
    expect(await sh(lab, 'sudo -n LC_X=1 frobnicate', '', 'claude', kp.privatePem)).toEqual({ code: 1, stdout: '', stderr: 'sudo: frobnicate: command not found\n' });
    expect(lab.handshakes()).toBeGreaterThan(5);
  });
});

describe('lab host reboot', () => {
  it('forgets what sysfs and modprobe did by hand, honours modprobe.d and onboot, and runs enabled oneshot units', async () => {
    const own = await startLab({ timeScale: 0.01 });
    try {
      // By hand, as a deploy does: VM 151 off for good, the card on nvidia with nvidia-uvm. No blacklist yet.
      expect((await sh(own, 'qm shutdown 151 && qm set 151 --onboot 0 >/dev/null && echo 0000:01:00.0 > /sys/bus/pci/drivers/vfio-pci/unbind && echo nvidia > /sys/bus/pci/devices/0000:01:00.0/driver_override && modprobe -r nouveau && modprobe nvidia-uvm && lspci -k -s 01:00.0 | grep -c "in use: nvidia"')).stdout).toBe('1\n');
      let boot = await own.reboot();
      expect(boot).toEqual({ units: {}, started: [116, 118], failed: [] });
      // nouveau is not blacklisted: it takes the card at boot, and nothing of the hand work is left.
      expect(await sh(own, 'lspci -k -s 01:00.0 | grep "in use"; cat /sys/bus/pci/devices/0000:01:00.0/driver_override; lsmod | grep -c ^nvidia')).toMatchObject({ stdout: '\tKernel driver in use: nouveau\n(null)\n0\n' });
      // A blacklist the initramfs does not have yet changes nothing; after update-initramfs the installed nvidia driver binds, without uvm.
      expect((await sh(own, "printf 'blacklist nouveau\\n' > /etc/modprobe.d/blacklist-nouveau.conf")).code).toBe(0);
      await own.reboot();
      expect((await sh(own, 'lspci -k -s 01:00.0 | grep "in use"')).stdout).toBe('\tKernel driver in use: nouveau\n');
      expect((await sh(own, 'update-initramfs -u')).code).toBe(0);
      await own.reboot();
      expect(await sh(own, 'lspci -k -s 01:00.0 | grep "in use"; test -e /dev/nvidia-uvm; echo $?')).toMatchObject({ stdout: '\tKernel driver in use: nvidia\n1\n' });
      // An enabled oneshot unit runs before the guests start; a program named without its absolute path fails it.
      const unit = (exec: string) => `[Unit]\nDescription=t\n\n[Service]\nType=oneshot\nExecStart=${exec}\n\n[Install]\nWantedBy=multi-user.target\n`;
      expect((await sh(own, 'cat > /etc/systemd/system/uvm.service && systemctl enable uvm.service', unit('/sbin/modprobe nvidia-uvm'))).code).toBe(0);
      expect((await sh(own, 'cat > /etc/systemd/system/bad.service && systemctl enable bad', unit('modprobe nvidia-uvm'))).code).toBe(0);
      boot = await own.reboot();
      expect(boot.units).toEqual({ 'bad.service': 'failed', 'uvm.service': 'active' });
      expect(own.journal().filter((e) => e.op === 'boot.unit-failed').map((e) => e.detail)).toContain('bad.service: Failed to locate executable modprobe');
      expect((await sh(own, 'test -e /dev/nvidia-uvm && systemctl is-active uvm')).stdout).toBe('active\n');
    } finally {
      await own.stop();
    }
  });
});
