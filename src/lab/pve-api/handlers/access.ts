/**
 * /access/users and API tokens (pve-access-control API2/User.pm). A new token's secret is returned once, in
 * `value`, and is never journaled. Login itself (/access/ticket) is handled by the server before routing.
 */
import { randomUUID } from 'node:crypto';
import type { ApiToken } from '../../state';
import { dieError, paramError } from '../errors';
import { flag, num, str, type Ctx, type Route } from '../routes';

function userOrDie(ctx: Ctx, userid: string): void {
  if (!ctx.host.state.access.users.some((u) => u.userid === userid)) throw dieError(`no such user ('${userid}')`);
}

function tokenInfo(t: ApiToken): Record<string, unknown> {
  return { expire: t.expire, privsep: t.privsep, ...(t.comment ? { comment: t.comment } : {}) };
}

function tokensOf(ctx: Ctx, userid: string): ApiToken[] {
  return ctx.host.state.access.tokens.filter((t) => t.userid === userid);
}

export const accessRoutes: Route[] = [
  {
    method: 'GET', path: '/access/users',
    handler: (ctx) => ctx.host.state.access.users
      .filter((u) => !flag(ctx, 'enabled') || u.enable === 1)
      .map((u) => ({
        ...u, 'realm-type': u.userid.split('@')[1] ?? '',
        ...(flag(ctx, 'full') ? { tokens: tokensOf(ctx, u.userid).map((t) => ({ tokenid: t.tokenid, ...tokenInfo(t) })) } : {}),
      })),
  },
  {
    method: 'POST', path: '/access/users', perm: () => ['/access/groups', 'User.Modify'],
    handler: (ctx) => {
      const userid = str(ctx, 'userid') ?? '';
      const realm = userid.split('@')[1] ?? '';
      if (!['pam', 'pve'].includes(realm)) throw dieError(`create user failed: authentication domain '${realm}' does not exist`);
      if (ctx.host.state.access.users.some((u) => u.userid === userid)) throw dieError(`create user failed: user '${userid}' already exists`);
      ctx.host.state.access.users.push({
        userid, enable: str(ctx, 'enable') === '0' ? 0 : 1, expire: num(ctx, 'expire') ?? 0,
        firstname: str(ctx, 'firstname') ?? '', lastname: str(ctx, 'lastname') ?? '', email: str(ctx, 'email') ?? '', comment: str(ctx, 'comment') ?? '',
      });
      ctx.host.record('api', 'user.create', undefined, userid); // the password (if any) is never recorded
      return null;
    },
  },
  {
    method: 'GET', path: '/access/users/{userid}',
    handler: (ctx) => {
      const userid = str(ctx, 'userid') ?? '';
      const u = ctx.host.state.access.users.find((x) => x.userid === userid);
      if (!u) throw dieError(`no such user ('${userid}')`);
      const { userid: _omit, ...rest } = u;
      void _omit;
      return { ...rest, groups: [], tokens: Object.fromEntries(tokensOf(ctx, userid).map((t) => [t.tokenid, tokenInfo(t)])) };
    },
  },
  {
    method: 'GET', path: '/access/users/{userid}/token',
    handler: (ctx) => {
      const userid = str(ctx, 'userid') ?? '';
      userOrDie(ctx, userid);
      return tokensOf(ctx, userid).map((t) => ({ tokenid: t.tokenid, ...tokenInfo(t) }));
    },
  },
  {
    method: 'GET', path: '/access/users/{userid}/token/{tokenid}',
    handler: (ctx) => {
      const userid = str(ctx, 'userid') ?? '';
      const tokenid = str(ctx, 'tokenid') ?? '';
      userOrDie(ctx, userid);
      const t = tokensOf(ctx, userid).find((x) => x.tokenid === tokenid);
      if (!t) throw dieError(`no such token '${tokenid}' for user '${userid}'`);
      return tokenInfo(t);
    },
  },
  {
    method: 'POST', path: '/access/users/{userid}/token/{tokenid}', perm: (p) => [`/access/users/${String(p.userid)}`, 'User.Modify'],
    handler: (ctx) => {
      const userid = str(ctx, 'userid') ?? '';
      const tokenid = str(ctx, 'tokenid') ?? '';
      userOrDie(ctx, userid);
      if (tokensOf(ctx, userid).some((t) => t.tokenid === tokenid)) throw paramError({ tokenid: 'Token already exists.' });
      const token: ApiToken = {
        userid, tokenid, privsep: str(ctx, 'privsep') === '0' ? 0 : 1, secret: randomUUID(), expire: num(ctx, 'expire') ?? 0,
        ...(str(ctx, 'comment') ? { comment: str(ctx, 'comment') } : {}),
      };
      ctx.host.state.access.tokens.push(token);
      ctx.host.record('api', 'token.create', undefined, `${userid}!${tokenid} privsep=${token.privsep}`);
      return { 'full-tokenid': `${userid}!${tokenid}`, info: tokenInfo(token), value: token.secret };
    },
  },
  {
    method: 'DELETE', path: '/access/users/{userid}/token/{tokenid}', perm: (p) => [`/access/users/${String(p.userid)}`, 'User.Modify'],
    handler: (ctx) => {
      const userid = str(ctx, 'userid') ?? '';
      const tokenid = str(ctx, 'tokenid') ?? '';
      userOrDie(ctx, userid);
      const access = ctx.host.state.access;
      const before = access.tokens.length;
      access.tokens = access.tokens.filter((t) => !(t.userid === userid && t.tokenid === tokenid));
      if (access.tokens.length === before) throw dieError(`no such token '${tokenid}' for user '${userid}'`);
      ctx.host.record('api', 'token.delete', undefined, `${userid}!${tokenid}`);
      return null;
    },
  },
];
