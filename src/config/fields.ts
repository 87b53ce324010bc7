/**
 * Leaf validators of the deploy config. Every string here may end up on a shell command line on the Proxmox
 * host or in a container, so each one is held to a strict pattern rather than trusted to later quoting alone.
 * Each leaf registers an "allowed" text: the problem report shows it next to the bad value.
 */
import { z } from 'zod';
import { MIN_MAX_MODEL_LEN } from '../sizing/arithmetic';

/** What a field accepts, in words a homelab admin understands (shown in `config error: …; allowed: …`). */
export const allowedText = z.registry<{ allowed: string }>();

export function field<T extends z.ZodType>(schema: T, allowed: string): T {
  allowedText.add(schema, { allowed });
  return schema;
}

/** A string checked against a pattern; `why` explains the failure when the pattern alone would not. */
function patterned(re: RegExp, allowed: string, why?: string): z.ZodString {
  return field(z.string().regex(re, why === undefined ? undefined : { message: why }), allowed);
}

// ---------------------------------------------------------------- numbers

export const vmid = field(
  z.number().int().min(100, { message: 'PVE guest ids start at 100' }).max(999999999, { message: 'PVE guest ids end at 999999999' }),
  'an integer guest id from 100 to 999999999 (PVE vmid range)',
);
export const port = field(z.number().int().min(1).max(65535), 'a TCP port, an integer from 1 to 65535');
export const cores = field(z.number().int().min(1).max(8192), 'a whole number of CPU cores from 1 to 8192');
export const memoryMiB = field(z.number().int().min(16).max(64 * 1024 * 1024), 'memory in MiB, an integer from 16 (PVE minimum) to 67108864');
export const diskGiB = field(z.number().int().min(1).max(1024 * 1024), 'disk size in GiB, an integer from 1 to 1048576');
export const maxModelLen = field(z.number().int().min(MIN_MAX_MODEL_LEN).max(1048576), `a context length in tokens, an integer from ${MIN_MAX_MODEL_LEN} to 1048576`);
export const gpuMemoryUtilization = field(
  z.number().gt(0, { message: 'vLLM needs some of the GPU' }).max(1, { message: 'a fraction cannot exceed 1' }),
  'a fraction of the GPU memory greater than 0 and at most 1 (e.g. 0.9)',
);
export const cpuOffloadGb = field(z.number().min(0).max(4096), 'GiB of weights to offload to CPU RAM, a number from 0 to 4096');
export const vramMiB = field(z.number().int().min(256).max(1024 * 1024), 'GPU memory in MiB as nvidia-smi reports it, an integer from 256');

// ---------------------------------------------------------------- names

