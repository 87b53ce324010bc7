/**
 * The deploy config (docs/contracts.md, "Deploy config"). Objects are strict: an unknown key is an error,
 * because a misspelt key silently ignored is a setting the user believes is applied and is not.
 * Cross-field rules (distinct ids, subnet, contradictory decisions) live in cross.ts.
 */
import { z } from 'zod';
import { lookupModel } from '../sizing/catalog';
import type { ModelSpec } from '../sizing/types';
import { FRONTEND_CHOICES, OPENWEBUI_CHOICES } from './decisions';
import {
  absolutePath, bridge, computeCapability, cores, cpuOffloadGb, diskGiB, duration, field, gitRef,
  gpuMemoryUtilization, gpuModelName, hostKeyFingerprint, hostOrIp, hostname, httpUrl, httpsUrl, imageRef,
  linuxUser, localPath, maxModelLen, memoryMiB, modelId, nodeName, parseDuration, pciAddress, port,
  sshPublicKey, storageId, templateVolid, tlsFingerprint, tokenId, vmid, vramMiB, HF_REPO_RE,
} from './fields';
import { secretRef } from './secrets';
import { ipv4Cidr, ipv4 } from './network';

export const DEFAULT_IMAGE = 'vllm/vllm-openai:v0.6.4.post1';
export const DEFAULT_REPO = { url: 'https://github.com/vllm-project/vllm.git', ref: 'v0.6.4', path: '/opt/vllm' } as const;
export const DEFAULT_TEMPLATE = 'local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst';
export const DEFAULT_DECISION_TIMEOUT = '24h';

const tls = field(
  z.union([
    z.strictObject({ fingerprint: tlsFingerprint }),
    z.strictObject({ caFile: localPath }),
  ]),
  '{ fingerprint: "AB:CD:…" } (SHA-256 of the PVE certificate) or { caFile: PATH } (a CA that signed it); exactly one',
);

const proxmox = z.strictObject({
  host: hostOrIp,
  node: nodeName,
  api: z.strictObject({
    port: port.default(8006),
    tokenId,
    tokenSecret: secretRef,
    tls,
  }),
  root: z.strictObject({ password: secretRef }).optional(),
  ssh: z.strictObject({
    port: port.default(22),
    user: linuxUser.default('root'),
    privateKey: secretRef,
    hostKey: hostKeyFingerprint,
  }),
});

const gpu = z.strictObject({
  pciAddress,
  model: gpuModelName.optional(),
  vramMiB: vramMiB.optional(),
  computeCapability: computeCapability.optional(),
});

const reduceTo = z.strictObject({ cores, memoryMiB });

const frontendGuest = z.strictObject({
  id: vmid,
  url: httpUrl.optional(),
  /** CPU/RAM the frontend keeps once vLLM does the heavy lifting. */
  reduceTo: reduceTo.optional(),
});

const network = z.strictObject({
  bridge: bridge.default('vmbr0'),
  ip: ipv4Cidr.default('dhcp'),
  gateway: ipv4.optional(),
});

const vllmGuest = z.strictObject({
  id: vmid,
  hostname: hostname.default('vllm'),
  cores: cores.default(8),
  memoryMiB: memoryMiB.default(32768),
  diskGiB: diskGiB.default(64),
  storage: storageId.default('local-lvm'),
  template: templateVolid.default(DEFAULT_TEMPLATE),
  network: network.default({ bridge: 'vmbr0', ip: 'dhcp' }),
  /** How the worker and the frontends reach vLLM; derived from a static ip when absent. */
  endpoint: httpUrl.optional(),
});

const openwebuiGuest = frontendGuest.extend({
  /**
   * An OpenWebUI admin API key (Settings > Account > API keys). OpenWebUI keeps its OpenAI connections in its
   * database once initialised, so connecting it to vLLM goes through its admin API, not its env file.
   */
  apiKey: secretRef.optional(),
  /** How the worker and the frontends reach vLLM once this CT is repurposed for it; from url's host and vllm.port when absent. */
  vllmEndpoint: httpUrl.optional(),
});

const guests = z.strictObject({
  vm: z.strictObject({ id: vmid }),
  openwebui: openwebuiGuest.optional(),
  comfyui: frontendGuest.optional(),
  vllm: vllmGuest,
});

const positiveInt = (allowed: string) => field(z.number().int().positive(), allowed);

