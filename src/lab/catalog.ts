/**
 * What the lab's apt repositories and "internet" hold: package versions/sizes, canned downloads for the
 * URLs an install needs (keys, repo lists), and git repositories with fixed commit ids.
 */
import { createHash } from 'node:crypto';
import { HOST_NVIDIA_DRIVER } from './state';

export interface PkgInfo {
  version: string;
  sizeKb: number;
  /** sources.list.d content that must be present (and `apt-get update`d) for the package to be found. */
  repo?: 'docker' | 'nvidia-ctk' | 'cuda';
  deps?: string[];
}

/** The NVIDIA userspace driver packages (CUDA repo); their version is the driver version. */
export const NVIDIA_USERSPACE = /^(nvidia-smi|nvidia-utils-\d+|libnvidia-ml1|libcuda1|nvidia-driver-cuda|cuda-drivers(-\d+)?|nvidia-driver-libs)$/;

export const PACKAGES: Record<string, PkgInfo> = {
  'ca-certificates': { version: '20230311', sizeKb: 153 },
  curl: { version: '7.88.1-10+deb12u12', sizeKb: 315, deps: ['libcurl4'] },
  libcurl4: { version: '7.88.1-10+deb12u12', sizeKb: 391 },
  wget: { version: '1.21.3-1+deb12u1', sizeKb: 937 },
  git: { version: '1:2.39.5-0+deb12u2', sizeKb: 7264, deps: ['git-man', 'liberror-perl'] },
  'git-man': { version: '1:2.39.5-0+deb12u2', sizeKb: 2053 },
  'liberror-perl': { version: '0.17029-2', sizeKb: 25 },
  sudo: { version: '1.9.13p3-1+deb12u1', sizeKb: 1889 },
  gnupg: { version: '2.2.40-1.1', sizeKb: 846, deps: ['dirmngr', 'gpg'] },
  gpg: { version: '2.2.40-1.1', sizeKb: 949 },
  dirmngr: { version: '2.2.40-1.1', sizeKb: 793 },
  jq: { version: '1.6-2.1', sizeKb: 135 },
  pciutils: { version: '1:3.9.0-4', sizeKb: 105 },
  python3: { version: '3.11.2-1+b1', sizeKb: 26 },
  nodejs: { version: '18.19.0+dfsg-6~deb12u2', sizeKb: 14263 },
  npm: { version: '9.2.0~ds1-1', sizeKb: 2347, deps: ['nodejs'] },
  'openssh-server': { version: '1:9.2p1-2+deb12u5', sizeKb: 455 },
  'apt-transport-https': { version: '2.6.1', sizeKb: 25 },
  'lsb-release': { version: '12.0-1', sizeKb: 6 },
  'docker.io': { version: '20.10.24+dfsg1-1+deb12u1', sizeKb: 24120, deps: ['containerd', 'runc'] },
  containerd: { version: '1.6.20~ds1-1+deb12u1', sizeKb: 24785 },
  runc: { version: '1.1.5+ds1-1+deb12u1', sizeKb: 2659 },
  'docker-ce': { version: '5:28.5.2-1~debian.12~bookworm', sizeKb: 20412, repo: 'docker', deps: ['containerd.io', 'docker-ce-cli'] },
  'docker-ce-cli': { version: '5:28.5.2-1~debian.12~bookworm', sizeKb: 16093, repo: 'docker' },
  'containerd.io': { version: '1.7.28-2', sizeKb: 30544, repo: 'docker' },
  'docker-buildx-plugin': { version: '0.29.1-1~debian.12~bookworm', sizeKb: 18472, repo: 'docker' },
  'docker-compose-plugin': { version: '2.40.3-1~debian.12~bookworm', sizeKb: 14354, repo: 'docker' },
  'nvidia-container-toolkit': { version: '1.17.8-1', sizeKb: 1229, repo: 'nvidia-ctk', deps: ['nvidia-container-toolkit-base', 'libnvidia-container-tools', 'libnvidia-container1'] },
  'nvidia-container-toolkit-base': { version: '1.17.8-1', sizeKb: 3825, repo: 'nvidia-ctk' },
  'libnvidia-container-tools': { version: '1.17.8-1', sizeKb: 20, repo: 'nvidia-ctk' },
  'libnvidia-container1': { version: '1.17.8-1', sizeKb: 927, repo: 'nvidia-ctk' },
  // Debian's own (non-free) driver userspace is the 535 branch: installing it next to a 580 host mismatches.
  'nvidia-smi': { version: '535.216.03-1~deb12u1', sizeKb: 301 },
  'libnvidia-ml1': { version: '535.216.03-1~deb12u1', sizeKb: 481 },
  'nvidia-driver-cuda': { version: `${HOST_NVIDIA_DRIVER}-1`, sizeKb: 1420, repo: 'cuda', deps: ['libnvidia-ml1', 'libcuda1'] },
  'cuda-drivers-580': { version: `${HOST_NVIDIA_DRIVER}-1`, sizeKb: 3, repo: 'cuda', deps: ['nvidia-driver-cuda'] },
  libcuda1: { version: `${HOST_NVIDIA_DRIVER}-1`, sizeKb: 23120, repo: 'cuda' },
};