// RFC 1123 labels: letters, digits, hyphens inside, 1..63 characters each.
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const HOSTNAME_RE = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*$`);
const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
export const IPV4_RE = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);

export function isHostname(s: string): boolean {
  // A name made only of digits and dots is a mistyped IPv4 address, not a hostname.
  return HOSTNAME_RE.test(s) && !/^[\d.]+$/.test(s);
}

export function isIpv6(s: string): boolean {
  // Hex groups and colons only (an optional trailing dotted quad); enough to keep it a literal, not a program.
  if (!/^[0-9A-Fa-f:.]+$/.test(s) || !s.includes(':') || s.length > 45) return false;
  return s.split('::').length <= 2;
}

export const hostname = field(
  z.string().refine(isHostname, { message: 'must be a hostname per RFC 1123 (letters, digits, hyphens; dot-separated labels)' }),
  'a hostname per RFC 1123: labels of letters, digits and inner hyphens, up to 63 characters each',
);
export const hostOrIp = field(
  z.string().refine((s) => IPV4_RE.test(s) || isIpv6(s) || isHostname(s), {
    message: 'must be a bare hostname or IP address (no scheme, port or path)',
  }),
  'a hostname (RFC 1123) or an IPv4/IPv6 address, without scheme or port',
);
export const nodeName = patterned(
  new RegExp(`^${LABEL}$`),
  'a Proxmox node name: one hostname label (letters, digits, inner hyphens)',
);
export const linuxUser = patterned(
  /^[a-z_][a-z0-9_-]{0,31}$/,
  'a Linux user name: lower-case letter or _ first, then lower-case letters, digits, _ or -, at most 32 characters',
);
export const storageId = patterned(
  /^[A-Za-z][A-Za-z0-9._-]*[A-Za-z0-9]$/,
  'a PVE storage id (e.g. local, local-lvm): a letter first, then letters, digits, . _ -',
);
export const bridge = patterned(
  /^[A-Za-z][A-Za-z0-9_.-]{0,14}$/,
  'a Linux bridge name (e.g. vmbr0): a letter first, up to 15 letters, digits, . _ -',
);
export const templateVolid = patterned(
  /^[A-Za-z][A-Za-z0-9._-]*[A-Za-z0-9]:vztmpl\/[A-Za-z0-9][A-Za-z0-9._+-]*\.tar\.(?:gz|xz|zst)$/,
  'a CT template volume id STORAGE:vztmpl/FILE.tar.{zst,xz,gz} (e.g. local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst)',
);
export const pciAddress = field(
  z
    .string()
    .regex(/^[0-9A-Fa-f]{4}:[0-9A-Fa-f]{2}:[0-1][0-9A-Fa-f]\.[0-7]$/, {
      message: 'must be a full PCI address domain:bus:device.function, as lspci -D prints it',
    })
    .transform((s) => s.toLowerCase()),
  'a PCI address in the form 0000:01:00.0 (domain:bus:device.function)',
);
export const gpuModelName = patterned(/^[A-Za-z0-9][A-Za-z0-9 ._/+-]{0,99}$/, 'a GPU name as nvidia-smi prints it (letters, digits, spaces, . _ / + -)');
export const computeCapability = patterned(/^\d{1,2}\.\d$/, 'a CUDA compute capability such as 8.9');

// ---------------------------------------------------------------- paths

// A path segment: no shell metacharacters, no whitespace, no quotes; `..` refused so a path means what it says.
const SEGMENT = '(?!\\.\\.?(?:/|$))[A-Za-z0-9._+@-]+';
export const absolutePath = patterned(
  new RegExp(`^/(?:${SEGMENT}(?:/${SEGMENT})*/?)?$`),
  'an absolute path of letters, digits and . _ + @ - (no spaces, quotes, $, ;, .. or other shell characters)',
);
// Local files are opened by the worker with fs, never through a shell, so `..` is fine there.
const LOCAL_SEGMENT = '[A-Za-z0-9._+@-]+';
/** Local files (keys, CA files) read by the worker: absolute, relative to the config file, or under `~/`. */
export const localPath = patterned(
  new RegExp(`^(?:~/|/)?${LOCAL_SEGMENT}(?:/${LOCAL_SEGMENT})*$`),
  'a file path (absolute, ~/…, or relative to the config file) of letters, digits and . _ + @ - (no shell characters)',
);

// ---------------------------------------------------------------- models, images, repos

export const HF_REPO_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;
export const ALIAS_RE = /^[a-z0-9][a-z0-9._-]*$/;
export const modelId = field(
  z.string().refine((s) => (HF_REPO_RE.test(s) || ALIAS_RE.test(s)) && s.length <= 200 && !s.includes('..'), {
    message: 'must be a Hugging Face repo id OWNER/NAME or a catalog alias',
  }),
  'a Hugging Face repo id OWNER/NAME (letters, digits, . _ -) such as TheBloke/Mistral-7B-Instruct-v0.2-AWQ, or a catalog alias',
);

const IMAGE_NAME = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const IMAGE_RE = new RegExp(
  // A registry is named only when the first component has a dot or a port, or is localhost (Docker's rule).
  `^(?:(?<registry>(?:localhost|[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)+)(?::\\d+)?|[A-Za-z0-9-]+:\\d+)/)?(?<name>${IMAGE_NAME}(?:/${IMAGE_NAME})*)` +
    `(?::(?<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?<digest>sha256:[a-f0-9]{64}))?$`,
);

export function checkImageRef(s: string): string | undefined {
  const m = IMAGE_RE.exec(s);
  if (!m?.groups) return 'must be an image reference NAME:TAG (lower-case name, e.g. vllm/vllm-openai:v0.6.4.post1)';
  const { tag, digest } = m.groups;
  if (!tag && !digest) return 'has no tag: pin a version tag (e.g. :v0.6.4.post1) so every run deploys the same image';
  if (tag === 'latest' && !digest) return ':latest moves under you: pin a version tag (e.g. :v0.6.4.post1) so runs are repeatable';
  return undefined;
}

export const imageRef = field(
  z.string().check((ctx) => {
    const why = checkImageRef(ctx.value);
    if (why) ctx.issues.push({ code: 'custom', message: why, input: ctx.value });
  }),
  'a Docker image reference with a pinned version tag or digest, e.g. vllm/vllm-openai:v0.6.4.post1 (not :latest, not untagged)',
);

export function checkGitRef(s: string): string | undefined {
  if (!/^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/.test(s)) return 'must be a tag, branch or commit of letters, digits and . _ / -, not starting with -';
  // The rules of git check-ref-format that the pattern above does not already cover.
  if (s.includes('..') || s.includes('//') || s.endsWith('/') || s.endsWith('.') || s.endsWith('.lock') || s.includes('/.')) {
    return 'is not a valid git ref name (git check-ref-format)';
  }
  return undefined;
}

export const gitRef = field(
  z.string().check((ctx) => {
    const why = checkGitRef(ctx.value);
    if (why) ctx.issues.push({ code: 'custom', message: why, input: ctx.value });
  }),
  'a git tag, branch or commit (letters, digits, . _ / -), e.g. v0.6.4; quote it if YAML reads it as a number',
);

const URL_HOST = `(?:${LABEL}(?:\\.${LABEL})*|\\[[0-9A-Fa-f:.]+\\])`;
const URL_PATH = "(?:/[A-Za-z0-9._~%/+-]*)?";
const HTTP_URL_RE = new RegExp(`^https?://${URL_HOST}(?::\\d{1,5})?${URL_PATH}$`);
const HTTPS_URL_RE = new RegExp(`^https://${URL_HOST}(?::\\d{1,5})?${URL_PATH}$`);