/** Mirrors ModelSpec of src/sizing/types.ts (checked at compile time below); describes an unlisted model. */
export const modelSpecSchema = z.strictObject({
  id: field(z.string().regex(HF_REPO_RE), 'the Hugging Face repo id OWNER/NAME; must equal model.id').optional(),
  aliases: z.array(field(z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/), 'lower-case alias of letters, digits, . _ -')).optional(),
  layers: positiveInt('num_hidden_layers of config.json, a positive integer'),
  hiddenSize: positiveInt('hidden_size of config.json, a positive integer'),
  intermediateSize: positiveInt('intermediate_size of config.json (one expert for MoE), a positive integer'),
  attentionHeads: positiveInt('num_attention_heads of config.json, a positive integer'),
  kvHeads: positiveInt('num_key_value_heads of config.json, a positive integer'),
  headDim: positiveInt('head dimension (hidden_size / num_attention_heads unless config.json says head_dim)'),
  vocabSize: positiveInt('vocab_size of config.json, a positive integer'),
  tieWordEmbeddings: field(z.boolean(), 'tie_word_embeddings of config.json: true or false').default(false),
  paramsTotal: positiveInt('total parameter count as a plain number (7241732096, not 7.2B)'),
  paramsActive: positiveInt('parameters used per token (mixtures of experts), a plain number').optional(),
  experts: z.strictObject({ total: positiveInt('number of experts'), activePerToken: positiveInt('experts per token') }).optional(),
  nativeContext: positiveInt('max_position_embeddings of config.json, a positive integer'),
  defaultDtype: field(z.enum(['float16', 'bfloat16']), 'float16 or bfloat16 (torch_dtype of config.json)'),
  quantization: field(z.enum(['fp16', 'bf16', 'awq', 'gptq', 'fp8']), 'one of fp16, bf16, awq, gptq, fp8').optional(),
  weightBytes: positiveInt('published checkpoint size in bytes').optional(),
});

const model = z.strictObject({
  id: modelId,
  maxModelLen: maxModelLen.optional(),
  gpuMemoryUtilization: gpuMemoryUtilization.default(0.9),
  cpuOffloadGb: cpuOffloadGb.default(0),
  /** `--quantization fp8`: a 16-bit checkpoint quantized to FP8 as it loads (a quantized checkpoint is what it is). */
  quantization: field(z.enum(['fp8']), 'fp8 (online FP8 of a 16-bit checkpoint), or leave out to load the checkpoint as it is').optional(),
  /** `--kv-cache-dtype`: fp8 halves the KV cache per token. */
  kvCacheDtype: field(z.enum(['auto', 'fp8']), 'auto (the model\'s dtype) or fp8 (half the KV cache per token)').default('auto'),
  /** Lets the run lower max-model-len to what fits instead of failing. */
  allowContextReduction: field(z.boolean(), 'true or false').default(true),
  spec: modelSpecSchema.optional(),
});

const vllm = z.strictObject({
  image: imageRef.default(DEFAULT_IMAGE),
  port: port.default(8000),
  apiKey: secretRef,
  hfToken: secretRef.optional(),
});

const admin = z.strictObject({
  user: linuxUser.refine((u) => u !== 'root', { message: 'the admin is a new, dedicated user; root already exists' }),
  publicKey: sshPublicKey,
  privateKey: secretRef,
});

const repo = z.strictObject({
  url: httpsUrl.default(DEFAULT_REPO.url),
  ref: gitRef.default(DEFAULT_REPO.ref),
  path: absolutePath.default(DEFAULT_REPO.path),
});

const decisions = z.strictObject({
  openwebui: field(z.enum(OPENWEBUI_CHOICES), 'repurpose, keep or scrap (or leave out to be asked)').optional(),
  frontend: field(z.enum(FRONTEND_CHOICES), 'openwebui, comfyui or both (or leave out to be asked)').optional(),
  /** How long the run waits for a decision nobody pre-answered. */
  timeout: duration.default(DEFAULT_DECISION_TIMEOUT),
});

const backup = z.strictObject({
  /** vzdump of the OpenWebUI CT before scrapping it: scrap is irreversible. */
  beforeScrap: field(z.boolean(), 'true or false').default(true),
  storage: storageId.default('local'),
});

export const deployConfigSchema = z
  .strictObject({
    proxmox,
    gpu,
    guests,
    model,
    vllm,
    admin,
    repo: repo.default({ ...DEFAULT_REPO }),
    decisions: decisions.default({ timeout: DEFAULT_DECISION_TIMEOUT }),
    backup: backup.default({ beforeScrap: true, storage: 'local' }),
  })
  .transform((c) => {
    const { network: net } = c.guests.vllm;
    const endpoint = c.guests.vllm.endpoint ??
      (net.ip === 'dhcp' ? undefined : `http://${net.ip.split('/')[0]}:${c.vllm.port}`);
    const spec = c.model.spec ? { ...c.model.spec, id: c.model.spec.id ?? c.model.id } : undefined;
    // An alias becomes the repo id vLLM downloads, so everything downstream sees one canonical name.
    const id = spec ? c.model.id : lookupModel(c.model.id)?.id ?? c.model.id;
    return {
      ...c,
      guests: { ...c.guests, vllm: { ...c.guests.vllm, endpoint } },
      model: { ...c.model, id, spec },
      decisions: { ...c.decisions, timeoutMs: parseDuration(c.decisions.timeout) ?? 24 * 3600 * 1000 },
    };
  });

/** The validated config, defaults filled in. Secret fields are still references. */
export type DeployConfig = z.output<typeof deployConfigSchema>;
/** What a user may write (defaults optional). */
export type DeployConfigInput = z.input<typeof deployConfigSchema>;
export type ModelSpecConfig = NonNullable<DeployConfig['model']['spec']>;

// Compile-time guard: a config spec must be usable wherever the sizing engine takes a ModelSpec.
const specFitsSizing = (s: ModelSpecConfig & { id: string }): ModelSpec => s;
void specFitsSizing;
