// The PVE-style parameter validator against the generated schema subset (no server involved).
import subsetJson from '../../src/lab/pve-api/schema-subset.json';
import type { SchemaSubset } from '../../src/lab/pve-api/schema-types';
import { parsePropertyString, schemaFor, validateParams } from '../../src/lab/pve-api/validate';
import { HASH_FORMATS } from '../../src/lab/pve-api/formats';

const SCHEMA = subsetJson as unknown as SchemaSubset;
const lxcCreate = SCHEMA['/nodes/{node}/lxc']?.POST?.parameters;
const lxcPut = SCHEMA['/nodes/{node}/lxc/{vmid}/config']?.PUT?.parameters;
const qmPut = SCHEMA['/nodes/{node}/qemu/{vmid}/config']?.PUT?.parameters;

describe('schema subset', () => {
  it('holds exactly the served paths with their parameter schemas', () => {
    expect(Object.keys(SCHEMA)).toContain('/nodes/{node}/lxc/{vmid}/config');
    expect(lxcPut?.additionalProperties).toBe(0);
    expect(Object.keys(lxcPut?.properties ?? {})).toEqual(expect.arrayContaining(['dev[n]', 'features', 'net[n]', 'delete', 'digest']));
    // prose is dropped: the subset stays small; a parameter called description stays
    expect(JSON.stringify(SCHEMA)).not.toContain('"description":"');
    expect(lxcPut?.properties?.description).toMatchObject({ type: 'string', maxLength: 8192 });
    expect(validateParams(lxcPut ?? {}, { node: 'pve', vmid: '116', description: 'hello' })).toBeNull();
  });
});

describe('validateParams', () => {
  const base = { node: 'pve', vmid: '117' };
  it('accepts a realistic CT create', () => {
    expect(validateParams(lxcCreate ?? {}, {
      ...base, ostemplate: 'local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst', hostname: 'vllm', cores: '16', memory: '98304',
      swap: '0', rootfs: 'local-lvm:64', net0: 'name=eth0,bridge=vmbr0,ip=10.0.50.117/24,gw=10.0.50.1', features: 'nesting=1,keyctl=1',
      unprivileged: '1', start: '0', 'ssh-public-keys': 'ssh-ed25519 AAAA test', onboot: '1', tags: 'ai;vllm',
    })).toBeNull();
  });

  it('words errors exactly as pve-common does', () => {
    expect(validateParams(lxcCreate ?? {}, { node: 'pve', ostemplate: 'x' })).toEqual({ vmid: 'property is missing and it is not optional' });
    expect(validateParams(lxcPut ?? {}, { ...base, vmid: '42' })).toEqual({ vmid: 'invalid format - value does not look like a valid VM ID\n' }); // format runs before the range
    expect(validateParams(lxcPut ?? {}, { node: 'pve!', vmid: '117' })).toEqual({ node: 'invalid format - value does not look like a valid node name\n' });
    expect(validateParams(lxcPut ?? {}, { ...base, dev0: 'nvidia0' })).toEqual({ dev0: 'invalid format - format error\ndev0.path: invalid format - nvidia0 is not a valid device path\n\n' });
    expect(validateParams(lxcPut ?? {}, { ...base, dev0: '/dev/nvidia0,mode=999' })).toEqual({ dev0: 'invalid format - format error\ndev0.mode: value does not match the regex pattern\n' });
    expect(validateParams(lxcPut ?? {}, { ...base, tags: 'a b;c!' })).toEqual({ tags: 'invalid format - invalid characters in tag\n' });
    expect(validateParams(lxcPut ?? {}, { ...base, net0: 'name=eth0,name=eth1' })).toEqual({ net0: 'invalid format - duplicate key in comma-separated list property: name\n' });
    expect(validateParams(lxcPut ?? {}, { ...base, net0: 'bridge=vmbr0' })).toEqual({ net0: 'invalid format - format error\nnet0.name: property is missing and it is not optional\n' });
    expect(validateParams(lxcPut ?? {}, { ...base, cores: ['1', '2'] })).toEqual({ cores: "type check ('integer') failed - got ARRAY" });
  });

  it('accepts indexed keys only within PVE limits', () => {
    const props = qmPut?.properties ?? {};
    expect(schemaFor(props, 'hostpci15')).toBeDefined();
    expect(schemaFor(props, 'hostpci16')).toBeUndefined();
    expect(schemaFor(props, 'hostpci01')).toBeUndefined();
    expect(validateParams(qmPut ?? {}, { node: 'pve', vmid: '151', hostpci0: '0000:01:00.0,pcie=1,x-vga=1' })).toBeNull();
    expect(validateParams(qmPut ?? {}, { node: 'pve', vmid: '151', hostpci0: 'mapping=rtx4070,pcie=on' })).toBeNull();
    expect(validateParams(qmPut ?? {}, { node: 'pve', vmid: '151', hostpci0: 'gpu0' })).toEqual({
      hostpci0: 'invalid format - format error\nhostpci0.host: value does not match the regex pattern\n',
    });
  });

  it('parses property strings with default keys and boolean words', () => {
    expect(parsePropertyString(HASH_FORMATS['pve-qm-hostpci'] ?? {}, '01:00.0,x-vga=on,pcie=1', 'hostpci0')).toEqual({ host: '01:00.0', 'x-vga': '1', pcie: '1' });
  });
});
