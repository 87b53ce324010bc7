/** Which packages provide a command: until one is installed, the command does not exist on that machine. */
export const PROVIDES: Record<string, string[]> = {
  docker: ['docker-ce', 'docker.io'],
  'nvidia-ctk': ['nvidia-container-toolkit', 'nvidia-container-toolkit-base'],
  'nvidia-smi': ['nvidia-smi', 'nvidia-driver-cuda', 'cuda-drivers-580'],
  git: ['git'],
  gpg: ['gnupg', 'gpg'],
  curl: ['curl'],
  wget: ['wget'],
  sudo: ['sudo'],
  visudo: ['sudo'],
  lspci: ['pciutils'],
  uv: ['uv'],
  npm: ['npm'],
};
