/**
 * Stopping a remote command that timed out or was cancelled.
 *
 * Closing the SSH channel is not enough: without a pty nothing hangs the command up, so `docker pull` or
 * `sleep` keeps running on the host. The SSH `signal` request would do it, but OpenSSH refuses it for root
 * logins ("session signalling requires privilege separation", and root sessions run without privsep after
 * auth), and root is exactly how we log in to a Proxmox host.
 *
 * So every command carries a run id in its environment, sent as an SSH `env` request under an `LC_*` name
 * (Debian's and Proxmox's stock sshd_config has `AcceptEnv LANG LC_*`; nothing goes into the argv). To stop
 * it, a helper script finds the processes carrying that id, sends TERM to them and their sessions (sudo relays
 * TERM to its command), and KILL to whatever is left two seconds later. If the host ignores the env request,
 * the helper finds nothing and the command is left to run out, as before.
 */

export const RUN_ID_ENV = 'LC_PVE_VLLM_RUN';

export const KILL_RUN_SCRIPT = `
id="$1"
case "$id" in ''|*[!0-9a-f-]*) exit 2 ;; esac
marked() {
  for e in /proc/[0-9]*/environ; do
    if grep -qzx "${RUN_ID_ENV}=$id" "$e" 2>/dev/null; then p="\${e#/proc/}"; echo "\${p%/environ}"; fi
  done
}
pids=$(marked)
[ -n "$pids" ] || exit 0
sids=$(for p in $pids; do ps -o sid= -p "$p" 2>/dev/null | tr -d ' '; done | sort -u)
for s in $sids; do [ "$s" -gt 1 ] && pkill -TERM -s "$s"; done
kill -TERM $pids 2>/dev/null
sleep 2
for s in $sids; do [ "$s" -gt 1 ] && pkill -KILL -s "$s"; done
left=$(marked)
[ -z "$left" ] || kill -KILL $left 2>/dev/null
exit 0
`;
