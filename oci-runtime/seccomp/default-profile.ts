// berth's RuntimeDefault seccomp profile, as typed data. Equivalent in effect to the default profile of Docker
// and containerd: everything not listed fails with EPERM; the list below is what an ordinary container
// needs, with argument rules for clone/clone3, personality and socket, and the syscalls a capability makes
// useful again when the container is given that capability.

/** A rule applies only when all of its conditions hold. */
export interface RuleCondition {
  /** Every one of these capabilities is in the bounding set. */
  caps?: readonly string[];
  /** None of these capabilities is in the bounding set. */
  withoutCaps?: readonly string[];
  /** The native architecture is one of these (short names: amd64, x86, x32, arm64, arm, s390x, ...). */
  arches?: readonly string[];
  /** The native architecture is none of these. */
  notArches?: readonly string[];
  /** The running kernel is at least this version ("major.minor"). */
  minKernel?: string;
}

export type ArgOp = "SCMP_CMP_NE" | "SCMP_CMP_LT" | "SCMP_CMP_LE" | "SCMP_CMP_EQ" | "SCMP_CMP_GE" | "SCMP_CMP_GT" | "SCMP_CMP_MASKED_EQ";

export interface ArgRule { index: number; op: ArgOp; value: number; valueTwo?: number }

export interface ProfileRule {
  /** Why the rule exists (kept out of the generated spec). */
  why: string;
  names: readonly string[];
  /** "allow", or fail with this errno. */
  action: "allow" | { errno: number };
  args?: readonly ArgRule[];
  when?: RuleCondition;
}

export const EPERM = 1;
export const ENOSYS = 38;

const list = (s: string): string[] => s.trim().split(/\s+/);

/** Namespace flags of clone(2): CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET. */
export const CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;

/** personality(2) values a container may set: PER_LINUX, UNAME26, PER_LINUX32, PER_LINUX32|UNAME26, and the query 0xffffffff. */
export const ALLOWED_PERSONALITIES = [0x0, 0x0008, 0x20000, 0x20008, 0xffffffff] as const;

/** Socket families refused: AF_ALG (38) and AF_VSOCK (40). Everything else, AF_NETLINK included, is allowed. */
export const AF_ALG = 38;
export const AF_VSOCK = 40;

/** Syscalls any container may make, on any architecture (names missing on an architecture are ignored by the runtime). */
const ALWAYS_ALLOWED = list(`
accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3
epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2
execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark
fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork
fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64
futex futex_requeue futex_time64 futex_wait futex_waitv futex_wake futimesat getcpu getcwd getdents getdents64
getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp
getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage
getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr getxattrat
inotify_add_watch inotify_init inotify_init1 inotify_rm_watch
io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit
ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat
listen listmount listxattr listxattrat llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64
madvise map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat
mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64
mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget msgrcv msgsnd msync munlock munlockall munmap
name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause pidfd_open pidfd_send_signal
pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64
process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv
recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr removexattrat rename renameat renameat2
restart_syscall riscv_hwprobe rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn
rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo
sched_getaffinity sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam sched_setscheduler
sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg
sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid
setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit
set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32 setxattr setxattrat
shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall socketpair
splice stat stat64 statfs statfs64 statmount statx symlink symlinkat sync sync_file_range syncfs sysinfo tee
tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64
ugetrlimit umask uname unlink unlinkat uretprobe utime utimensat utimensat_time64 utimes vfork vmsplice
wait4 waitid waitpid write writev
`);

const allow = (why: string, names: readonly string[], when?: RuleCondition, args?: readonly ArgRule[]): ProfileRule =>
  ({ why, names, action: "allow", ...(when ? { when } : {}), ...(args ? { args } : {}) });

const eq0 = (value: number): ArgRule[] => [{ index: 0, op: "SCMP_CMP_EQ", value }];

