// The adapters in one import for the composition root (worker.ts). Activities may import the files directly.
export * from './errors';
export { quote, quoteArg } from './quote';
export { SshPool, sshFingerprint } from './ssh';
export type { ExecOptions, ExecResult, ScriptOptions, SshPoolOptions, SshSession, SshTarget } from './ssh';
export { createPveClient, normalizeFingerprint, parseUpid } from './pve';
export type { PveAuth, PveClient, PveClientOptions, PveParams, PveTarget, TaskResult, TaskStatus, WaitTaskOptions } from './pve';
