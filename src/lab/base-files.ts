/** The files a fresh machine starts with: the PVE host image or the Debian 12 standard CT template. */
import type { LabHost } from './host';

const OS_RELEASE = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
`;

const PASSWD = `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
man:x:6:12:man:/var/cache/man:/usr/sbin/nologin
mail:x:8:8:mail:/var/mail:/usr/sbin/nologin
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
_apt:x:42:65534::/nonexistent:/usr/sbin/nologin
systemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin
messagebus:x:100:107::/nonexistent:/usr/sbin/nologin
sshd:x:101:65534::/run/sshd:/usr/sbin/nologin
`;

const GROUP = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
mail:x:8:
man:x:12:
sudo:x:27:
audio:x:29:
www-data:x:33:
video:x:44:
plugdev:x:46:
users:x:100:
render:x:104:
nogroup:x:65534:
systemd-network:x:998:
messagebus:x:107:
`;

const SHADOW = PASSWD.split('\n').filter(Boolean).map((l) => `${l.split(':')[0]}:*:19700:0:99999:7:::`).join('\n') + '\n';

const BASHRC = '# ~/.bashrc: executed by bash(1) for non-login shells.\n';

export const SUDOERS = `#
# This file MUST be edited with the 'visudo' command as root.
#
Defaults	env_reset
Defaults	mail_badpass
Defaults	secure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
Defaults	use_pty

# User privilege specification
root	ALL=(ALL:ALL) ALL

# Allow members of group sudo to execute any command
%sudo	ALL=(ALL:ALL) ALL

@includedir /etc/sudoers.d
`;

export const SUDOERS_README = `#
# The default /etc/sudoers file created on installation of the
# sudo  package now includes the directive:
#
# 	@includedir /etc/sudoers.d
#
# This will cause sudo to read and parse any files in the /etc/sudoers.d
# directory that do not end in '~' or contain a '.' character.
#
`;

/**
 * Directories of a Debian 12 system (the PVE host and the CT template alike) that exist while empty. Writing a
 * file into a directory that does not exist fails, as on a real host, so a step must create what it needs.
 */
export const BASE_DIRS: readonly string[] = [
  '/etc/apt/sources.list.d', '/etc/apt/apt.conf.d', '/etc/apt/preferences.d', '/etc/apt/trusted.gpg.d', '/etc/apt/keyrings',
  '/etc/systemd/system', '/etc/modprobe.d', '/etc/modules-load.d', '/etc/default', '/etc/profile.d', '/etc/cron.d',
  '/usr/local/bin', '/usr/local/sbin', '/usr/local/lib', '/usr/share/keyrings', '/var/lib', '/var/cache', '/var/tmp',
  '/srv', '/mnt', '/media', '/root', '/run', '/tmp', '/opt', '/home', '/var/log',
];

export function baseFiles(host: LabHost, vmid: number | null): Record<string, string> {
  const common: Record<string, string> = {
    '/etc/os-release': OS_RELEASE,
    '/etc/debian_version': '12.10\n',
    '/etc/passwd': PASSWD,
    '/etc/group': GROUP,
    '/etc/shadow': SHADOW,
    '/etc/skel/.bashrc': BASHRC,
    '/etc/skel/.profile': '# ~/.profile: executed by the command interpreter for login shells.\n',
    '/root/.bashrc': BASHRC,
    '/etc/apt/sources.list': 'deb http://deb.debian.org/debian bookworm main contrib\ndeb http://deb.debian.org/debian bookworm-updates main contrib\ndeb http://security.debian.org bookworm-security main contrib\n',
    '/tmp/.keep': '',
    '/opt/.keep': '',
    '/home/.keep': '',
    '/var/log/.keep': '',
  };
  if (vmid === null) {
    return {
      ...common,
      '/etc/hostname': `${host.state.node.name}\n`,
      '/etc/hosts': `127.0.0.1 localhost.localdomain localhost\n${host.state.node.ip} ${host.state.node.name}.local ${host.state.node.name}\n`,
      '/etc/modprobe.d/pve-blacklist.conf': '# This file contains a list of modules which are not supported by Proxmox VE \n\n# nvidiafb see bugreport https://bugzilla.proxmox.com/show_bug.cgi?id=701\nblacklist nvidiafb\n',
      '/etc/apt/sources.list.d/pve-no-subscription.list': 'deb http://download.proxmox.com/debian/pve bookworm pve-no-subscription\n',
      '/root/.ssh/authorized_keys': `${host.state.keys.rootPublicKey}\n`,
      '/var/lib/vz/template/cache/debian-12-standard_12.7-1_amd64.tar.zst': '',
      '/boot/.keep': '',
    };
  }
  const g = host.guest(vmid);
  const extra: Record<string, string> = {};
  if (g?.config.hostname === 'openwebui') {
    extra['/root/.env'] = 'ENABLE_OLLAMA_API=false\n';
    extra['/root/.open-webui/webui.db'] = '';
    extra['/etc/systemd/system/open-webui.service'] = '[Unit]\nDescription=Open WebUI Service\nAfter=network.target\n\n[Service]\nType=simple\nEnvironmentFile=-/root/.env\nEnvironment=DATA_DIR=/root/.open-webui\nExecStart=/root/.local/bin/open-webui serve\nWorkingDirectory=/root\nRestart=on-failure\n\n[Install]\nWantedBy=multi-user.target\n';
  }
  if (g?.config.hostname === 'comfyui') {
    extra['/opt/ComfyUI/main.py'] = '';
    extra['/opt/ComfyUI/custom_nodes/.keep'] = '';
    extra['/opt/ComfyUI/venv/bin/python'] = '';
    extra['/etc/systemd/system/comfyui.service'] = '[Unit]\nDescription=ComfyUI Service\nAfter=network.target\n\n[Service]\nType=simple\nUser=root\nWorkingDirectory=/opt/ComfyUI\nExecStart=/opt/ComfyUI/venv/bin/python /opt/ComfyUI/main.py --listen --port 8188\nRestart=always\n\n[Install]\nWantedBy=multi-user.target\n';
  }
  return {
    ...common,
    ...extra,
    '/etc/hostname': `${g?.config.hostname ?? `CT${vmid}`}\n`,
    '/etc/hosts': `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n`,
  };
}
