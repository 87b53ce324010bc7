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
