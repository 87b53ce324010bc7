/** IPv4 address arithmetic for the vLLM CT's network: CIDR `ip`, and a gateway that must sit in that subnet. */
import { z } from 'zod';
import { IPV4_RE, field } from './fields';

export function ipToInt(ip: string): number {
  return ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

export interface Subnet { address: number; prefix: number; network: number; broadcast: number }

/** `10.0.50.117/24` → its numbers; undefined when it is not an IPv4 CIDR. */
export function parseCidr(s: string): Subnet | undefined {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(s);
  if (!m || !IPV4_RE.test(m[1])) return undefined;
  const prefix = Number(m[2]);
  if (prefix < 1 || prefix > 32) return undefined;
  const address = ipToInt(m[1]);
  const size = 2 ** (32 - prefix);
  const network = Math.floor(address / size) * size;
  return { address, prefix, network, broadcast: network + size - 1 };
}

export function inSubnet(ip: string, subnet: Subnet): boolean {
  const n = ipToInt(ip);
  return n >= subnet.network && n <= subnet.broadcast;
}

export const ipv4 = field(
  z.string().regex(IPV4_RE, { message: 'must be an IPv4 address such as 10.0.50.1' }),
  'an IPv4 address such as 10.0.50.1',
);

export const ipv4Cidr = field(
  z.string().check((ctx) => {
    if (ctx.value === 'dhcp') return;
    const subnet = parseCidr(ctx.value);
    let why: string | undefined;
    if (!subnet) why = 'must be an IPv4 address with its prefix length, like 10.0.50.117/24, or dhcp';
    // /31 and /32 have no network or broadcast address to avoid (RFC 3021 point-to-point links).
    else if (subnet.prefix <= 30 && subnet.address === subnet.network) why = 'is the network address of its subnet, not a host address';
    else if (subnet.prefix <= 30 && subnet.address === subnet.broadcast) why = 'is the broadcast address of its subnet, not a host address';
    if (why) ctx.issues.push({ code: 'custom', message: why, input: ctx.value });
  }),
  'dhcp, or an IPv4 host address with prefix length (CIDR), e.g. 10.0.50.117/24',
);
