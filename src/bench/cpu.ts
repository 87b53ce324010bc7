// CPU time of the processes a concurrency round runs on (worker, bench process with the simulated hosts, the
// Temporal dev server), from /proc, so the table can say where a CPU-bound round's time went.
import { readdirSync, readFileSync } from 'node:fs';

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks (100 on every mainstream architecture). */
const TICKS_PER_SECOND = 100;

/** User + system CPU seconds a process has used so far; undefined once it is gone (or not on Linux). */
export function cpuSeconds(pid: number | 'self'): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** The dev server listening on `address` (host:port): the temporal process started with that --port. */
export function devServerPid(address: string): number | undefined {
  const port = address.slice(address.lastIndexOf(':') + 1);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const at = argv.indexOf('--port');
      if (argv.includes('start-dev') && at >= 0 && argv[at + 1] === port && !/\.sh$/.test(argv[0] ?? '')) return Number(entry);
    } catch {
      // exited while we looked
    }
  }
  return undefined;
}
