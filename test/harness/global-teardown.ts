export default async function globalTeardown(): Promise<void> {
  await globalThis.__PVE_VLLM_DEV_SERVER__?.stop();
}