/** The rules, in the order they are emitted. */
export const RUNTIME_DEFAULT_RULES: readonly ProfileRule[] = [
  allow("ordinary process, file, socket, time and ipc calls", ALWAYS_ALLOWED),
  allow("ptrace of own children became safe with the 4.8 seccomp fix", list("process_vm_readv process_vm_writev ptrace"), { minKernel: "4.8" }),
  // socket(): every family except AF_ALG and AF_VSOCK.
  allow("socket families below AF_ALG", ["socket"], undefined, [{ index: 0, op: "SCMP_CMP_LT", value: AF_ALG }]),
  allow("socket family AF_NFC (between AF_ALG and AF_VSOCK)", ["socket"], undefined, eq0(AF_ALG + 1)),
  allow("socket families above AF_VSOCK", ["socket"], undefined, [{ index: 0, op: "SCMP_CMP_GT", value: AF_VSOCK }]),
  ...ALLOWED_PERSONALITIES.map((p) => allow(`personality(${p.toString(16)})`, ["personality"], undefined, eq0(p))),
  // Architecture-specific calls.
  allow("ppc64le", list("sync_file_range2 swapcontext"), { arches: ["ppc64le"] }),
  allow("arm", list("arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls"), { arches: ["arm", "arm64"] }),
  allow("x86_64 thread state", ["arch_prctl"], { arches: ["amd64", "x32"] }),
  allow("x86 ldt", ["modify_ldt"], { arches: ["amd64", "x32", "x86"] }),
  allow("s390", list("s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr"), { arches: ["s390", "s390x"] }),
  allow("riscv64", ["riscv_flush_icache"], { arches: ["riscv64"] }),
  // Calls made useful again by an added capability.
  allow("CAP_DAC_READ_SEARCH", ["open_by_handle_at"], { caps: ["CAP_DAC_READ_SEARCH"] }),
  allow("CAP_SYS_ADMIN: mounts, namespaces, hostname, bpf, perf, quotas", list(`
    bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie lsm_get_self_attr lsm_list_modules
    lsm_set_self_attr mount mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname
    sethostname setns syslog umount umount2 unshare`), { caps: ["CAP_SYS_ADMIN"] }),
  allow("clone without namespace flags (flags are argument 0)", ["clone"],
    { withoutCaps: ["CAP_SYS_ADMIN"], notArches: ["s390", "s390x"] },
    [{ index: 0, op: "SCMP_CMP_MASKED_EQ", value: CLONE_NAMESPACE_FLAGS, valueTwo: 0 }]),
  allow("clone without namespace flags (s390 passes flags as argument 1)", ["clone"],
    { withoutCaps: ["CAP_SYS_ADMIN"], arches: ["s390", "s390x"] },
    [{ index: 1, op: "SCMP_CMP_MASKED_EQ", value: CLONE_NAMESPACE_FLAGS, valueTwo: 0 }]),
  { why: "clone3 flags are behind a pointer: ENOSYS makes libc fall back to clone", names: ["clone3"],
    action: { errno: ENOSYS }, when: { withoutCaps: ["CAP_SYS_ADMIN"] } },
  allow("CAP_SYS_BOOT", ["reboot"], { caps: ["CAP_SYS_BOOT"] }),
  allow("CAP_SYS_CHROOT", ["chroot"], { caps: ["CAP_SYS_CHROOT"] }),
  allow("CAP_SYS_MODULE", list("delete_module init_module finit_module"), { caps: ["CAP_SYS_MODULE"] }),
  allow("CAP_SYS_PACCT", ["acct"], { caps: ["CAP_SYS_PACCT"] }),
  allow("CAP_SYS_PTRACE", list("kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace"), { caps: ["CAP_SYS_PTRACE"] }),
  allow("CAP_SYS_RAWIO", list("iopl ioperm"), { caps: ["CAP_SYS_RAWIO"] }),
  allow("CAP_SYS_TIME", list("settimeofday stime clock_settime clock_settime64"), { caps: ["CAP_SYS_TIME"] }),
  allow("CAP_SYS_TTY_CONFIG", ["vhangup"], { caps: ["CAP_SYS_TTY_CONFIG"] }),
  allow("CAP_SYS_NICE", list("get_mempolicy mbind set_mempolicy set_mempolicy_home_node"), { caps: ["CAP_SYS_NICE"] }),
  allow("CAP_SYSLOG", ["syslog"], { caps: ["CAP_SYSLOG"] }),
  allow("CAP_BPF", ["bpf"], { caps: ["CAP_BPF"] }),
  allow("CAP_PERFMON", ["perf_event_open"], { caps: ["CAP_PERFMON"] }),
];
