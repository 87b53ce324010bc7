/**
 * The human decisions of the design (OpenWebUI's fate, the frontend) and the rule that some pairs contradict.
 * Pure and import-free so the workflow's update validator can apply the very same rule as the config loader.
 */

export const OPENWEBUI_CHOICES = ['repurpose', 'keep', 'scrap'] as const;
export const FRONTEND_CHOICES = ['openwebui', 'comfyui', 'both'] as const;

export type OpenWebuiChoice = (typeof OPENWEBUI_CHOICES)[number];
export type FrontendChoice = (typeof FRONTEND_CHOICES)[number];

/**
 * Why a choice is not one of its decision's options, in the CLI's words, or undefined when it is one. Checked
 * before anything connects or starts; the rules that depend on the host (a GPU to repurpose) stay the workflow's.
 */
export function choiceProblem(decision: 'openwebui' | 'frontend', choice: string): string | undefined {
  const allowed: readonly string[] = decision === 'openwebui' ? OPENWEBUI_CHOICES : FRONTEND_CHOICES;
  return allowed.includes(choice) ? undefined : `${decision}: got ${JSON.stringify(choice)}; allowed: ${allowed.join(', ')}`;
}

/** Whether the frontend choice still has OpenWebUI serving users after the run. */
export function frontendUsesOpenWebui(frontend: FrontendChoice): boolean {
  return frontend === 'openwebui' || frontend === 'both';
}

export function frontendUsesComfyui(frontend: FrontendChoice): boolean {
  return frontend === 'comfyui' || frontend === 'both';
}

/**
 * Why an OpenWebUI decision and a frontend decision cannot both hold, or undefined when they can.
 * The design pairs "keep" with "connect as frontend"; repurpose hands the container to vLLM and scrap destroys
 * it, so after either there is no OpenWebUI left to be the frontend.
 */
export function decisionConflict(openwebui: OpenWebuiChoice, frontend: FrontendChoice, openwebuiId?: number): string | undefined {
  if (!frontendUsesOpenWebui(frontend)) return undefined;
  const ct = openwebuiId === undefined ? 'the OpenWebUI container' : `OpenWebUI CT ${openwebuiId}`;
  if (openwebui === 'scrap') {
    return `openwebui: scrap destroys ${ct}, so it cannot also be the frontend (frontend: ${frontend}); choose keep, or frontend: comfyui`;
  }
  if (openwebui === 'repurpose') {
    return `openwebui: repurpose turns ${ct} into the vLLM container, so OpenWebUI cannot also be the frontend (frontend: ${frontend}); choose keep, or frontend: comfyui`;
  }
  return undefined;
}