function urlProblem(s: string, re: RegExp, scheme: string): string | undefined {
  if (/^[a-z]+:\/\/[^/]*@/i.test(s)) return 'must not carry credentials: secrets go in { env } or { file } references';
  if (!s.startsWith(`${scheme}://`) && !(scheme === 'http' && s.startsWith('https://'))) {
    return scheme === 'https' ? 'must use https:// (plain http can be tampered with on the way)' : 'must start with http:// or https://';
  }
  if (!re.test(s)) return 'must be a plain URL: host, optional port and path (no query, fragment, spaces or quotes)';
  const portText = /:\/\/[^/]*:(\d+)/.exec(s)?.[1];
  if (portText && (Number(portText) < 1 || Number(portText) > 65535)) return 'has a port outside 1..65535';
  return undefined;
}

export const httpUrl = field(
  z.string().check((ctx) => {
    const why = urlProblem(ctx.value, HTTP_URL_RE, 'http');
    if (why) ctx.issues.push({ code: 'custom', message: why, input: ctx.value });
  }),
  'an http(s) URL such as http://10.0.50.117:8000 (host, optional port and path; no credentials, query or spaces)',
);
export const httpsUrl = field(
  z.string().check((ctx) => {
    const why = urlProblem(ctx.value, HTTPS_URL_RE, 'https');
    if (why) ctx.issues.push({ code: 'custom', message: why, input: ctx.value });
  }),
  'an https:// URL such as https://github.com/vllm-project/vllm.git (no credentials, query or spaces)',
);

