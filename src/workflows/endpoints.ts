// Where vLLM answers, for the steps after the OpenWebUI decision. Pure: the workflow and the tests share it.
import type { DeployConfig } from '../config/schema';

/** Where vLLM answers once OpenWebUI's CT is repurposed for it: its own setting, or its UI's host at vLLM's port. */
export function repurposedEndpoint(cfg: DeployConfig): string | undefined {
  const g = cfg.guests.openwebui;
  if (g?.vllmEndpoint) return g.vllmEndpoint;
  const host = /^https?:\/\/(\[[^\]]+\]|[^/:?#]+)/.exec(g?.url ?? '')?.[1];
  return host ? `http://${host}:${cfg.vllm.port}` : undefined;
}