/** Versions of NVIDIA userspace packages in the CUDA repo (apt `pkg=version` pinning). */
export const CUDA_REPO_DRIVERS = [HOST_NVIDIA_DRIVER, '580.105.08', '580.95.05', '575.57.08', '570.195.03'];

export const REPO_MARKERS: Record<NonNullable<PkgInfo['repo']>, RegExp> = {
  docker: /download\.docker\.com\/linux\/debian/,
  'nvidia-ctk': /nvidia\.github\.io\/libnvidia-container/,
  cuda: /developer\.download\.nvidia\.com\/compute\/cuda\/repos\/debian12/,
};

const PGP = (who: string): string => `-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF${createHash('sha256').update(who).digest('base64').slice(0, 60)}\n=lab0\n-----END PGP PUBLIC KEY BLOCK-----\n`;

/** Minimal install script standing in for get.docker.com (the same steps the real one takes on Debian 12). */
const GET_DOCKER = `#!/bin/sh
set -e
# Lab stand-in for https://get.docker.com: adds Docker's apt repository and installs the engine.
apt-get update -qq >/dev/null
apt-get install -y -qq ca-certificates curl >/dev/null
install -m 0755 -d /etc/apt/keyrings
curl -fsSL https://download.docker.com/linux/debian/gpg -o /etc/apt/keyrings/docker.asc
chmod a+r /etc/apt/keyrings/docker.asc
echo "deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/debian bookworm stable" > /etc/apt/sources.list.d/docker.list
apt-get update -qq >/dev/null
apt-get install -y -qq docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin >/dev/null
`;

/** The lab's "internet": URL -> body. Anything else does not resolve. */
export function download(url: string): string | undefined {
  const u = url.replace(/\/+$/, '');
  const table: Record<string, string> = {
    'https://download.docker.com/linux/debian/gpg': PGP('docker'),
    'https://get.docker.com': GET_DOCKER,
    'https://nvidia.github.io/libnvidia-container/gpgkey': PGP('nvidia-container'),
    'https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list': 'deb https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /\n#deb https://nvidia.github.io/libnvidia-container/experimental/deb/$(ARCH) /\n',
    'https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/cuda-keyring_1.1-1_all.deb': '!<arch>\ndebian-binary   cuda-keyring 1.1-1 (lab)\n',
  };
  return table[u];
}

export interface GitRepo {
  url: string;
  defaultBranch: string;
  refs: Record<string, string>; // tag/branch -> commit
  files: Record<string, string>;
}

const sha = (s: string): string => createHash('sha1').update(s).digest('hex');

export const GIT_REPOS: GitRepo[] = [
  {
    url: 'https://github.com/vllm-project/vllm',
    defaultBranch: 'main',
    refs: { main: sha('vllm@main'), 'v0.6.4': '02dbf30e9a4389b41d95dd595bfe1224592dd404', 'v0.6.4.post1': 'a6221a144af772fd1a68fe7e627935dc53e81738' },
    files: { 'README.md': '# vLLM\nEasy, fast, and cheap LLM serving for everyone\n', 'pyproject.toml': '[project]\nname = "vllm"\n', 'examples/.keep': '' },
  },
  {
    url: 'https://github.com/hekmon/comfyui-openai-api',
    defaultBranch: 'main',
    refs: { main: sha('comfyui-openai-api@main') },
    files: { 'README.md': '# ComfyUI OpenAI API\n', 'pyproject.toml': '[project]\nname = "comfyui-openai-api"\ndependencies = ["openai", "numpy", "Pillow"]\n', '__init__.py': '' },
  },
  {
    url: 'https://github.com/comfyanonymous/ComfyUI',
    defaultBranch: 'master',
    refs: { master: sha('ComfyUI@master') },
    files: { 'README.md': '# ComfyUI\n', 'main.py': '' },
  },
];

export function findRepo(url: string): GitRepo | undefined {
  const norm = url.replace(/\.git$/, '').replace(/\/+$/, '');
  return GIT_REPOS.find((r) => r.url.toLowerCase() === norm.toLowerCase());
}
