// The deploy, in the design document's implementation order. Deterministic: every effect is an activity.
import {
  ActivityCancellationType,
  ActivityOptions,
  ApplicationFailure,
  condition,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
  allHandlersFinished,
} from '@temporalio/workflow';
import type { AdminUserResult, DeployActivities, VllmLaunch } from '../activities/contract';
import { pendingDecisions, whyNot, type DecisionContext } from './decisions';
import {
  Checkpoint,
  DecisionName,
  DecisionPayload,
  DecisionRecord,
  DeployInput,
  DeployProgress,
  StepRecord,
  decideFrontendSignal,
  decideFrontendUpdate,
  decideOpenwebuiSignal,
  decideOpenwebuiUpdate,
  progressQuery,
} from './messages';
import { preflightModel } from './preflight';
import { repurposedEndpoint } from './endpoints';
import { MIN_MAX_MODEL_LEN } from '../sizing/arithmetic';
import { Saga, failureText as errorText } from './saga';

type Acts = DeployActivities;
type Fn = (...args: never[]) => Promise<unknown>;

const SHORT: ActivityOptions = {
  startToCloseTimeout: '10m',
  // A killed worker is noticed within a heartbeat timeout; activities heartbeat every 2.5 s (half of it).
  heartbeatTimeout: '5s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 6 },
};
const LONG: ActivityOptions = { ...SHORT, startToCloseTimeout: '60m' };
const UNDO: ActivityOptions = { ...SHORT, retry: { ...SHORT.retry, maximumAttempts: 10 } };

const acts = proxyActivities<Acts>(SHORT);

/** Run one activity with a summary the Temporal UI shows. */
function call<K extends keyof Acts>(
  name: K,
  summary: string,
  args: Parameters<Acts[K]>,
  opts: ActivityOptions = SHORT,
): ReturnType<Acts[K]> {
  const fn = acts[name] as unknown as { executeWithOptions(o: ActivityOptions, a: unknown[]): Promise<unknown> } & Fn;
  const running = fn.executeWithOptions({ ...opts, summary: summary.slice(0, 190) }, args as unknown[]);
  summaries.set(running, summary);
  return running as ReturnType<Acts[K]>;
}

/** The summary each running activity was started with, so a change can be reported in the user's words. */
const summaries = new WeakMap<Promise<unknown>, string>();

