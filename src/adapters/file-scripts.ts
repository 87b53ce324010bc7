// Shell scripts that replace a file with exactly the bytes sent on stdin, or leave it alone: what Host.write,
// Host.ctWrite and SshPool.upload's `cat` fallback run on the far side. Content never enters an argv.
import { quote } from './quote';

/** The copy of a file being replaced sits beside it under this suffix until every byte has arrived. */
export const REPLACEMENT_SUFFIX = '.pve-vllm-tmp';

/**
 * Files go up on stdin, and a worker that dies mid-upload (or a dropped link) ends that stdin early: sshd hands
 * the command EOF, `cat` exits 0, and a plain `cat > f.tmp && mv f.tmp f` would put a truncated file in place (a
 * half sudoers rule, a CT config cut off before its GPU lines) until the retry. So the host counts what arrived
 * and replaces the file only when every byte did; otherwise it leaves the old file, removes its copy and fails.
 * These lines take stdin into the file named by $t, or remove it and fail unless exactly `bytes` bytes came.
 */
function receiveInto(path: string, bytes: number): string[] {
  const shown = path.replace(/["$`\\]/g, '');
  return [
    'cat > "$t" || { rm -f "$t"; exit 1; }',
    'n=$(wc -c < "$t")',
    `if [ "$n" -ne ${bytes} ]; then rm -f "$t"; echo "pve-vllm: $n of ${bytes} bytes of ${shown} arrived; left unchanged" >&2; exit 1; fi`,
  ];
}

/** Replace `path` through `path.pve-vllm-tmp` with exactly `bytes` bytes of stdin, or not at all. */
export function replaceFileScript(path: string, bytes: number, mode: string): string {
  return ['umask 077', `t=${quote([`${path}${REPLACEMENT_SUFFIX}`])}`, ...receiveInto(path, bytes), `chmod ${mode} "$t" && mv "$t" ${quote([path])}`].join('\n');
}

/**
 * The script that writes `path` from exactly `bytes` bytes of stdin, or not at all: beside the file, or for a
 * pmxcfs file (/etc/pve, where only a guest's own file name may exist and modes are fixed) in one write.
 */
export function writeFileScript(path: string, bytes: number, mode: string): string {
  return onPmxcfs(path) ? pmxcfsWriteScript(path, bytes) : replaceFileScript(path, bytes, mode);
}

/** Whether `path` is on Proxmox's cluster filesystem, which takes no copy beside a file. */
export function onPmxcfs(path: string): boolean {
  return path.startsWith('/etc/pve/');
}

/** The same for a pmxcfs file (/etc/pve): the copy waits in a temporary file and goes in with one write. */
export function pmxcfsWriteScript(path: string, bytes: number): string {
  return ['umask 077', 't=$(mktemp) || exit 1', ...receiveInto(path, bytes), `cat "$t" > ${quote([path])}; s=$?; rm -f "$t"; exit $s`].join('\n');
}
