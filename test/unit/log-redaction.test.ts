// vLLM prints its arguments at start-up with --api-key in clear text; what a failed start surfaces must not carry it.
import { withoutSecret } from '../../src/activities/probes';
import { classifyVllmLog } from '../../src/sizing';

const KEY = 'sk-lab-5f0c2a9e1d7b4c3a';
const LOG = [
  "INFO 11-18 21:07:01 api_server.py:586] args: Namespace(host=None, port=8000, model='Qwen/Qwen2.5-7B-Instruct', api_key='" + KEY + "')",
  'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 224.00 MiB. GPU 0 has a total capacity of 23.64 GiB of which 98.00 MiB is free.',
  "INFO 11-18 21:07:09 launcher.py:57] shutting down, api_key='" + KEY + "'",
].join('\n');

describe('withoutSecret', () => {
  it('masks every occurrence of the key and keeps the rest of the log', () => {
    const out = withoutSecret(LOG, KEY);
    expect(out).not.toContain(KEY);
    expect(out.match(/\*\*\*/g)).toHaveLength(2);
    expect(out).toContain('CUDA out of memory');
    expect(classifyVllmLog(out).map((c) => c.cause)).toContain('cuda-oom');
  });

  it('leaves the text alone when there is no key to mask', () => {
    expect(withoutSecret(LOG, '')).toBe(LOG);
  });
});