export async function deploy(input: DeployInput): Promise<DeployProgress> {
  const cfg = input.config;
  const wfId = workflowInfo().workflowId;
  const now = () => new Date().toISOString();
  const p: DeployProgress = {
    status: 'running',
    currentStep: 'preflight',
    steps: [],
    checkpoints: CHECKPOINTS.map((name, i) => ({ n: i + 1, name, passed: false, evidence: '' })),
    pending: [],
    decisions: [],
    rejected: [],
    compensations: [],
    mutations: 0,
    changes: [],
  };
  const saga = new Saga(p.compensations);
  // Runs recorded before this rule replay (and go on) as they ran. With it, a cancel waits for the steps in
  // flight to end (each finishes its change and reports it, or stops at its next heartbeat), so their undos are
  // known before any undo runs; and the undos of the GPU's move and of a new CT are registered before those steps
  // start, so one that fails half-way or is cut short is undone too (every undo is a no-op when nothing changed).
  const undoFirst = patched('undo-before-change');
  const ctx: DecisionContext = {};
  // Like undoFirst: OpenWebUI as the frontend needs its admin API key, refused at the decision, not at step 6.
  if (patched('openwebui-key-check')) ctx.openwebuiApiKey = cfg.guests.openwebui?.apiKey !== undefined;
  // And: with repurpose, the later steps reach vLLM at OpenWebUI's CT; without its address the choice is refused.
  const repurposeRule = patched('repurpose-endpoint');
  if (repurposeRule) ctx.repurposeAddress = repurposedEndpoint(cfg) !== undefined;
  // And: step 6 takes ComfyUI's GPU away even when it is not the frontend, as the design's step 6 says.
  const comfyGpuOut = patched('comfyui-gpu-out');
  // And: the GPU's binding is made to survive a reboot by a boot unit, written beside the image pull.
  const bootUnit = patched('gpu-boot-unit');

  // ---- decisions: an Update (validated synchronously) or a Signal (checked the same way, recorded if refused)
  const refresh = () => (p.pending = pendingDecisions(ctx, wfId));
  const accept = (decision: DecisionName, payload: DecisionPayload, via: DecisionRecord['via']): DecisionRecord => {
    const record: DecisionRecord = { decision, choice: payload.choice, by: payload.by ?? 'unknown', at: now(), via };
    ctx[decision] = payload.choice;
    p.decisions.push(record);
    refresh();
    return record;
  };
  const validator = (decision: DecisionName) => (payload: DecisionPayload) => {
    const reason = whyNot(decision, payload, ctx);
    if (reason) throw new Error(reason);
  };
  const onSignal = (decision: DecisionName) => (payload: DecisionPayload) => {
    const reason = whyNot(decision, payload, ctx);
    if (reason) p.rejected.push({ decision, payload, reason, at: now(), via: 'signal' });
    else accept(decision, payload, 'signal');
  };
  setHandler(decideOpenwebuiUpdate, (pl) => accept('openwebui', pl, 'update'), { validator: validator('openwebui') });
  setHandler(decideFrontendUpdate, (pl) => accept('frontend', pl, 'update'), { validator: validator('frontend') });
  setHandler(decideOpenwebuiSignal, onSignal('openwebui'));
  setHandler(decideFrontendSignal, onSignal('frontend'));
  setHandler(progressQuery, () => p);

  // Steps can run side by side: currentStep names every one in flight.
  const showRunning = () => {
    const running = p.steps.filter((s) => s.status === 'running').map((s) => `${s.step}. ${s.name}`);
    if (running.length) p.currentStep = running.join(' + ');
  };
  const begin = (n: number, name: string) => {
    const rec: StepRecord = { step: n, name, status: 'running', startedAt: now() };
    p.steps.push(rec);
    showRunning();
    return {
      done(detail?: string) {
        Object.assign(rec, { status: 'done', endedAt: now() }, detail !== undefined ? { detail } : {});
        showRunning();
      },
      failed(err: unknown) {
        if (rec.status === 'running') Object.assign(rec, { status: 'failed', endedAt: now(), detail: errorText(err) });
      },
    };
  };
  const step = async <T>(n: number, name: string, body: () => Promise<T>): Promise<T> => {
    const s = begin(n, name);
    try {
      const out = await body();
      s.done(typeof out === 'string' ? out : undefined);
      return out;
    } catch (err) {
      s.failed(err);
      throw err;
    }
  };

  // Lanes: independent steps run side by side. When one lane fails, the others finish the activity they are in
  // (so every change they made registers its undo), start nothing new and stop waiting for answers; the join
  // then throws the first failure and the saga undoes everything.
  let halted: unknown;
  const lane = <T>(body: () => Promise<T>): Promise<T> =>
    body().catch((err: unknown) => {
      halted ??= err;
      throw err;
    });
  async function join<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
    const [ra, rb] = await Promise.allSettled([a, b]);
    if (ra.status === 'rejected' || rb.status === 'rejected') throw halted ?? (ra.status === 'rejected' ? ra.reason : (rb as PromiseRejectedResult).reason);
    return [ra.value, rb.value];
  }
  /** A forward step's activity: not started once another lane has failed. Undos use `call` directly. */
  const go: typeof call = (name, summary, args, opts) => {
    if (halted !== undefined) return Promise.reject(ApplicationFailure.nonRetryable(`not started (${summary}): another step failed`, 'Halted')) as never;
    return call(name, summary, args, undoFirst ? { ...(opts ?? SHORT), cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED } : opts);
  };

  const pass = (n: number, evidence: string) => Object.assign(p.checkpoints[n - 1] as Checkpoint, { passed: true, evidence, at: now() });
  const counted = async <T extends { changed: boolean }>(r: Promise<T>): Promise<T> => {
    const v = await r;
    if (v.changed) {
      p.mutations += 1;
      p.changes.push(summaries.get(r) ?? 'change');
    }
    return v;
  };
  const undoCounted = async (r: Promise<{ changed: boolean; detail: string }>): Promise<string> => {
    const v = await r;
    if (v.changed) {
      p.mutations += 1;
      p.changes.push(`undo: ${v.detail}`);
    }
    return v.detail;
  };
  const awaitDecision = async (decision: DecisionName): Promise<string> => {
    const timeout = cfg.decisions.timeoutMs;
    const got = await condition(() => ctx[decision] !== undefined || halted !== undefined, timeout);
    if (halted !== undefined) throw ApplicationFailure.nonRetryable(`stopped waiting for the ${decision} decision: another step failed`, 'Halted');
    if (!got) {
      throw ApplicationFailure.nonRetryable(
        `no ${decision} decision within ${cfg.decisions.timeout}: answer with \`pve-vllm decide ${wfId} ${decision} <choice>\` next time, ` +
          'or pre-answer it under decisions: in the config',
        'DecisionTimeout',
      );
    }
    return ctx[decision] as string;
  };

  const gpu = cfg.gpu.pciAddress;
  const owuiId = cfg.guests.openwebui?.id ?? 0;
  const comfyId = cfg.guests.comfyui?.id ?? 0;
  const vmId = cfg.guests.vm.id;
  // What the host was before this run. Undos are registered from it as well as from a step's result: a step
  // retried after a worker crash finds its own work already done and reports nothing changed (`created: false`,
  // `wasRunning: false`), which alone would leave CT 117 behind or VM 151 stopped on a later failure.
  let before: { vllmCtExisted: boolean; vmRunning: boolean; vmOnboot: boolean; adminUserExisted?: boolean; runningCts?: number[]; gpuDriver?: string | null } = { vllmCtExisted: true, vmRunning: false, vmOnboot: false };
  let launch = {} as VllmLaunch; // set by the preflight, before any step
  let owui = ''; // the openwebui decision, once step 4 has it
  let frontendStep: ReturnType<typeof begin> | undefined; // step 6 starts beside the pull and ends at checkpoint 5
  let frontendNote = ''; // what step 6 did to ComfyUI when it is not the frontend
  // For a teardown: the vLLM CT, whether this run made it, and each CT config as read before this run changed it.
  let vllmCt = { id: cfg.guests.vllm.id, created: false };
  const confBefore: Record<string, string> = {};
  let committed = false; // checkpoint 6 passed: the deploy stays, whatever the scrap after it does
  try {
    // 0. Preflight: will the model fit on this GPU? Decided before anything on the host changes.
    const fit = preflightModel(cfg);
    p.sizing = fit.lines;
    if (!fit.ok) throw ApplicationFailure.nonRetryable(`model ${cfg.model.id} ${fit.fit.verdict === 'unsupported' ? 'is not supported' : 'does not fit'} on this GPU:\n${fit.lines.join('\n')}`, 'ModelDoesNotFit');
    launch = fit.launch;

    // 1. Connect to Proxmox host
    await step(1, 'Connect to Proxmox host', async () => {
      const facts = await go('inspectHost', `Connect to ${cfg.proxmox.host}: PVE version, GPUs, who holds ${gpu}`, [cfg]);
      before = {
        vllmCtExisted: facts.vllmCtExists,
        vmRunning: facts.gpuHolder?.status === 'running',
        vmOnboot: facts.gpuHolder?.onboot === true,
        adminUserExisted: facts.adminUserExists,
        runningCts: facts.runningCts,
        gpuDriver: facts.gpu.driver,
      };
      const holder = facts.gpuHolder ? `held by VM ${facts.gpuHolder.vmid} (${facts.gpuHolder.status}, onboot ${facts.gpuHolder.onboot ? 1 : 0})` : 'held by no VM';
      return `PVE ${facts.pveVersion}; ${facts.gpu.name} ${gpu} on ${facts.gpu.driver ?? 'no driver'}, ${holder}; host driver ${facts.hostDriverPackageVersion ?? facts.hostDriverVersion ?? 'not installed'}`;
    });

    // Steps 2-3 need only step 1, and so does step 4's assessment: both questions go out right away and the
    // user, Claude Code and the clone are done while the human answers. Steps 5-6 follow the answers.
    const [, chosen] = await join(
      lane(async () => {
        // 2. Create new user, install Claude Code -> checkpoint 1
        await step(2, `Create user ${cfg.admin.user}, install Claude Code`, async () => {
          const removeUser = () => saga.add(`remove user ${cfg.admin.user}`, () => undoCounted(call('removeAdminUser', `Remove user ${cfg.admin.user}`, [cfg], UNDO)));
          const takeBack = (change: AdminUserResult) =>
            saga.add(`take back changes to user ${cfg.admin.user}`, () => undoCounted(call('revertAdminUser', `Take back what this run added to user ${cfg.admin.user}`, [cfg, change], UNDO)));
          // Registered before the step (runs recorded before this rule register after it): a step that fails half-way,
          // or a retry that finds its first attempt's work done, is undone too. Both undos are no-ops when nothing changed.
          const userFirst = before.adminUserExisted !== undefined && patched('admin-user-undo-first');
          /** The rules of runs recorded before: the undo registered from what the step reported. */
          const registerUserUndoAfter = (user: AdminUserResult): void => {
            if (!patched('admin-user-undo')) {
              if (user.changed || before.adminUserExisted === false) removeUser();
            } else if (user.created || before.adminUserExisted === false) {
              removeUser();
            } else if (user.changed) {
              takeBack(user); // the user was there: take back what was added to it, never the user
            }
          };
          if (userFirst) {
            if (before.adminUserExisted) takeBack({ changed: true, user: cfg.admin.user });
            else removeUser();
          }
          const user = await counted(go('ensureAdminUser', `Create sudo user ${cfg.admin.user} with SSH key on the host`, [cfg]));
          // A retry after a worker died inside ensureAdminUser finds the user that attempt made and reports no
          // change: whether the user was there at step 1 decides as well.
          if (!userFirst) registerUserUndoAfter(user);
          await counted(go('ensureClaudeCode', `Install Claude Code CLI for ${cfg.admin.user}`, [cfg]));
          const access = await go('verifyAdminAccess', `Checkpoint 1: SSH as ${cfg.admin.user} and sudo -n true`, [cfg]);
          pass(1, access.evidence);
        });
        // 3. Clone vLLM repository to host
        await step(3, `Clone vLLM repository to ${cfg.repo.path}`, async () => {
          await counted(go('ensureRepoCloned', `Clone ${cfg.repo.url} at ${cfg.repo.ref} to ${cfg.repo.path}`, [cfg]));
        });
      }),
      lane(async () => {
        // 4. Assess OpenWebUI, decide its fate -> checkpoint 2. Both decisions are asked now, so the human is needed once.
        owui = await step(4, 'Assess OpenWebUI and decide', async () => {
          ctx.assessment = await go('assessOpenwebui', `Assess OpenWebUI CT ${owuiId}: running, resources, GPU, reachable`, [cfg]);
          applyPreAnswers();
          refresh();
          const choice = await awaitDecision('openwebui');
          const rec = p.decisions.find((d) => d.decision === 'openwebui') as DecisionRecord;
          pass(2, `openwebui=${choice} decided by ${rec.by} at ${rec.at} via ${rec.via}`);
          return choice;
        });
        // 5 and 6: the frontends are reconfigured beside the image pull, then checked once vLLM serves.
        const ctId = owui === 'repurpose' ? owuiId : cfg.guests.vllm.id;
        const repurposed = repurposeRule && owui === 'repurpose' ? repurposedEndpoint(cfg) : undefined;
        // vLLM will answer at OpenWebUI's CT, not at the vLLM CT's address: every later step looks there.
        if (repurposed) cfg.guests.vllm = { ...cfg.guests.vllm, endpoint: repurposed };
        try {
          const reaches: string[] = [];
          const frontends = await step(5, `Set up vLLM container CT ${ctId}`, () => vllmContainer(ctId, owui));
          for (const f of frontends) {
            const reach = await go('verifyFrontendReachesVllm', `Checkpoint 5: ${f} reaches vLLM`, [cfg, f, launch.servedModelName]);
            if (!reach.ok) throw ApplicationFailure.nonRetryable(`${f} cannot reach vLLM: ${reach.evidence}`, 'FrontendUnreachable');
            reaches.push(reach.evidence);
          }
          pass(5, reaches.join(' | '));
          frontendStep?.done(`${frontends.join(', ')}${frontendNote}`);
          return frontends;
        } catch (err) {
          frontendStep?.failed(err);
          throw err;
        }
      }),
    );

    // 7. Integration test: a chat completion through each chosen frontend -> checkpoint 6
    await step(7, 'Integration test', async () => {
      const replies: string[] = [];
      for (const f of chosen) {
        const chat = await go('verifyChatThroughFrontend', `Checkpoint 6: chat completion through ${f}`, [cfg, f, launch.servedModelName], LONG);
        if (!chat.ok) throw ApplicationFailure.nonRetryable(`chat through ${f} failed: ${chat.evidence}`, 'IntegrationTestFailed');
        replies.push(chat.evidence);
      }
      pass(6, replies.join(' | '));
    });

    // Irreversible: scrap OpenWebUI only now, after checkpoint 6 passed, with a backup first.
    saga.commit();
    committed = true;
    if (patched('deployment-record')) {
      // What `pve-vllm teardown` puts back: kept on the host, the first deploy's facts winning. Not a step of the
      // design's: a failure here leaves the deploy in place, and is reported among its changes.
      const facts = {
        run: workflowInfo().runId,
        vm: { id: vmId, running: before.vmRunning, onboot: before.vmOnboot },
        gpuDriver: before.gpuDriver ?? null,
        runningCts: before.runningCts ?? [],
        vllmCt,
        confBefore,
      };
      try {
        await counted(call('recordDeployment', 'Keep what the host was before, for `pve-vllm teardown`', [cfg, facts]));
      } catch (err) {
        p.changes.push(`not kept for a teardown: ${errorText(err)}`);
      }
    }
    if (owui === 'scrap' && ctx.assessment?.exists) {
      await step(8, `Scrap OpenWebUI CT ${owuiId}`, async () => {
        if (cfg.backup.beforeScrap) await counted(call('backupGuest', `Back up CT ${owuiId} (vzdump) before scrapping it`, [cfg, owuiId], LONG));
        await undoCounted(call('destroyContainer', `Destroy CT ${owuiId} (scrap)`, [cfg, owuiId]));
      });
    }
    p.status = 'completed';
    p.currentStep = 'done';
    await condition(allHandlersFinished);
    return p;
  } catch (err) {
    p.error = errorText(err);
    for (const rec of p.steps) if (rec.status === 'running') Object.assign(rec, { status: 'failed', endedAt: now(), detail: 'stopped: another step failed' });
    const cancelled = isCancellation(err);
    p.currentStep = `compensating (${cancelled ? 'cancelled' : 'failed'} at ${p.currentStep})`;
    const { ran, allDone } = await saga.compensate();
    // compensated: changes were made and every one was undone; failed: nothing to undo, or an undo failed
    p.status = cancelled ? 'cancelled' : ran > 0 && allDone ? 'compensated' : 'failed';
    p.currentStep = 'done';
    if (cancelled) throw err;
    throw ApplicationFailure.create({
      message: `${p.error}${
        committed
          ? ` — the deploy itself is in place (all six checkpoints passed); only the scrap of CT ${owuiId} did not finish`
          : ran === 0 ? ' — nothing on the host had changed' : allDone ? ' — every change of this run was undone' : ' — some undos failed, see compensations'
      }`,
      type: p.status === 'compensated' ? 'DeployCompensated' : 'DeployFailed',
      nonRetryable: true,
      details: [p],
      cause: err instanceof Error ? err : undefined,
    });
  }

  function applyPreAnswers(): void {
    for (const decision of ['openwebui', 'frontend'] as const) {
      const choice = cfg.decisions[decision];
      if (choice === undefined || ctx[decision] !== undefined) continue;
      const reason = whyNot(decision, { choice }, ctx);
      if (reason) throw ApplicationFailure.nonRetryable(`decisions.${decision} in the config: ${reason}`, 'InvalidDecision');
      accept(decision, { choice, by: 'config' }, 'config');
    }
  }

  /** Step 5, with step 6's changes to the frontends running beside the image pull. Returns the chosen frontends. */
  async function vllmContainer(ctId: number, owui: string): Promise<Array<'openwebui' | 'comfyui'>> {
    // The container and the GPU's move off VM 151 are independent until the passthrough joins them.
    const [, driver] = await join(
      lane(async () => {
        // A CT that exists already is read once, before anything touches it, and its restore registered up front:
        // an attempt cut short by a crash cannot lose the true "before" (restoring an unchanged config is a no-op).
        const existed = ctId !== cfg.guests.vllm.id || before.vllmCtExisted;
        const priorRaw = existed ? await go('readGuestConfig', `Read CT ${ctId} config before reconciling it`, [cfg, ctId]) : '';
        if (priorRaw) confBefore[String(ctId)] = priorRaw;
        const restore = priorRaw
          ? saga.add(`restore CT ${ctId} config`, () => undoCounted(call('restoreContainerConfig', `Restore CT ${ctId} config as it was`, [cfg, ctId, priorRaw], UNDO)))
          : undefined;
        const destroy = () => saga.add(`destroy CT ${ctId}`, () => undoCounted(call('destroyContainer', `Destroy CT ${ctId} created by this run`, [cfg, ctId], UNDO)));
        const destroyFirst = undoFirst && !existed ? destroy() : undefined;
        const ct = await counted(go('ensureVllmContainer', `${owui === 'repurpose' ? 'Reconcile' : 'Create or reconcile'} CT ${ctId} for vLLM`, [cfg, ctId]));
        const created = ct.created || (ctId === cfg.guests.vllm.id && !before.vllmCtExisted);
        vllmCt = { id: ctId, created };
        if (created) {
          restore?.drop();
          if (!destroyFirst) destroy();
        }
        return created;
      }),
      lane(async () => {
        // What the undo gives back: VM 151 as step 1 found it, and as the release found it (a retried release
        // finds its own work done). Read when the undo runs, so one registered up front sees the release's facts.
        const giveBack = { changed: false, vmid: vmId, wasRunning: before.vmRunning, onbootBefore: before.vmOnboot, ...(before.runningCts ? { runningCtsBefore: before.runningCts } : {}), driverBefore: before.gpuDriver };
        let givesBack = false;
        const registerGiveBack = () => {
          givesBack = true;
          saga.add(`give GPU ${gpu} back to VM ${vmId}`, () => undoCounted(call('returnGpuToVm', `Give GPU ${gpu} back to VM ${vmId} and start it`, [cfg, giveBack], UNDO)));
        };
        if (undoFirst && (giveBack.wasRunning || giveBack.onbootBefore)) registerGiveBack();
        const release = await counted(go('ensureGpuReleasedFromVm', `Release GPU ${gpu} from VM ${vmId} (stop, onboot 0)`, [cfg]));
        Object.assign(giveBack, { ...release, wasRunning: release.wasRunning || before.vmRunning, onbootBefore: release.onbootBefore || before.vmOnboot });
        if (!givesBack && (giveBack.wasRunning || giveBack.onbootBefore)) registerGiveBack();
        return counted(go('ensureHostGpuDriver', `Bind GPU ${gpu} to the nvidia driver on the host; blacklist nouveau`, [cfg]));
      }),
    );

    await counted(go('ensureGpuPassthrough', `Pass GPU devices (majors ${driver.majors.nvidia}/${driver.majors.nvidiaUvm}) into CT ${ctId}`, [cfg, ctId, driver.majors]));
    // An existing CT's passthrough is undone by the config restore registered before it was touched.
    await counted(go('ensureContainerRunning', `Start CT ${ctId}`, [cfg, ctId]));
    await counted(go('ensureNvidiaUserspace', `Install NVIDIA userspace ${driver.driverVersion} in CT ${ctId}`, [cfg, ctId, driver.driverVersion]));
    const seen = await go('verifyGpuInContainer', `Checkpoint 3: nvidia-smi in CT ${ctId}`, [cfg, ctId]);
    pass(3, seen.evidence);

    await counted(go('ensureDocker', `Install Docker in CT ${ctId}`, [cfg, ctId]));
    // The toolkit restarts dockerd, which would kill a running pull: it goes first.
    await counted(go('ensureNvidiaToolkit', `Install NVIDIA Container Toolkit (no-cgroups) in CT ${ctId}`, [cfg, ctId]));
    const [, frontends] = await join(
      lane(() => counted(go('ensureImagePulled', `Pull ${cfg.vllm.image} in CT ${ctId}`, [cfg, ctId], LONG))),
      lane(async () => (await join(lane(() => reconfigureFrontends()), lane(gpuBootUnit)))[0]),
    );
    // vLLM starts after the frontends: ComfyUI has let go of the GPU by then.
    let serving = await startVllm(ctId, launch);
    const fitsLen = serving.failure?.suggestedMaxModelLen ?? serving.failure?.estimatedMaxLen;
    // Never below the shortest context we deploy; runs recorded before that rule (no patch marker) replay as they ran.
    const longEnough = (n: number) => n >= MIN_MAX_MODEL_LEN || !patched('kv-retry-min-len');
    if (!serving.ok && serving.failure?.cause === 'kv-cache-too-small' && fitsLen && fitsLen < launch.maxModelLen && cfg.model.allowContextReduction && longEnough(fitsLen)) {
      // The one retry the design's sizing lessons allow: the context vLLM itself says fits.
      launch = { ...launch, maxModelLen: fitsLen };
      p.sizing = [...(p.sizing ?? []), `vLLM: KV cache too small; retrying once with --max-model-len ${launch.maxModelLen}`];
      serving = await startVllm(ctId, launch);
    }
    if (!serving.ok) {
      const f = serving.failure;
      throw ApplicationFailure.nonRetryable(
        f ? `vLLM did not start: ${f.explanation} Remedy: ${f.remedy}` : `vLLM did not start: ${serving.evidence}`,
        'VllmStartFailed',
      );
    }
    pass(4, serving.evidence);
    p.endpoint = `${cfg.guests.vllm.endpoint}/v1`;
    return frontends;
  }

  /** Step 6's changes. Each frontend's config is read first and its undo registered before it is touched, so a
   *  change cut short by a failure or a cancel elsewhere is still put back (restoring is idempotent). */
  async function reconfigureFrontends(): Promise<Array<'openwebui' | 'comfyui'>> {
    frontendStep = begin(6, 'Point the frontend at vLLM');
    const choice = await awaitDecision('frontend');
    const chosen: Array<'openwebui' | 'comfyui'> = choice === 'both' ? ['openwebui', 'comfyui'] : [choice as 'openwebui' | 'comfyui'];
    for (const f of chosen) {
      const id = f === 'comfyui' ? comfyId : owuiId;
      const beforeRaw = await go('readGuestConfig', `Read ${f} CT ${id} config before changing it`, [cfg, id]);
      confBefore[String(id)] ??= beforeRaw;
      const undo = saga.add(`restore ${f}`, () => undoCounted(call('restoreFrontend', `Restore ${f} as it was`, [cfg, { changed: true, frontend: f, beforeRaw }], UNDO)));
      const r =
        f === 'comfyui'
          ? await counted(go('ensureComfyuiOnVllm', `ComfyUI CT ${comfyId}: remove GPU, shrink, CPU-only, LLM node -> vLLM`, [cfg, launch.servedModelName]))
          : await counted(go('ensureOpenwebuiOnVllm', `OpenWebUI CT ${owuiId}: shrink, connect to vLLM`, [cfg, launch.servedModelName]));
      // Runs recorded before this rule dropped the undo when nothing changed. But a retry whose first attempt made
      // the change reports no change either; the undo now stays, and restores only what this run recorded before
      // its own first change (a no-op when there is none), so an earlier run's setup is still left alone.
      if (!r.changed && !patched('keep-frontend-undo')) undo.drop();
    }
    if (comfyGpuOut && cfg.guests.comfyui && !chosen.includes('comfyui')) {
      // Not the frontend, but still on the card vLLM is about to claim most of: its GPU goes, the rest stays.
      const beforeRaw = await go('readGuestConfig', `Read comfyui CT ${comfyId} config before changing it`, [cfg, comfyId]);
      if (beforeRaw) confBefore[String(comfyId)] = beforeRaw;
      if (beforeRaw) saga.add('restore comfyui', () => undoCounted(call('restoreFrontend', 'Restore comfyui as it was', [cfg, { changed: true, frontend: 'comfyui', beforeRaw }], UNDO)));
      const r = await counted(go('releaseComfyuiGpu', `ComfyUI CT ${comfyId} (not the frontend): remove its GPU passthrough, CPU-only`, [cfg]));
      frontendNote = `; ComfyUI: ${r.detail}`;
    }
    return chosen;
  }

  /** Step 5's GPU binding made to survive a reboot (nothing waits for it, so it runs beside the image pull). */
  async function gpuBootUnit(): Promise<void> {
    if (!bootUnit) return;
    // Registered first: it removes only what this run's first change saved (a no-op otherwise).
    saga.add('remove the GPU boot unit', () => undoCounted(call('removeGpuBootUnit', 'Remove pve-vllm-gpu.service, or put back the one there was', [cfg], UNDO)));
    await counted(go('ensureGpuBootUnit', `Keep GPU ${gpu} on nvidia across reboots: pve-vllm-gpu.service, before pve-guests`, [cfg]));
  }

  async function startVllm(ctId: number, launch: VllmLaunch) {
    // Registered first, like the frontends' undo: a compose up that fails for good has already replaced the old
    // service. The undo puts back what this run saved in the CT before its first change, and nothing otherwise.
    const undo = saga.add(`stop vLLM in CT ${ctId}`, () => undoCounted(call('stopVllmService', `Stop vLLM in CT ${ctId}`, [cfg, ctId], UNDO)));
    const svc = await counted(go('ensureVllmService', `Write compose for ${launch.model} (max-model-len ${launch.maxModelLen}) and start vLLM in CT ${ctId}`, [cfg, ctId, launch]));
    if (!svc.changed) undo.drop();
    return go('verifyVllmServing', `Checkpoint 4: /health, then /v1/models lists ${launch.servedModelName}`, [cfg, ctId, launch], LONG);
  }
}

export const CHECKPOINTS = [
  'User creation',
  'OpenWebUI assessment',
  'GPU passthrough',
  'vLLM container',
  'Frontend modification',
  'Final integration',
] as const;

