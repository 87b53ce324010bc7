// The lab's PVE API against the real `proxmox-api` client and raw HTTPS: auth schemes, design-state reads,
// root-only rules, schema rejections, tasks, digest, the pve-500 fault and the journal.
import { connect } from 'node:net';
import { type Harness, raw, rootClient, startHarness, stopHarness, tokenClient, tokenHeader, waitTask } from './pve-api-helpers';

let h: Harness;

beforeEach(async () => {
  h = await startHarness();
});

afterEach(async () => {
  await stopHarness(h);
});

describe('transport and auth', () => {
  it('listens on 127.0.0.1 only, with a pinned self-signed certificate', async () => {
    expect(h.api.certFingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    const res = await raw(h, 'GET', '/version', { headers: tokenHeader(h) });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json;charset=UTF-8');
    expect(res.headers.server).toBe('pve-api-daemon/3.0');
    expect(res.json).toEqual({ data: { version: '8.4.1', release: '8.4', repoid: '2a5fa54a8503f96d' } });
    // nothing answers on the IPv6 loopback (or any other address) at that port
    const v6 = await new Promise<string>((resolve) => {
      const sock = connect({ host: '::1', port: h.api.port }, () => { sock.destroy(); resolve('connected'); });
      sock.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    expect(v6).not.toBe('connected');
  });

  it('token auth reads VM 151 config and status through proxmox-api', async () => {
    const px = tokenClient(h);
    const conf = (await px.nodes.$('pve').qemu.$(151).config.$get()) as Record<string, unknown>;
    expect(conf.hostpci0).toBe('0000:01:00.0,pcie=1,x-vga=1');
    expect(conf.onboot).toBe(1); // a boolean, which PVE prints as 1
    expect({ cores: typeof conf.cores, memory: typeof conf.memory }).toEqual({ cores: 'number', memory: 'string' }); // as the schema types them
    expect(conf.digest).toMatch(/^[0-9a-f]{40}$/);
    const st = (await px.nodes.$('pve').qemu.$(151).status.current.$get()) as Record<string, unknown>;
    expect(st.status).toBe('running');
    expect(st.qmpstatus).toBe('running');
    expect(st.vmid).toBe(151);
  });

  it('ticket auth: login, read, and write with the CSRF token', async () => {
    const px = rootClient(h);
    const conf = (await px.nodes.$('pve').lxc.$(118).config.$get()) as Record<string, unknown>;
    expect(conf.lxc).toEqual(expect.arrayContaining([['lxc.mount.entry', '/dev/nvidia0 dev/nvidia0 none bind,optional,create=file']]));
    await px.nodes.$('pve').lxc.$(116).config.$put({ cores: 4 });
    expect(h.host.guest(116)?.config.cores).toBe('4');
  });

  it('answers 401 the way pveproxy does', async () => {
    const none = await raw(h, 'GET', '/version');
    expect([none.status, none.reason, none.body]).toEqual([401, 'No ticket', '']);
    const bad = await raw(h, 'GET', '/version', { headers: { Authorization: `PVEAPIToken=${h.tokenId}=00000000-0000-0000-0000-000000000000` } });
    expect([bad.status, bad.reason]).toEqual([401, 'Authentication failed!']);
    const login = await raw(h, 'POST', '/access/ticket', { form: { username: 'root@pam', password: 'wrong' } });
    expect([login.status, login.reason]).toEqual([401, 'authentication failure']);
    expect(login.json).toEqual({ data: null, message: 'authentication failure\n' });

    const ok = await raw(h, 'POST', '/access/ticket', { form: { username: 'root@pam', password: h.rootPassword } });
    const data = (ok.json as { data: { ticket: string; CSRFPreventionToken: string; username: string; cap: object } }).data;
    expect(data.username).toBe('root@pam');
    expect(data.ticket).toMatch(/^PVE:root@pam:[0-9A-F]{8}::/);
    expect(data.CSRFPreventionToken).toMatch(/^[0-9A-F]{8}:\S+$/);
    const cookie = `PVEAuthCookie=${encodeURIComponent(data.ticket)}`;
    const noCsrf = await raw(h, 'PUT', '/nodes/pve/lxc/116/config', { headers: { Cookie: cookie }, form: { cores: '6' } });
    expect([noCsrf.status, noCsrf.reason]).toEqual([401, 'Permission denied - invalid csrf token']);
    const withCsrf = await raw(h, 'PUT', '/nodes/pve/lxc/116/config', { headers: { Cookie: cookie, CSRFPreventionToken: data.CSRFPreventionToken }, form: { cores: '6' } });
    expect(withCsrf.status).toBe(200);
    expect(withCsrf.json).toEqual({ data: null });
  });
});

describe('root@pam-only rules', () => {
  it('a token cannot set dev0 (403 with PVE text); root@pam with a ticket can', async () => {
    const res = await raw(h, 'PUT', '/nodes/pve/lxc/118/config', { headers: tokenHeader(h), form: { dev0: '/dev/nvidia0' } });
    expect(res.status).toBe(403);
    expect(res.reason).toBe('Permission check failed (configuring device passthrough is only allowed for root@pam)');
    expect(res.json).toEqual({ data: null, message: 'Permission check failed (configuring device passthrough is only allowed for root@pam)\n' });
    await expect(tokenClient(h).nodes.$('pve').lxc.$(118).config.$put({ dev0: '/dev/nvidia0' })).rejects.toThrow(
      /403 Permission check failed \(configuring device passthrough is only allowed for root@pam\)/,
    );
    expect(h.host.guest(118)?.config.dev0).toBeUndefined();

    await rootClient(h).nodes.$('pve').lxc.$(118).config.$put({ dev0: '/dev/nvidia0' });
    const conf = (await tokenClient(h).nodes.$('pve').lxc.$(118).config.$get()) as Record<string, unknown>;
    expect(conf.dev0).toBe('/dev/nvidia0'); // running CT: pending, merged into GET config
  });

  it('a token cannot delete devN or change features other than nesting', async () => {
    const del = await raw(h, 'PUT', '/nodes/pve/lxc/116/config', { headers: tokenHeader(h), form: { delete: 'dev0' } });
    expect(del.reason).toBe('Permission check failed (configuring device passthrough is only allowed for root@pam)');
    const feat = await raw(h, 'PUT', '/nodes/pve/lxc/116/config', { headers: tokenHeader(h), form: { features: 'nesting=1,keyctl=1,fuse=1' } });
    expect([feat.status, feat.reason]).toEqual([403, 'Permission check failed (changing feature flags (except nesting) is only allowed for root@pam)']);
    const nesting = await raw(h, 'PUT', '/nodes/pve/lxc/116/config', { headers: tokenHeader(h), form: { features: 'nesting=0,keyctl=1' } });
    expect(nesting.status).toBe(200);
    const privileged = await raw(h, 'PUT', '/nodes/pve/lxc/118/config', { headers: tokenHeader(h), form: { features: 'nesting=1' } });
    expect(privileged.reason).toBe('Permission check failed (changing feature flags for privileged container is only allowed for root@pam)');
  });

  it('a token cannot set a raw hostpci address (qemu-server dies: 500)', async () => {
    const res = await raw(h, 'PUT', '/nodes/pve/qemu/151/config', { headers: tokenHeader(h), form: { delete: 'hostpci0' } });
    expect([res.status, res.reason]).toEqual([500, "only root can set 'hostpci0' config for non-mapped devices"]);
    await rootClient(h).nodes.$('pve').qemu.$(151).config.$put({ delete: 'hostpci0' });
  });

  it('raw lxc.* keys are not API parameters at all (400 unknown)', async () => {
    const res = await raw(h, 'PUT', '/nodes/pve/lxc/118/config', { headers: tokenHeader(h), form: { 'lxc.apparmor.profile': 'unconfined' } });
    expect([res.status, res.reason]).toEqual([400, 'Parameter verification failed.']);
    expect(res.json).toEqual({
      data: null,
      message: 'Parameter verification failed.\n',
      errors: { 'lxc.apparmor.profile': 'property is not defined in schema and the schema does not allow additional properties' },
    });
    await expect(rootClient(h).nodes.$('pve').lxc.$(118).config.$put({ 'lxc.apparmor.profile': 'unconfined' } as never)).rejects.toThrow(/400 Parameter verification failed/);
  });
});

describe('schema validation', () => {
  const put = (form: Record<string, string>) => raw(h, 'PUT', '/nodes/pve/lxc/116/config', { headers: tokenHeader(h), form });
  const errorsOf = (r: { json: unknown }) => (r.json as { errors: Record<string, string> }).errors;

  it('rejects unknown parameters, wrong types, enums, ranges and bad property strings', async () => {
    expect(errorsOf(await put({ foo: '1' }))).toEqual({ foo: 'property is not defined in schema and the schema does not allow additional properties' });
    expect(errorsOf(await put({ cores: 'abc' }))).toEqual({ cores: "type check ('integer') failed - got 'abc'" });
    expect(errorsOf(await put({ onboot: 'yes' }))).toEqual({ onboot: "type check ('boolean') failed - got 'yes'" });
    expect(errorsOf(await put({ memory: '8' }))).toEqual({ memory: 'value must have a minimum value of 16' });
    expect(errorsOf(await put({ ostype: 'windows' }))).toEqual({
      ostype: "value 'windows' does not have a value in the enumeration 'debian, devuan, ubuntu, centos, fedora, opensuse, archlinux, alpine, gentoo, nixos, unmanaged'",
    });
    expect(errorsOf(await put({ net0: 'name=eth0,bridge=vmbr0,foo=1' }))).toEqual({ net0: 'invalid format - invalid key in comma-separated list property: foo\n' });
    expect(errorsOf(await put({ net1: 'name=eth1,ip=10.0.0.5' }))).toEqual({
      net1: 'invalid format - format error\nnet1.ip: invalid format - value does not look like a valid ipv4 network configuration\n\n',
    });
    expect(errorsOf(await put({ features: 'nesting=maybe' }))).toEqual({ features: "invalid format - format error\nfeatures.nesting: type check ('boolean') failed - got 'maybe'\n" });
    expect(errorsOf(await put({ delete: 'cores,9bad' }))).toEqual({ delete: "invalid format - invalid configuration ID '9bad'\n" });
    expect(errorsOf(await put({ mp256: 'local-lvm:8,mp=/data' }))).toEqual({ mp256: 'property is not defined in schema and the schema does not allow additional properties' });
    const badVmid = await raw(h, 'GET', '/nodes/pve/lxc/abc/config', { headers: tokenHeader(h) });
    expect(errorsOf(badVmid)).toEqual({ vmid: "type check ('integer') failed - got 'abc'" });
  });

  it('rejects missing required parameters', async () => {
    const res = await raw(h, 'POST', '/nodes/pve/lxc', { headers: tokenHeader(h), form: { vmid: '117' } });
    expect(res.status).toBe(400);
    expect(errorsOf(res)).toEqual({ ostemplate: 'property is missing and it is not optional' });
  });

  it('answers 501 for paths the API does not have', async () => {
    const res = await raw(h, 'GET', '/nodes/pve/nothing', { headers: tokenHeader(h) });
    expect([res.status, res.reason]).toEqual([501, "Method 'GET /nodes/pve/nothing' not implemented"]);
  });
});

describe('containers and tasks', () => {
  it('creates and starts CT 117 as tasks with real UPIDs, logs and statuses', async () => {
    const px = tokenClient(h);
    const template = 'local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst';
    const nextid = await px.cluster.nextid.$get();
    expect(nextid).toBe('100');
    const upid = await px.nodes.$('pve').lxc.$post({
      vmid: 117, ostemplate: template, hostname: 'vllm', cores: 16, memory: 98304, swap: 0, rootfs: 'local-lvm:64',
      net0: 'name=eth0,bridge=vmbr0,ip=10.0.50.117/24,gw=10.0.50.1', features: 'nesting=1', unprivileged: true, start: false,
    });
    expect(upid).toMatch(/^UPID:pve:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:vzcreate:117:root@pam!pve-vllm:$/);
    const running = (await px.nodes.$('pve').tasks.$(upid).status.$get()) as Record<string, unknown>;
    expect(running).toMatchObject({ status: 'running', type: 'vzcreate', id: '117', user: 'root@pam', tokenid: 'pve-vllm' });
    const again = await raw(h, 'POST', '/nodes/pve/lxc', { headers: tokenHeader(h), form: { vmid: '117', ostemplate: template } });
    expect([again.status, again.reason]).toEqual([500, "CT 117 already exists on node 'pve'"]);

    const created = await waitTask(h, upid);
    expect(created.exitstatus).toBe('OK');
    expect(created.log[0]).toBe('  Logical volume "vm-117-disk-0" created.');
    expect(created.log).toContain('Detected container architecture: amd64');
    expect(created.log[created.log.length - 1]).toBe('TASK OK');

    const conf = (await px.nodes.$('pve').lxc.$(117).config.$get()) as Record<string, string>;
    expect(conf.rootfs).toBe('local-lvm:vm-117-disk-0,size=64G');
    expect(conf.net0).toMatch(/^name=eth0,bridge=vmbr0,gw=10\.0\.50\.1,hwaddr=BC:24:11:[0-9A-F:]{8},ip=10\.0\.50\.117\/24,type=veth$/);
    expect(conf.unprivileged).toBe(1);
    expect(conf.lock).toBeUndefined();

    const start = await px.nodes.$('pve').lxc.$(117).status.start.$post();
    expect((await waitTask(h, start)).exitstatus).toBe('OK');
    const st = (await px.nodes.$('pve').lxc.$(117).status.current.$get()) as Record<string, unknown>;
    expect(st).toMatchObject({ status: 'running', vmid: 117, name: 'vllm', type: 'lxc', ha: { managed: 0 } });
    const twice = await raw(h, 'POST', '/nodes/pve/lxc/117/status/start', { headers: tokenHeader(h) });
    expect([twice.status, twice.reason]).toEqual([500, 'CT 117 already running']);

    const destroyRunning = await raw(h, 'DELETE', '/nodes/pve/lxc/117', { headers: tokenHeader(h) });
    expect(destroyRunning.reason).toBe('unable to destroy CT 117 - container is running');
    expect((await waitTask(h, await px.nodes.$('pve').lxc.$(117).status.stop.$post())).exitstatus).toBe('OK');
    expect((await waitTask(h, await px.nodes.$('pve').lxc.$(117).$delete())).exitstatus).toBe('OK');
    const gone = await raw(h, 'GET', '/nodes/pve/lxc/117/config', { headers: tokenHeader(h) });
    expect([gone.status, gone.reason]).toEqual([500, "Configuration file 'nodes/pve/lxc/117.conf' does not exist"]);
  });

  it('a create on a storage without container support is a parameter error', async () => {
    const res = await raw(h, 'POST', '/nodes/pve/lxc', {
      headers: tokenHeader(h), form: { vmid: '117', ostemplate: 'local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst', rootfs: 'local:8' },
    });
    expect(res.json).toEqual({ data: null, message: 'Parameter verification failed.\n', errors: { storage: "storage 'local' does not support container directories" } });
  });

  it('checks the digest', async () => {
    const px = tokenClient(h);
    const conf = (await px.nodes.$('pve').lxc.$(116).config.$get()) as { digest: string };
    await px.nodes.$('pve').lxc.$(116).config.$put({ memory: 8192, digest: conf.digest });
    const stale = await raw(h, 'PUT', '/nodes/pve/lxc/116/config', { headers: tokenHeader(h), form: { cores: '4', digest: conf.digest } });
    expect([stale.status, stale.reason]).toEqual([500, 'detected modified configuration - file changed by other user? Try again.']);
    expect(h.host.guest(116)?.config.cores).toBe('8');
  });
});

describe('VM 151 and the GPU', () => {
  it('start of a running VM fails in the task; stop leaves the GPU on vfio-pci; start fails while nvidia holds it', async () => {
    const px = tokenClient(h);
    const dup = await waitTask(h, await px.nodes.$('pve').qemu.$(151).status.start.$post());
    expect(dup.exitstatus).toBe('VM 151 already running');
    expect(dup.log[dup.log.length - 1]).toBe('TASK ERROR: VM 151 already running');

    expect((await waitTask(h, await px.nodes.$('pve').qemu.$(151).status.stop.$post())).exitstatus).toBe('OK');
    expect(h.host.pci('0000:01:00.0')?.driver).toBe('vfio-pci');

    const gpu = h.host.pci('0000:01:00.0');
    if (gpu) gpu.driver = 'nvidia';
    h.host.gpuInUse = () => 117;
    const blocked = await waitTask(h, await px.nodes.$('pve').qemu.$(151).status.start.$post());
    expect(blocked.exitstatus).toBe("can't unbind/bind PCI group to VFIO '0000:01:00.0'");
    expect(h.host.guest(151)?.status).toBe('stopped');
  });

  it('lists PCI devices with the GPU at its fixed address', async () => {
    const list = (await tokenClient(h).nodes.$('pve').hardware.pci.$get()) as Array<Record<string, unknown>>;
    expect(list.find((d) => d.id === '0000:01:00.0')).toMatchObject({ vendor: '0x10de', device: '0x2705', class: '0x030000', iommugroup: 14 });
  });
});

describe('faults and journal', () => {
  it('pve-500 fails the next mutating call once without applying it', async () => {
    h.host.armFault('pve-500');
    const read = await raw(h, 'GET', '/nodes/pve/lxc/116/config', { headers: tokenHeader(h) });
    expect(read.status).toBe(200); // reads are not affected
    const first = await raw(h, 'PUT', '/nodes/pve/lxc/116/config', { headers: tokenHeader(h), form: { cores: '4' } });
    expect([first.status, first.reason]).toEqual([500, 'cluster not ready - no quorum?']);
    expect(h.host.guest(116)?.config.cores).toBe('8');
    const second = await raw(h, 'PUT', '/nodes/pve/lxc/116/config', { headers: tokenHeader(h), form: { cores: '4' } });
    expect(second.status).toBe(200);
    expect(h.host.guest(116)?.config.cores).toBe('4');
  });

  it('journals every mutating call via api, and nothing for reads', async () => {
    const px = tokenClient(h);
    await px.nodes.$('pve').lxc.$(116).config.$get();
    expect(h.host.state.journal).toHaveLength(0);
    await px.nodes.$('pve').lxc.$(116).config.$put({ cores: 4 });
    await waitTask(h, await px.nodes.$('pve').qemu.$(151).status.shutdown.$post());
    const token = (await px.access.users.$('root@pam').token.$('deploy').$post({ privsep: false })) as { value: string; 'full-tokenid': string };
    expect(token['full-tokenid']).toBe('root@pam!deploy');
    expect(h.host.state.journal.map((e) => [e.via, e.op, e.guest])).toEqual([
      ['api', 'ct.config', 116],
      ['api', 'vm.shutdown', 151],
      ['api', 'token.create', undefined],
    ]);
    expect(JSON.stringify(h.host.state.journal)).not.toContain(token.value);
    const dupe = await raw(h, 'POST', '/access/users/root@pam/token/deploy', { headers: tokenHeader(h) });
    expect(dupe.json).toEqual({ data: null, message: 'Parameter verification failed.\n', errors: { tokenid: 'Token already exists.' } });
  });
});
