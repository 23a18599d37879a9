// What runs inside the guest: busybox's /init as a shell script, and the workloads it can run.
// The guest talks to the host only through its serial console, in lines that start with a
// marker the host parses (qemu.ts); everything else on the console is the kernel's and the
// workload's own output, kept for the operator.
//
//   FITBROKER-SYMS-BEGIN / -END   (profile boot) the kernel symbols the profile needs
//   FITBROKER-READY <workload>    the workload starts now
//   FITBROKER-ROUND <n>           the workload finished its n-th round: the guest's progress,
//                                 which the back end uses to split wall time into the guest's
//                                 compute and the time monitoring cost it (docs/vmi.md)
//   FITBROKER-PS-BEGIN <n> / FITBROKER-PS <pid> <ppid> <comm> / FITBROKER-PS-END <n>
//                                 the guest's own process list, as its /proc shows it
//
// The kernel command line chooses: fitbroker.mode=profile|run and fitbroker.workload=NAME.

/** A workload the guest can run: one shell loop, one progress line per round. */
export interface GuestWorkload {
  readonly name: string;
  readonly description: string;
  /** The loop body (busybox sh); `$i` is the round number. */
  readonly round: string;
}

/** The symbols the profile boot prints: the back end's anchors in the guest kernel. */
export const PROFILE_SYMBOLS = ['init_task', 'sys_call_table', 'current_task', 'pcpu_hot', '__per_cpu_offset', 'do_syscall_64'] as const;

export const GUEST_WORKLOADS: Readonly<Record<string, GuestWorkload>> = {
  files: {
    name: 'files',
    description: 'the shell opens two small files per round with its own redirections (openat, fcntl, dup2, close; no fork)',
    round: ': < /etc/hostname; : < /etc/motd',
  },
  exec: {
    name: 'exec',
    description: 'each round runs cat and head on a small file each (fork, execve, openat, read, write, exit, wait4)',
    round: 'cat /etc/hostname > /dev/null; head -n 1 /etc/motd > /dev/null',
  },
  idle: {
    name: 'idle',
    description: 'sleeps a second per round and prints the guest\'s own process list every round',
    round: 'sleep 1; fitbroker_ps',
  },
};

const PS_FUNCTION = `fitbroker_ps() {
  n=$((n+1))
  echo "FITBROKER-PS-BEGIN $n"
  for d in /proc/[0-9]*; do
    [ -r "$d/stat" ] || continue
    read -r s < "$d/stat" 2>/dev/null || continue
    pid=\${s%% *}; rest=\${s#*(}; comm=\${rest%)*}; tail=\${rest##*) }; set -- $tail
    echo "FITBROKER-PS $pid $2 $comm"
  done
  echo "FITBROKER-PS-END $n"
}`;

/** /init: mounts, then prints the profile's symbols or runs the chosen workload forever. */
export function initScript(): string {
  const cases = Object.values(GUEST_WORKLOADS)
    .map((w) => `  ${w.name}) while :; do i=$((i+1)); ${w.round}; echo "FITBROKER-ROUND $i"; done ;;`)
    .join('\n');
  const symbols = PROFILE_SYMBOLS.join('|');
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo 0 > /proc/sys/kernel/kptr_restrict
hostname fitbroker-guest
mode=run; workload=files
for a in $(cat /proc/cmdline); do
  case "$a" in fitbroker.mode=*) mode=\${a#*=} ;; fitbroker.workload=*) workload=\${a#*=} ;; esac
done
${PS_FUNCTION}
if [ "$mode" = profile ]; then
  echo FITBROKER-SYMS-BEGIN
  grep -E ' (${symbols}|__x64_sys_[a-z0-9_]+)$' /proc/kallsyms
  echo FITBROKER-SYMS-END
  while :; do sleep 60; done
fi
i=0; n=0
echo "FITBROKER-READY $workload"
case "$workload" in
${cases}
  *) echo "FITBROKER-ERROR no workload $workload"; poweroff -f ;;
esac
`;
}
