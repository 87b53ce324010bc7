// Worker limits that the CLI and the composition root share. Kept out of worker.ts, which loads the SDK's native
// worker: the CLI only needs a flag's default.

/**
 * Activity slots of one worker (`pve-vllm worker --max-concurrent-activities`). A deploy holds a few at a time
 * and its steps mostly wait on SSH or HTTP, so a slot costs little. When they ran out (the SDK's default of 100,
 * at 50 concurrent deploys) new steps queued on the server instead of being handed straight back to the worker
 * (eager dispatch needs a free slot), and each then cost a task-queue round trip and one more write of the
 * workflow's state: at 400, wall(50)/wall(1) went from ~1.74 to ~1.64 and the server's CPU fell ~10 %
 * (`npm run bench -- --only concurrency`). Steps that must not overlap are kept apart by the workflow (one deploy
 * per node, by its workflow ID; its steps in order), not by this number.
 */
export const ACTIVITY_SLOTS = 400;

/**
 * A deploy's workflow task timeout, set when it starts. A worker that dies holding a workflow task (it had
 * picked up a step's result and was choosing the next step) gives the task up only after this long. The SDK's
 * 10 s was then the whole recovery time (`npm run reliability`), over the 10 s target, where a kill inside a
 * step takes ~6 s (the 5 s heartbeat timeout). A live worker finishes a workflow task far sooner (50
 * concurrent deploys on 2 cores: p99 0.45 s, max 0.63 s). See STICKY_QUEUE_TIMEOUT in worker.ts.
 */
export const WORKFLOW_TASK_TIMEOUT = '5s';
