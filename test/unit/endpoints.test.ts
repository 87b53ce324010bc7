import { repurposedEndpoint } from '../../src/workflows/endpoints';
import type { DeployConfig } from '../../src/config/schema';

const cfg = (openwebui: Record<string, unknown> | undefined) => ({ guests: { openwebui }, vllm: { port: 8000 } }) as unknown as DeployConfig;

describe('repurposedEndpoint', () => {
  it("is OpenWebUI's host at vLLM's port, unless the config names it", () => {
    expect(repurposedEndpoint(cfg({ id: 116, url: 'http://10.0.50.116:8080' }))).toBe('http://10.0.50.116:8000');
    expect(repurposedEndpoint(cfg({ id: 116, url: 'https://[fd00::116]/' }))).toBe('http://[fd00::116]:8000');
    expect(repurposedEndpoint(cfg({ id: 116, url: 'http://owui.lan:8080', vllmEndpoint: 'http://10.0.50.116:9000' }))).toBe('http://10.0.50.116:9000');
    expect(repurposedEndpoint(cfg({ id: 116 }))).toBeUndefined();
    expect(repurposedEndpoint(cfg(undefined))).toBeUndefined();
  });
});
