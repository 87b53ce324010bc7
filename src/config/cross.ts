/**
 * Rules that span several fields. They run on the raw input next to the zod pass (not after it) so the user
 * sees every problem of the file at once; each rule looks only at values that are individually valid.
 */
import { decisionConflict, frontendUsesComfyui, frontendUsesOpenWebui, type FrontendChoice, type OpenWebuiChoice } from './decisions';
import { FRONTEND_CHOICES, OPENWEBUI_CHOICES } from './decisions';
import { HF_REPO_RE, IPV4_RE } from './fields';
import { inSubnet, ipToInt, parseCidr } from './network';
import { modelSpecSchema } from './schema';
import { catalogIds, lookupModel, validateModelSpec } from '../sizing/catalog';

export interface CrossIssue { path: (string | number)[]; message: string; allowed: string }

export function valueAt(root: unknown, path: readonly (string | number)[]): unknown {
  let cur: unknown = root;
  for (const key of path) {
    // Own keys only: a YAML key such as `constructor` must not reach Object.prototype.
    if (typeof cur !== 'object' || cur === null || !Object.hasOwn(cur, key)) return undefined;
    cur = (cur as Record<string | number, unknown>)[key];
  }
  return cur;
}

const isVmid = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 100 && (v as number) <= 999999999;
const isOneOf = <T extends string>(choices: readonly T[], v: unknown): v is T => typeof v === 'string' && (choices as readonly string[]).includes(v);

const GUEST_ROLES = ['vm', 'openwebui', 'comfyui', 'vllm'] as const;

function distinctGuestIds(raw: unknown, out: CrossIssue[]): void {
  const seen = new Map<number, string>();
  for (const role of GUEST_ROLES) {
    const id = valueAt(raw, ['guests', role, 'id']);
    if (!isVmid(id)) continue;
    const first = seen.get(id);
    if (first) {
      const why = role === 'vllm'
        ? `the vLLM CT must be its own guest, but ${id} is already guests.${first}.id (the design creates CT 117 beside them)`
        : `${id} is already guests.${first}.id; each guest is a different container or VM`;
      out.push({ path: ['guests', role, 'id'], message: why, allowed: `a guest id not used by guests.${first} (${id})` });
    } else {
      seen.set(id, role);
    }
  }
}

function gatewayInSubnet(raw: unknown, out: CrossIssue[]): void {
  const ip = valueAt(raw, ['guests', 'vllm', 'network', 'ip']) ?? 'dhcp';
  const gateway = valueAt(raw, ['guests', 'vllm', 'network', 'gateway']);
  if (typeof gateway !== 'string' || !IPV4_RE.test(gateway) || typeof ip !== 'string') return;
  const path = ['guests', 'vllm', 'network', 'gateway'];
  if (ip === 'dhcp') {
    out.push({ path, message: 'a gateway is set but ip is dhcp: DHCP supplies the gateway', allowed: 'no gateway with ip: dhcp (or give a static ip)' });
    return;
  }
  const subnet = parseCidr(ip);
  if (!subnet) return;
  const range = `${ip.split('/')[0]}/${subnet.prefix}`;
  if (!inSubnet(gateway, subnet)) {
    out.push({ path, message: `the gateway is outside the CT's subnet ${range}, so the CT could never reach it`, allowed: `an address inside ${range}` });
  } else if (ipToInt(gateway) === subnet.address) {
    out.push({ path, message: 'the gateway is the CT\'s own address', allowed: `another address inside ${range} (the router)` });
  } else if (subnet.prefix <= 30 && (ipToInt(gateway) === subnet.network || ipToInt(gateway) === subnet.broadcast)) {
    out.push({ path, message: 'the gateway is the network or broadcast address of the subnet', allowed: `a host address inside ${range}` });
  }
}

