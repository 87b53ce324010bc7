/**
 * A machine's filesystem: just-bash's InMemoryFs plus virtual files rendered from the host model
 * (`/etc/pve/...conf`, `/proc/devices`, `/sys/bus/pci/...`, `/dev/nvidia*`). Virtual files are read from the
 * state on every access and writes go back into the state, so the file and the model are one truth.
 */
import { InMemoryFs } from 'just-bash';
import type { IFileSystem } from 'just-bash';

type FileContent = string | Uint8Array;
type FsStat = Awaited<ReturnType<IFileSystem['stat']>>;
type DirentEntry = { name: string; isFile: boolean; isDirectory: boolean; isSymbolicLink: boolean };

export interface VirtualFile {
  read(): string;
  /** Throw an Error whose message is the errno text (`No such device`) to fail the write. */
  write?(content: string): void;
  mode?: number;
  /** Character devices show up as files; the lab has no device nodes. */
  symlink?: string;
}

export interface VirtualProvider {
  file(path: string): VirtualFile | undefined;
  /** Entries of a virtual directory (`undefined` = not a virtual directory). */
  dir(path: string): string[] | undefined;
}

/** A failure the shell reports as `bash: line 1: <text>` and that aborts the command line. */
export class ShellError extends Error {
  constructor(readonly text: string) {
    super(text);
    this.name = 'ShellError';
  }
}

/** Kernel/pmxcfs trees: a path there that no provider renders does not exist and cannot be created. */
const VIRTUAL_ROOTS = ['/sys/', '/proc/', '/etc/pve/', '/dev/nvidia'];

/**
 * Where providers render anything (the trees above plus their parents' own entries). Other paths skip them:
 * just-bash stats every PATH directory for every command, and asking four providers each time was a visible
 * share of the lab's CPU with 50 hosts in one process.
 */
const PROVIDED = /^\/(sys|proc|dev|etc\/pve)(\/|$)/;

const enoent = (op: string, p: string): Error => new Error(`ENOENT: no such file or directory, ${op} '${p}'`);

function norm(p: string): string {
  const parts: string[] = [];
  for (const s of p.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') parts.pop();
    else parts.push(s);
  }
  return `/${parts.join('/')}`;
}

export class LabFs implements IFileSystem {
  readonly inner: InMemoryFs;
  providers: VirtualProvider[] = [];
  /** Original content (null = absent) of paths changed since the last takeChanges(), for net-change journaling. */
  private readonly dirty = new Map<string, string | null>();

