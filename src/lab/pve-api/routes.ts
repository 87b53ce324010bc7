/**
 * The served API: each route is a path template from the schema subset plus a handler. Requests are matched
 * against the templates, so a path the lab does not serve gets pveproxy's 501 `Method '...' not implemented`.
 */
import type { LabHost } from '../host';
import type { Authenticator, Caller } from './auth';
import { dieError, permError } from './errors';
import type { TaskRunner } from './tasks';
import type { ParamValue } from './validate';

export interface Ctx {
  host: LabHost;
  caller: Caller;
  params: Record<string, ParamValue>;
  tasks: TaskRunner;
  auth: Authenticator;
  /** Extra envelope attributes (`total` of task logs), as set_result_attrib adds them. */
  attribs: Record<string, unknown>;
}

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string; // schema template, e.g. /nodes/{node}/lxc/{vmid}/config
  /** The ACL path and privilege a caller without root's privileges would need (403 text when missing). */
  perm?: (params: Record<string, ParamValue>) => [string, string];
  handler: (ctx: Ctx) => unknown;
}

export interface Matched {
  route: Route;
  pathParams: Record<string, string>;
}

export class Router {
  private readonly compiled: Array<{ route: Route; re: RegExp; names: string[] }> = [];

  constructor(routes: Route[]) {
    for (const route of routes) {
      const names: string[] = [];
      const src = route.path.replace(/\{([a-z-]+)\}/g, (_m, name: string) => {
        names.push(name);
        return '([^/]+)';
      });
      this.compiled.push({ route, re: new RegExp(`^${src}$`), names });
    }
  }

  match(method: string, relPath: string): Matched | undefined {
    for (const c of this.compiled) {
      if (c.route.method !== method) continue;
      const m = c.re.exec(relPath);
      if (!m) continue;
      const pathParams: Record<string, string> = {};
      c.names.forEach((name, i) => {
        const raw = m[i + 1] ?? '';
        try {
          pathParams[name] = decodeURIComponent(raw);
        } catch {
          pathParams[name] = raw;
        }
      });
      return { route: c.route, pathParams };
    }
    return undefined;
  }
}

// ---------- helpers shared by the handlers ----------

export function str(ctx: Ctx, name: string): string | undefined {
  const v = ctx.params[name];
  return Array.isArray(v) ? v[0] : v;
}

export function num(ctx: Ctx, name: string): number | undefined {
  const v = str(ctx, name);
  return v === undefined ? undefined : Number(v);
}

export function flag(ctx: Ctx, name: string): boolean {
  return str(ctx, name) === '1';
}

export function vmidOf(ctx: Ctx): number {
  return Number(str(ctx, 'vmid'));
}

/**
 * `{node}` must be this node. pveproxy would try to proxy to any other name and fail the lookup
 * (PVE::Network::get_ip_from_hostname; text reconstructed from source).
 */
export function checkNode(ctx: Ctx): void {
  const node = str(ctx, 'node');
  if (node !== undefined && node !== ctx.host.state.node.name) {
    throw dieError(`hostname lookup '${node}' failed - failed to get address info for: ${node}: Name or service not known`);
  }
}

/** root@pam-only operations: PVE compares the auth id, so `root@pam!token` is refused too. */
export function isRootPam(ctx: Ctx): boolean {
  return ctx.caller.authid === 'root@pam';
}

export function requirePrivilege(ctx: Ctx, route: Route): void {
  if (ctx.caller.privileged || !route.perm) return;
  const [path, priv] = route.perm(ctx.params);
  throw permError(`${path}, ${priv}`);
}
