// What each deploy activity needs before it can start: the step dependency graph. The deploy runs steps side by
// side where this graph allows it; `npm run bench` measures its critical path against the deploy's wall time.
// Edges marked "policy" are not data dependencies but choices: nothing moves the GPU before the human has
// answered, and the container's apt installs take turns (dpkg has one lock).
export const STEP_DEPENDENCIES: Record<string, readonly string[]> = {
  inspectHost: [],
  // 2-3: need only the host
  ensureAdminUser: ['inspectHost'],
  ensureClaudeCode: ['ensureAdminUser'],
  verifyAdminAccess: ['ensureClaudeCode'],
  ensureRepoCloned: ['inspectHost'],
  // 4: the assessment, then both questions
  assessOpenwebui: ['inspectHost'],
  // 5: the container and the GPU's move are independent until the passthrough joins them
  ensureVllmContainer: ['assessOpenwebui'],
  ensureGpuReleasedFromVm: ['assessOpenwebui'], // policy: after the answer
  ensureHostGpuDriver: ['ensureGpuReleasedFromVm'],
  ensureGpuPassthrough: ['ensureVllmContainer', 'ensureHostGpuDriver'],
  ensureContainerRunning: ['ensureGpuPassthrough'],
  ensureNvidiaUserspace: ['ensureContainerRunning'],
  verifyGpuInContainer: ['ensureNvidiaUserspace'],
  ensureDocker: ['verifyGpuInContainer'], // policy: checkpoint 3 first; one dpkg lock
  ensureNvidiaToolkit: ['ensureDocker'],
  ensureImagePulled: ['ensureNvidiaToolkit'], // the toolkit restarts dockerd, which would kill a pull
  ensureGpuBootUnit: ['ensureHostGpuDriver'], // beside the pull: nothing waits for it
  // 6: the frontends need only the frontend answer (given after the assessment)
  readGuestConfig: ['assessOpenwebui'],
  ensureComfyuiOnVllm: ['readGuestConfig'],
  ensureOpenwebuiOnVllm: ['readGuestConfig'],
  releaseComfyuiGpu: ['readGuestConfig'],
  // vLLM starts once the image is there and ComfyUI has let go of the GPU
  ensureVllmService: ['ensureImagePulled', 'ensureComfyuiOnVllm', 'releaseComfyuiGpu', 'verifyGpuInContainer'],
  verifyVllmServing: ['ensureVllmService'],
  verifyFrontendReachesVllm: ['verifyVllmServing', 'ensureComfyuiOnVllm', 'ensureOpenwebuiOnVllm'],
  // 7 and the scrap
  verifyChatThroughFrontend: ['verifyFrontendReachesVllm'],
  backupGuest: ['verifyChatThroughFrontend'],
  recordDeployment: ['verifyChatThroughFrontend'], // what a teardown needs, once checkpoint 6 passed
};
