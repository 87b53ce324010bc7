import { pendingDecisions, recommendFrontend, whyNot } from '../../src/workflows/decisions';
import type { OpenwebuiAssessment } from '../../src/activities/contract';

const assessment: OpenwebuiAssessment = {
  vmid: 116, exists: true, status: 'running', cores: 8, memoryMiB: 16384, gpuPassthrough: false, reachable: true,
  connectedToVllm: false, recommendation: 'keep', reasons: [],
};

describe('decision rules (shared by the update validator and the signal handler)', () => {
  it('refuses unknown choices and malformed payloads, naming what is allowed', () => {
    expect(whyNot('openwebui', { choice: 'burn' }, { assessment })).toMatch(/unknown choice "burn".*repurpose, keep, scrap/);
    expect(whyNot('frontend', { choice: 'slack' }, { assessment })).toMatch(/allowed: openwebui, comfyui, both/);
    expect(whyNot('openwebui', 'keep', { assessment })).toMatch(/payload must be/);
    expect(whyNot('openwebui', { choice: 'keep', by: 7 }, { assessment })).toMatch(/"by" must be a string/);
  });

  it('refuses repurpose when the OpenWebUI CT has no GPU passthrough, or no address vLLM could answer at', () => {
    expect(whyNot('openwebui', { choice: 'repurpose' }, { assessment })).toMatch(/no GPU passthrough/);
    expect(whyNot('openwebui', { choice: 'repurpose' }, { assessment: { ...assessment, gpuPassthrough: true } })).toBeUndefined();
    expect(whyNot('openwebui', { choice: 'repurpose' }, { assessment: { ...assessment, gpuPassthrough: true }, repurposeAddress: false })).toMatch(/its address is unknown.*guests\.openwebui\.url/);
  });

  it('refuses OpenWebUI as the frontend when the config has no admin API key for it, and recommends ComfyUI', () => {
    for (const choice of ['openwebui', 'both']) {
      expect(whyNot('frontend', { choice }, { assessment, openwebuiApiKey: false })).toMatch(/guests\.openwebui\.apiKey is not in the config/);
      expect(whyNot('frontend', { choice }, { assessment, openwebuiApiKey: true })).toBeUndefined();
    }
    const asked = pendingDecisions({ assessment, openwebui: 'keep', openwebuiApiKey: false }, 'wf').find((d) => d.decision === 'frontend');
    expect(asked).toMatchObject({ options: ['comfyui'], recommendation: 'comfyui' });
  });

  it('recommends ComfyUI as the frontend while OpenWebUI does not answer', () => {
    expect(recommendFrontend({ assessment: { ...assessment, reachable: false }, openwebui: 'keep' })).toBe('comfyui');
    expect(recommendFrontend({ assessment, openwebui: 'keep' })).toBe('openwebui');
  });

  it('refuses contradictions between the two decisions, in either order', () => {
    expect(whyNot('frontend', { choice: 'openwebui' }, { assessment, openwebui: 'scrap' })).toMatch(/scrapped/);
    expect(whyNot('frontend', { choice: 'both' }, { assessment, openwebui: 'scrap' })).toMatch(/scrapped/);
    expect(whyNot('openwebui', { choice: 'scrap' }, { assessment, frontend: 'openwebui' })).toMatch(/frontend decision/);
    expect(whyNot('frontend', { choice: 'comfyui' }, { assessment, openwebui: 'scrap' })).toBeUndefined();
  });

  it('refuses answers before the question and a second answer', () => {
    expect(whyNot('openwebui', { choice: 'keep' }, {})).toMatch(/not asked yet/);
    expect(whyNot('openwebui', { choice: 'keep' }, { assessment, openwebui: 'keep' })).toMatch(/already decided/);
  });

  it('lists both pending decisions with only the options that can work', () => {
    const pending = pendingDecisions({ assessment }, 'wf-1');
    expect(pending.map((p) => p.decision)).toEqual(['openwebui', 'frontend']);
    expect(pending[0]?.options).toEqual(['keep', 'scrap']);
    expect(pending[0]?.how).toContain('pve-vllm decide wf-1 openwebui');
    expect(pendingDecisions({ assessment, openwebui: 'scrap' }, 'wf-1')[0]?.options).toEqual(['comfyui']);
  });
});
