// Updates, signals, queries and the shared types of the deploy workflow. Deterministic: no Node builtins.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { DeployConfig } from '../config/schema';

export const OPENWEBUI_CHOICES = ['repurpose', 'keep', 'scrap'] as const;
export const FRONTEND_CHOICES = ['openwebui', 'comfyui', 'both'] as const;
export type OpenwebuiChoice = (typeof OPENWEBUI_CHOICES)[number];
export type FrontendChoice = (typeof FRONTEND_CHOICES)[number];
export type DecisionName = 'openwebui' | 'frontend';

/** The same payload is accepted as an Update (CLI) and as a Signal (temporal CLI, Temporal UI). */
export interface DecisionPayload {
  choice: string;
  /** who decided, for checkpoint 2's record */
  by?: string;
}

export interface DecisionRecord {
  decision: DecisionName;
  choice: string;
  by: string;
  at: string;
  via: 'update' | 'signal' | 'config' | 'recommendation';
}

export interface RejectedDecision {
  decision: DecisionName;
  payload: unknown;
  reason: string;
  at: string;
  via: 'update' | 'signal';
}

export interface PendingDecision {
  decision: DecisionName;
  options: readonly string[];
  recommendation?: string;
  reasons: string[];
  /** how to answer, for a human reading the query in the UI */
  how: string;
}

export interface Checkpoint {
  n: number;
  name: string;
  passed: boolean;
  evidence: string;
  at?: string;
}

export interface StepRecord {
  step: number;
  name: string;
  status: 'running' | 'done' | 'failed' | 'skipped';
  startedAt: string;
  endedAt?: string;
  detail?: string;
}

export interface CompensationRecord {
  name: string;
  outcome: 'pending' | 'done' | 'failed' | 'skipped';
  detail?: string;
}

export type DeployStatus = 'running' | 'completed' | 'failed' | 'compensated' | 'cancelled';

export interface DeployProgress {
  status: DeployStatus;
  currentStep: string;
  steps: StepRecord[];
  checkpoints: Checkpoint[];
  pending: PendingDecision[];
  decisions: DecisionRecord[];
  rejected: RejectedDecision[];
  compensations: CompensationRecord[];
  /** live detail of the running step, e.g. the image pull's progress */
  activity?: string;
  endpoint?: string;
  mutations: number;
  /** what each change was, in order (the summaries of the activities that reported changed) */
  changes: string[];
  error?: string;
  sizing?: string[];
}

export interface DeployInput {
  /** validated config: secrets are references, never values */
  config: DeployConfig;
  /** who started the run (for the decision record) */
  requestedBy?: string;
}

export const decideOpenwebuiUpdate = defineUpdate<DecisionRecord, [DecisionPayload]>('decideOpenwebui');
export const decideFrontendUpdate = defineUpdate<DecisionRecord, [DecisionPayload]>('decideFrontend');
export const decideOpenwebuiSignal = defineSignal<[DecisionPayload]>('decideOpenwebui');
export const decideFrontendSignal = defineSignal<[DecisionPayload]>('decideFrontend');
export const progressQuery = defineQuery<DeployProgress>('progress');
