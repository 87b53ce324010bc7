/**
 * pveproxy authentication: API tokens (`Authorization: PVEAPIToken=USER@REALM!TOKENID=SECRET`, no CSRF)
 * and password tickets (`POST /access/ticket` → `PVEAuthCookie` cookie + `CSRFPreventionToken` header on
 * every non-GET call). Failure reasons are PVE's: `No ticket`, `Authentication failed!`,
 * `Permission denied - invalid csrf token`, and `authentication failure` for a bad login.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { LabState } from '../state';
import { ApiError, unauthorized } from './errors';

/** Who is calling. A token is `root@pam!name`, which is never `root@pam` in PVE's root-only checks. */
export interface Caller {
  /** The auth id PVE compares: `root@pam` or `root@pam!pve-vllm`. */
  authid: string;
  /** The user part (`root@pam`). */
  user: string;
  tokenid?: string;
  /** root@pam itself, or one of its tokens without privilege separation: holds every privilege. */
  privileged: boolean;
}

const TICKET_LIFETIME_S = 2 * 3600; // PVE tickets are valid for two hours

function equalText(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

function hex8(n: number): string {
  return n.toString(16).toUpperCase().padStart(8, '0');
}

export class Authenticator {
  private readonly tickets = new Map<string, { user: string; issued: number }>();
  private readonly csrfSecret = randomBytes(32);

  constructor(private readonly state: LabState) {}

  private now(): number {
    return Math.floor(Date.now() / 1000);
  }

  private csrfFor(user: string, issued: number): string {
    const ts = hex8(issued);
    const mac = createHmac('sha256', this.csrfSecret).update(`${ts}:${user}`).digest('base64').replace(/=+$/, '');
    return `${ts}:${mac}`;
  }

  private ticketUser(ticket: string): string | undefined {
    const t = this.tickets.get(ticket);
    if (!t || this.now() - t.issued > TICKET_LIFETIME_S) return undefined;
    return t.user;
  }

  /** POST /access/ticket. Only root@pam has a password in the lab (PAM users need a Linux account). */
  login(username: string, password: string, realm?: string): Record<string, unknown> {
    const user = realm && !username.includes('@') ? `${username}@${realm}` : username;
    const byPassword = user === 'root@pam' && equalText(password, this.state.access.rootPassword);
    // A still-valid ticket may be presented as the password to renew it (create_ticket_do).
    const byTicket = this.ticketUser(password) === user;
    if (!byPassword && !byTicket) throw new ApiError(401, 'authentication failure');
    const issued = this.now();
    const ticket = `PVE:${user}:${hex8(issued)}::${randomBytes(256).toString('base64')}`;
    this.tickets.set(ticket, { user, issued });
    return { username: user, ticket, CSRFPreventionToken: this.csrfFor(user, issued), cap: rootCapabilities() };
  }

  /** auth_handler: resolve the caller of a request that needs authentication, or throw the 401. */
  authenticate(method: string, headers: IncomingHttpHeaders): Caller {
    const authz = headers.authorization;
    if (typeof authz === 'string' && /^PVEAPIToken[=:]/.test(authz)) return this.verifyToken(authz.replace(/^PVEAPIToken[=:]\s*/, ''));
    const ticket = cookieValue(headers.cookie, 'PVEAuthCookie');
    if (!ticket) throw unauthorized('No ticket');
    const user = this.ticketUser(ticket);
    if (!user) throw unauthorized('Authentication failed!');
    if (method !== 'GET') {
      const sent = headers.csrfpreventiontoken;
      const issued = this.tickets.get(ticket)?.issued ?? 0;
      if (typeof sent !== 'string' || !equalText(sent, this.csrfFor(user, issued))) {
        throw unauthorized('Permission denied - invalid csrf token');
      }
    }
    return { authid: user, user, privileged: user === 'root@pam' };
  }

  private verifyToken(value: string): Caller {
    const eq = value.lastIndexOf('=');
    const full = eq > 0 ? value.slice(0, eq) : '';
    const secret = eq > 0 ? value.slice(eq + 1) : '';
    const m = /^(.+@[^!]+)!(.+)$/.exec(full);
    const token = m ? this.state.access.tokens.find((t) => t.userid === m[1] && t.tokenid === m[2]) : undefined;
    const expired = token !== undefined && token.expire !== 0 && token.expire < this.now();
    if (!m || !token || expired || !equalText(secret, token.secret)) throw unauthorized('Authentication failed!');
    return { authid: full, user: m[1] ?? '', tokenid: m[2] ?? '', privileged: token.userid === 'root@pam' && token.privsep === 0 };
  }
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const raw = part.slice(eq + 1).trim();
    try {
      return decodeURIComponent(raw);
    } catch {
      return raw;
    }
  }
  return undefined;
}

/** `cap` of a root@pam ticket: what the GUI uses to show or hide actions. */
function rootCapabilities(): Record<string, Record<string, number>> {
  const all = (privs: string[]): Record<string, number> => Object.fromEntries(privs.map((p) => [p, 1]));
  return {
    vms: all(['VM.Allocate', 'VM.Audit', 'VM.Backup', 'VM.Clone', 'VM.Config.CDROM', 'VM.Config.CPU', 'VM.Config.Cloudinit',
      'VM.Config.Disk', 'VM.Config.HWType', 'VM.Config.Memory', 'VM.Config.Network', 'VM.Config.Options', 'VM.Console',
      'VM.Migrate', 'VM.PowerMgmt', 'VM.Snapshot', 'VM.Snapshot.Rollback', 'Permissions.Modify']),
    storage: all(['Datastore.Allocate', 'Datastore.AllocateSpace', 'Datastore.AllocateTemplate', 'Datastore.Audit', 'Permissions.Modify']),
    access: all(['Group.Allocate', 'Permissions.Modify', 'Realm.Allocate', 'Realm.AllocateUser', 'User.Modify']),
    nodes: all(['Permissions.Modify', 'Sys.Audit', 'Sys.Console', 'Sys.Incoming', 'Sys.Modify', 'Sys.PowerMgmt', 'Sys.Syslog']),
    dc: all(['Sys.Audit', 'Sys.Modify', 'SDN.Allocate', 'SDN.Audit', 'SDN.Use']),
    sdn: all(['Permissions.Modify', 'SDN.Allocate', 'SDN.Audit', 'SDN.Use']),
    mapping: all(['Mapping.Audit', 'Mapping.Modify', 'Mapping.Use', 'Permissions.Modify']),
  };
}