// ---------------------------------------------------------------- keys and identities

const KEY_TYPES = [
  'ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com', 'sk-ecdsa-sha2-nistp256@openssh.com',
];

export function checkPublicKey(s: string): string | undefined {
  const m = /^(\S+) ([A-Za-z0-9+/]+={0,3})(?: ([A-Za-z0-9@._+:=,-]+(?: [A-Za-z0-9@._+:=,-]+)*))?$/.exec(s);
  if (!m) return 'must be one OpenSSH public key line: TYPE BASE64 [comment], comment of letters, digits and @ . _ + : = , -';
  const [, type, blob] = m;
  if (!KEY_TYPES.includes(type)) return `has key type ${JSON.stringify(type)}; use one of ${KEY_TYPES.join(', ')}`;
  // The blob starts with its own type name; a mismatch means a damaged or spliced key.
  const raw = Buffer.from(blob, 'base64');
  const len = raw.length >= 4 ? raw.readUInt32BE(0) : -1;
  if (len < 0 || raw.subarray(4, 4 + len).toString('latin1') !== type) return 'key data does not match its type (damaged or truncated key)';
  return undefined;
}

export const sshPublicKey = field(
  z.string().check((ctx) => {
    const why = checkPublicKey(ctx.value);
    if (why) ctx.issues.push({ code: 'custom', message: why, input: ctx.value });
  }),
  'one OpenSSH public key line, e.g. "ssh-ed25519 AAAAC3Nza… claude@pve-vllm" (the content of a .pub file)',
);
export const hostKeyFingerprint = field(
  z
    .string()
    .regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/)
    // ssh-keygen prints it without base64 padding; a tool that keeps the '=' means the same key.
    .transform((s) => s.replace(/=$/, '')),
  'an SSH host key fingerprint SHA256:<43 base64 characters>, as `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints it',
);
export const tlsFingerprint = field(
  z
    .string()
    // The whole `openssl x509 -fingerprint -sha256` output line may be pasted: its prefix is dropped.
    .regex(/^(?:sha256 fingerprint=)?[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){31}$/i, { message: 'must be 32 colon-separated hex bytes (SHA-256)' })
    .transform((s) => s.replace(/^sha256 fingerprint=/i, '').toUpperCase()),
  'the SHA-256 fingerprint of the PVE certificate as 32 colon-separated hex bytes (AB:CD:…), as `pvenode cert info` prints it',
);
export const tokenId = patterned(
  /^[A-Za-z0-9._-]+@[A-Za-z][A-Za-z0-9._-]*![A-Za-z][A-Za-z0-9._-]*$/,
  'a PVE API token id USER@REALM!TOKENID, e.g. root@pam!pve-vllm',
);
export const envName = patterned(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'an environment variable name (letters, digits, _; not starting with a digit)');

// ---------------------------------------------------------------- durations

const DURATION_RE = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;
export const MAX_DURATION_MS = 365 * 24 * 3600 * 1000;

/** `24h`, `90m`, `1h30m`, `2d` → milliseconds; undefined when it is not such a duration. */
export function parseDuration(s: string): number | undefined {
  const m = DURATION_RE.exec(s);
  if (!m || s === '') return undefined;
  const [d, h, min, sec] = m.slice(1).map((x) => Number(x ?? 0));
  return (((d * 24 + h) * 60 + min) * 60 + sec) * 1000;
}

export const duration = field(
  z.string().check((ctx) => {
    const ms = parseDuration(ctx.value);
    if (ms === undefined || ms <= 0 || ms > MAX_DURATION_MS) {
      ctx.issues.push({ code: 'custom', message: 'must be a duration such as 24h, 90m or 1h30m, at most 365d', input: ctx.value });
    }
  }),
  'a duration such as 30m, 24h, 1h30m or 7d (between 1s and 365d)',
);
