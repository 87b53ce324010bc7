// The two human decisions: what they may be, and why a choice is refused. Pure and synchronous, because
// Update validators must be synchronous and the signal path applies the very same checks.
import type { OpenwebuiAssessment } from '../activities/contract';
import {
  DecisionName,
  DecisionPayload,
  FRONTEND_CHOICES,
  OPENWEBUI_CHOICES,
  PendingDecision,
} from './messages';

export interface DecisionContext {
  assessment?: OpenwebuiAssessment;
  openwebui?: string;
  frontend?: string;
  /** Whether the config holds guests.openwebui.apiKey, without which OpenWebUI cannot be connected (undefined: not checked). */
  openwebuiApiKey?: boolean;
  /** Whether the config says where vLLM would answer in a repurposed OpenWebUI CT (undefined: not checked). */
  repurposeAddress?: boolean;
}

function isPayload(p: unknown): p is DecisionPayload {
  return typeof p === 'object' && p !== null && typeof (p as { choice?: unknown }).choice === 'string';
}

/** Returns why the choice cannot be accepted, or undefined when it can. */
export function whyNot(decision: DecisionName, payload: unknown, ctx: DecisionContext): string | undefined {
  if (!isPayload(payload)) {
    return `payload must be {"choice": "<option>", "by": "<name>"}; got ${JSON.stringify(payload)}`;
  }
  const choice = payload.choice;
  if (payload.by !== undefined && typeof payload.by !== 'string') return '"by" must be a string';
  if (decision === 'openwebui') {
    if (!(OPENWEBUI_CHOICES as readonly string[]).includes(choice)) {
      return `unknown choice "${choice}" for openwebui; allowed: ${OPENWEBUI_CHOICES.join(', ')}`;
    }
    if (ctx.openwebui !== undefined) return `openwebui was already decided: ${ctx.openwebui}`;
    const a = ctx.assessment;
    if (!a) return 'openwebui is not asked yet: the assessment (step 4) has not run';
    if (choice === 'repurpose' && !a.gpuPassthrough) {
      return `cannot repurpose CT ${a.vmid}: it has no GPU passthrough, so it cannot serve vLLM (choose keep or scrap)`;
    }
    if (choice === 'repurpose' && ctx.repurposeAddress === false) {
      return `cannot repurpose CT ${a.vmid}: its address is unknown, so vLLM could not be reached there; set guests.openwebui.url or guests.openwebui.vllmEndpoint (or choose keep or scrap)`;
    }
    if (choice !== 'scrap' && !a.exists) return `CT ${a.vmid} does not exist; only scrap (nothing to do) applies`;
    if ((choice === 'scrap' || choice === 'repurpose') && (ctx.frontend === 'openwebui' || ctx.frontend === 'both')) {
      return `cannot ${choice} OpenWebUI: the frontend decision (${ctx.frontend}) uses it`;
    }
    return undefined;
  }
  if (!(FRONTEND_CHOICES as readonly string[]).includes(choice)) {
    return `unknown choice "${choice}" for frontend; allowed: ${FRONTEND_CHOICES.join(', ')}`;
  }
  if (ctx.frontend !== undefined) return `frontend was already decided: ${ctx.frontend}`;
  if (!ctx.assessment) return 'frontend is not asked yet: the assessment (step 4) has not run';
  const usesOpenwebui = choice === 'openwebui' || choice === 'both';
  if (usesOpenwebui && (ctx.openwebui === 'scrap' || ctx.openwebui === 'repurpose')) {
    return `cannot use OpenWebUI as frontend: it is being ${ctx.openwebui === 'scrap' ? 'scrapped' : 'repurposed for vLLM'}`;
  }
  if (usesOpenwebui && !ctx.assessment.exists) return `OpenWebUI CT ${ctx.assessment.vmid} does not exist`;
  if (usesOpenwebui && ctx.openwebuiApiKey === false) {
    return 'cannot use OpenWebUI as frontend: guests.openwebui.apiKey is not in the config (OpenWebUI keeps its connections in its database, changed through its admin API with that key); choose comfyui, or add the key and run again';
  }
  return undefined;
}

export function pendingDecisions(ctx: DecisionContext, workflowId: string): PendingDecision[] {
  const out: PendingDecision[] = [];
  const a = ctx.assessment;
  if (!a) return out;
  if (ctx.openwebui === undefined) {
    out.push({
      decision: 'openwebui',
      options: OPENWEBUI_CHOICES.filter((c) => whyNot('openwebui', { choice: c }, ctx) === undefined),
      recommendation: a.recommendation,
      reasons: a.reasons,
      how: `pve-vllm decide ${workflowId} openwebui <choice>  (or signal decideOpenwebui {"choice":"<choice>"})`,
    });
  }
  if (ctx.frontend === undefined) {
    const options = FRONTEND_CHOICES.filter((c) => whyNot('frontend', { choice: c }, ctx) === undefined);
    out.push({
      decision: 'frontend',
      options,
      recommendation: recommendFrontend(ctx),
      reasons: ['ComfyUI loses its GPU and runs CPU-only; OpenWebUI keeps its chat UI and connects to vLLM'],
      how: `pve-vllm decide ${workflowId} frontend <choice>  (or signal decideFrontend {"choice":"<choice>"})`,
    });
  }
  return out;
}

export function recommendFrontend(ctx: DecisionContext): string {
  if (ctx.openwebui === 'scrap' || ctx.openwebui === 'repurpose' || ctx.assessment?.exists === false || ctx.openwebuiApiKey === false) return 'comfyui';
  if (ctx.assessment?.reachable === false) return 'comfyui'; // an OpenWebUI that does not answer cannot be the frontend yet
  return 'openwebui';
}