  private async before(p: string): Promise<void> {
    if (this.dirty.has(p) || /^\/(tmp|var\/tmp|var\/cache|var\/lib\/apt|run)\//.test(p)) return;
    const old = (await this.inner.exists(p)) ? await this.inner.readFile(p).catch(() => null) : null;
    this.dirty.set(p, old);
  }

  private onWrite(_p: string): void {
    // content changes are collected by before()/takeChanges()
  }

  /** Paths whose content really changed since the last call (a rewrite with the same bytes is no change). */
  async takeChanges(only: (path: string) => boolean = () => true): Promise<string[]> {
    const out: string[] = [];
    for (const [p, old] of [...this.dirty]) {
      if (!only(p)) continue;
      this.dirty.delete(p);
      const now = (await this.inner.exists(p)) ? await this.inner.readFile(p).catch(() => null) : null;
      if (now !== old) out.push(p);
    }
    return out;
  }

  constructor(files: Record<string, string> = {}, dirs: readonly string[] = []) {
    this.inner = new InMemoryFs(files);
    // Directories a Debian 12 system has even when empty (a saved state keeps files only: they are made again).
    for (const d of dirs) void this.inner.mkdir(d, { recursive: true });
  }

  private vfile(p: string): VirtualFile | undefined {
    if (!PROVIDED.test(p)) return undefined;
    for (const pr of this.providers) {
      const f = pr.file(p);
      if (f) return f;
    }
    return undefined;
  }

  private vdir(p: string): string[] | undefined {
    if (!PROVIDED.test(p)) return undefined;
    let out: string[] | undefined;
    for (const pr of this.providers) {
      const d = pr.dir(p);
      if (d) out = [...(out ?? []), ...d];
    }
    return out;
  }

  private vstat(p: string): FsStat | undefined {
    const f = this.vfile(p);
    const mtime = new Date();
    if (f) return { isFile: true, isDirectory: false, isSymbolicLink: false, mode: f.mode ?? 0o644, size: f.read().length, mtime };
    if (this.vdir(p)) return { isFile: false, isDirectory: true, isSymbolicLink: false, mode: 0o755, size: 0, mtime };
    return undefined;
  }

  async readFile(path: string, options?: Parameters<IFileSystem['readFile']>[1]): Promise<string> {
    const f = this.vfile(norm(path));
    if (f) return f.read();
    return this.inner.readFile(path, options);
  }

  async readFileBuffer(path: string): Promise<Uint8Array> {
    const f = this.vfile(norm(path));
    if (f) return new TextEncoder().encode(f.read());
    return this.inner.readFileBuffer(path);
  }

  private async writeVirtual(p: string, content: FileContent, append: boolean): Promise<boolean> {
    const f = this.vfile(p);
    if (!f) {
      if (VIRTUAL_ROOTS.some((r) => p.startsWith(r))) throw new ShellError(`${p}: No such file or directory`);
      return false;
    }
    if (!f.write) throw new Error(`EACCES: permission denied, open '${p}'`);
    const text = typeof content === 'string' ? content : new TextDecoder().decode(content);
    if (text === '' && !append) return true; // the shell opens (truncates) a redirect target before writing
    f.write(append ? f.read() + text : text);
    return true;
  }

  /** A file is created only in a directory that exists (the kernel's ENOENT); just-bash's own fs makes the parents. */
  private async parentExists(p: string): Promise<void> {
    const dir = p.replace(/\/[^/]*$/, '') || '/';
    if (dir === '/' || this.vdir(dir)) return;
    const st = await this.inner.stat(dir).catch(() => undefined);
    if (!st?.isDirectory) throw new ShellError(`${p}: ${st ? 'Not a directory' : 'No such file or directory'}`);
  }

  async writeFile(path: string, content: FileContent, options?: Parameters<IFileSystem['writeFile']>[2]): Promise<void> {
    const p = norm(path);
    if (await this.writeVirtual(p, content, false)) return;
    await this.parentExists(p);
    await this.before(p);
    await this.inner.writeFile(p, content, options);
    this.onWrite(p);
  }

  async appendFile(path: string, content: FileContent, options?: Parameters<IFileSystem['appendFile']>[2]): Promise<void> {
    const p = norm(path);
    if (await this.writeVirtual(p, content, true)) return;
    await this.parentExists(p);
    await this.before(p);
    await this.inner.appendFile(p, content, options);
    this.onWrite(p);
  }

  async exists(path: string): Promise<boolean> {
    const p = norm(path);
    return this.vstat(p) !== undefined || this.inner.exists(p);
  }

  async stat(path: string): Promise<FsStat> {
    const p = norm(path);
    return this.vstat(p) ?? this.inner.stat(p);
  }

  async lstat(path: string): Promise<FsStat> {
    const p = norm(path);
    return this.vstat(p) ?? this.inner.lstat(p);
  }

  async mkdir(path: string, options?: { recursive?: boolean }): Promise<void> {
    const p = norm(path);
    if (this.vdir(p)) {
      if (options?.recursive) return;
      throw new Error(`EEXIST: file already exists, mkdir '${p}'`);
    }
    await this.inner.mkdir(p, options);
  }

  async readdir(path: string): Promise<string[]> {
    const p = norm(path);
    const v = this.vdir(p);
    let real: string[] = [];
    if (await this.inner.exists(p)) real = await this.inner.readdir(p);
    else if (!v) throw enoent('scandir', p);
    return [...new Set([...real, ...(v ?? [])])].sort();
  }

  async readdirWithFileTypes(path: string): Promise<DirentEntry[]> {
    const p = norm(path);
    const names = await this.readdir(p);
    const out: DirentEntry[] = [];
    for (const name of names) {
      const st = await this.lstat(`${p === '/' ? '' : p}/${name}`);
      out.push({ name, isFile: st.isFile, isDirectory: st.isDirectory, isSymbolicLink: st.isSymbolicLink });
    }
    return out;
  }

  async rm(path: string, options?: { recursive?: boolean; force?: boolean }): Promise<void> {
    const p = norm(path);
    if (this.vstat(p)) throw new Error(`EACCES: permission denied, rm '${p}'`);
    if ((await this.inner.lstat(p).catch(() => null))?.isFile) await this.before(p);
    await this.inner.rm(p, options);
    this.onWrite(p);
  }

  async cp(src: string, dest: string, options?: { recursive?: boolean }): Promise<void> {
    const s = norm(src);
    const f = this.vfile(s);
    if (f) { await this.writeFile(dest, f.read()); return; }
    await this.before(norm(dest));
    await this.inner.cp(s, norm(dest), options);
    this.onWrite(norm(dest));
  }

  async mv(src: string, dest: string): Promise<void> {
    const s = norm(src);
    const d = norm(dest);
    if (this.vfile(d)) {
      await this.writeFile(d, await this.inner.readFile(s));
      await this.inner.rm(s);
      return;
    }
    await this.before(s);
    await this.before(d);
    await this.inner.mv(s, d);
    this.onWrite(d);
  }

  resolvePath(base: string, path: string): string {
    return this.inner.resolvePath(base, path);
  }

  getAllPaths(): string[] {
    return this.inner.getAllPaths();
  }

  async chmod(path: string, mode: number): Promise<void> {
    const p = norm(path);
    if (this.vstat(p)) return;
    await this.inner.chmod(p, mode);
    this.onWrite(p);
  }

  async symlink(target: string, linkPath: string): Promise<void> {
    await this.inner.symlink(target, linkPath);
  }

  async link(existingPath: string, newPath: string): Promise<void> {
    await this.inner.link(existingPath, newPath);
  }

  async readlink(path: string): Promise<string> {
    const f = this.vfile(norm(path));
    if (f?.symlink) return f.symlink;
    return this.inner.readlink(path);
  }

  async realpath(path: string): Promise<string> {
    const p = norm(path);
    if (this.vstat(p)) return p;
    return this.inner.realpath(p);
  }

  async utimes(path: string, atime: Date, mtime: Date): Promise<void> {
    const p = norm(path);
    if (this.vstat(p)) return;
    await this.inner.utimes(p, atime, mtime);
  }

  /** Regular files (not virtual) with their content, for saving the state. */
  async snapshot(skip: (path: string) => boolean): Promise<Array<{ path: string; content: string; mode: number }>> {
    const out: Array<{ path: string; content: string; mode: number }> = [];
    for (const p of this.inner.getAllPaths()) {
      if (skip(p)) continue;
      const st = await this.inner.lstat(p).catch(() => undefined);
      if (!st || !st.isFile) continue;
      const buf = await this.inner.readFileBuffer(p);
      out.push({ path: p, content: Buffer.from(buf).toString('base64'), mode: st.mode });
    }
    return out;
  }
}