function decisionsHold(raw: unknown, out: CrossIssue[]): void {
  const openwebui = valueAt(raw, ['decisions', 'openwebui']);
  const frontend = valueAt(raw, ['decisions', 'frontend']);
  const hasOpenWebui = valueAt(raw, ['guests', 'openwebui']) !== undefined;
  const hasComfyui = valueAt(raw, ['guests', 'comfyui']) !== undefined;
  const owId = valueAt(raw, ['guests', 'openwebui', 'id']);

  if (openwebui === 'repurpose' && hasOpenWebui && valueAt(raw, ['guests', 'openwebui', 'url']) === undefined && valueAt(raw, ['guests', 'openwebui', 'vllmEndpoint']) === undefined) {
    out.push({
      path: ['decisions', 'openwebui'],
      message: 'repurpose runs vLLM in OpenWebUI\'s CT, but neither guests.openwebui.url nor guests.openwebui.vllmEndpoint says where that CT answers',
      allowed: 'keep or scrap, or set guests.openwebui.url (or vllmEndpoint)',
    });
  }
  if (isOneOf<OpenWebuiChoice>(OPENWEBUI_CHOICES, openwebui) && !hasOpenWebui) {
    out.push({
      path: ['decisions', 'openwebui'],
      message: `decides the fate of OpenWebUI, but guests.openwebui is not configured`,
      allowed: 'leave decisions.openwebui out, or describe the CT under guests.openwebui',
    });
  }
  if (!isOneOf<FrontendChoice>(FRONTEND_CHOICES, frontend)) return;
  if (frontendUsesOpenWebui(frontend) && !hasOpenWebui) {
    out.push({
      path: ['decisions', 'frontend'],
      message: `frontend ${frontend} needs OpenWebUI, but guests.openwebui is not configured`,
      allowed: hasComfyui ? 'comfyui' : 'a frontend that is configured under guests',
    });
  }
  if (frontendUsesOpenWebui(frontend) && hasOpenWebui && valueAt(raw, ['guests', 'openwebui', 'apiKey']) === undefined) {
    out.push({
      path: ['decisions', 'frontend'],
      message: `frontend ${frontend} connects OpenWebUI to vLLM through its admin API, but guests.openwebui.apiKey is not set`,
      allowed: `${hasComfyui ? 'comfyui, or ' : ''}set guests.openwebui.apiKey to { env: NAME } or { file: PATH } (an OpenWebUI admin API key)`,
    });
  }
  if (frontendUsesComfyui(frontend) && !hasComfyui) {
    out.push({
      path: ['decisions', 'frontend'],
      message: `frontend ${frontend} needs ComfyUI, but guests.comfyui is not configured`,
      allowed: hasOpenWebui ? 'openwebui' : 'a frontend that is configured under guests',
    });
  }
  if (isOneOf<OpenWebuiChoice>(OPENWEBUI_CHOICES, openwebui)) {
    const why = decisionConflict(openwebui, frontend, isVmid(owId) ? owId : undefined);
    if (why) {
      out.push({
        path: ['decisions', 'frontend'],
        message: `contradicts decisions.openwebui: ${why}`,
        allowed: `comfyui with openwebui: ${openwebui}, or openwebui/both with openwebui: keep`,
      });
    }
  }
}

/** Catalog examples for the "allowed" text: the repo ids a homelab user is likely to want. */
function catalogExamples(): string {
  const ids = catalogIds();
  const shown = ids.filter((i) => /AWQ|GPTQ/i.test(i)).slice(0, 4);
  return `a model of the catalog (${ids.length} ids, e.g. ${(shown.length ? shown : ids.slice(0, 4)).join(', ')}), ` +
    'or any Hugging Face repo id OWNER/NAME together with model.spec describing it';
}

function modelIsKnown(raw: unknown, out: CrossIssue[]): void {
  const id = valueAt(raw, ['model', 'id']);
  if (typeof id !== 'string' || valueAt(raw, ['model', 'spec']) !== undefined) return;
  if (!(HF_REPO_RE.test(id) || /^[a-z0-9][a-z0-9._-]*$/.test(id))) return; // the field's own check reports it
  if (lookupModel(id)) return;
  out.push({
    path: ['model', 'id'],
    message: 'unknown model: it is not in the catalog, so its memory needs cannot be checked; describe it under model.spec (from its config.json)',
    allowed: catalogExamples(),
  });
}

function specMatchesModel(raw: unknown, out: CrossIssue[]): void {
  const id = valueAt(raw, ['model', 'id']);
  const spec = valueAt(raw, ['model', 'spec']);
  if (typeof spec !== 'object' || spec === null || typeof id !== 'string') return;
  const parsed = modelSpecSchema.safeParse(spec);
  if (parsed.success) {
    // The sizing engine's own plausibility rules (kv heads divide heads, params not in billions, …).
    for (const why of validateModelSpec({ ...parsed.data, id })) {
      if (why.startsWith('id ')) continue; // model.id's own checks cover it
      out.push({ path: ['model', 'spec'], message: why, allowed: 'an architecture consistent with the model\'s config.json' });
    }
  }
  if (!HF_REPO_RE.test(id)) {
    out.push({
      path: ['model', 'id'],
      message: 'model.spec describes a model vLLM downloads by its repo id, so model.id must be that id, not an alias',
      allowed: 'a Hugging Face repo id OWNER/NAME',
    });
  }
  const specId = valueAt(spec, ['id']);
  if (typeof specId === 'string' && specId !== id) {
    out.push({
      path: ['model', 'spec', 'id'],
      message: `describes ${JSON.stringify(specId)} but model.id is ${JSON.stringify(id)}`,
      allowed: `${JSON.stringify(id)} (or leave spec.id out)`,
    });
  }
  const native = valueAt(spec, ['nativeContext']);
  const maxLen = valueAt(raw, ['model', 'maxModelLen']);
  if (Number.isInteger(native) && Number.isInteger(maxLen) && (maxLen as number) > (native as number)) {
    out.push({
      path: ['model', 'maxModelLen'],
      message: `vLLM refuses a max-model-len above the model's native context (${String(native)})`,
      allowed: `an integer from 1 to ${String(native)} (model.spec.nativeContext)`,
    });
  }
}

export function crossCheck(raw: unknown): CrossIssue[] {
  const out: CrossIssue[] = [];
  distinctGuestIds(raw, out);
  gatewayInSubnet(raw, out);
  decisionsHold(raw, out);
  modelIsKnown(raw, out);
  specMatchesModel(raw, out);
  return out;
}
