//! The seccomp profile every container runs under: a default-deny allowlist with the
//! semantics of the OCI/moby (Docker) default profile for a container with Docker's default
//! capabilities. Anything not listed fails with EPERM; `clone` may not create namespaces,
//! `clone3` fails with ENOSYS (so libc falls back to `clone`, whose flags can be checked),
//! `personality` takes only the values moby allows, and `socket` refuses AF_VSOCK. Stricter
//! than moby: io_uring, `ptrace` and `process_vm_*`, `name_to_handle_at`, `adjtimex` and
//! `clock_adjtime` are refused too.
//!
//! libcontainer resolves each name with libseccomp and silently skips one it cannot resolve
//! (with only a tracing warning), so a misspelt name would quietly refuse a syscall the list
//! means to allow: the tests resolve every name through libseccomp itself.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

/// Allowed with any arguments: x86_64 names (which x86 and x32 share where they have them).
pub const ALLOWED: &[&str] = &[
    // Reading and writing file descriptors.
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "preadv2",
    "pwritev",
    "pwritev2",
    "lseek",
    "sendfile",
    "splice",
    "tee",
    "vmsplice",
    "copy_file_range",
    "ioctl",
    // Opening, closing and duplicating descriptors.
    "open",
    "openat",
    "openat2",
    "creat",
    "close",
    "close_range",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "flock",
    "pipe",
    "pipe2",
    // Syncing, sizing and advising files.
    "fsync",
    "fdatasync",
    "sync",
    "syncfs",
    "sync_file_range",
    "truncate",
    "ftruncate",
    "fallocate",
    "fadvise64",
    "readahead",
    // File metadata, directories and links.
    "stat",
    "fstat",
    "lstat",
    "newfstatat",
    "statx",
    "statfs",
    "fstatfs",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "readlinkat",
    "getdents",
    "getdents64",
    "getcwd",
    "chdir",
    "fchdir",
    "chroot", // CAP_SYS_CHROOT is in Docker's default set, so moby allows it
    "mkdir",
    "mkdirat",
    "mknod", // the device cgroup decides which nodes can be opened
    "mknodat",
    "rmdir",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "unlink",
    "unlinkat",
    "chmod",
    "fchmod",
    "fchmodat",
    "chown",
    "fchown",
    "fchownat",
    "lchown",
    "umask",
    "utime",
    "utimes",
    "utimensat",
    "futimesat",
    // Extended attributes.
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "listxattr",
    "llistxattr",
    "flistxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    // Watching files (fanotify_init needs CAP_SYS_ADMIN, so only marks are listed).
    "inotify_init",
    "inotify_init1",
    "inotify_add_watch",
    "inotify_rm_watch",
    "fanotify_mark",
    // Memory.
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "mincore",
    "msync",
    "mlock",
    "mlock2",
    "mlockall",
    "munlock",
    "munlockall",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "remap_file_pages",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    // Processes and threads (clone has its own rule below).
    "fork",
    "vfork",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "wait4",
    "waitid",
    "kill",
    "tkill",
    "tgkill",
    "pidfd_open",
    "pidfd_send_signal",
    "process_mrelease",
    "getpid",
    "getppid",
    "gettid",
    "getpgid",
    "setpgid",
    "getpgrp",
    "getsid",
    "setsid",
    "set_tid_address",
    "set_robust_list",
    "get_robust_list",
    "rseq",
    "restart_syscall",
    "prctl",
    "arch_prctl",
    "modify_ldt",
    "get_thread_area",
    "set_thread_area",
    "seccomp",
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
    // Limits, priorities and system information.
    "getrlimit",
    "setrlimit",
    "prlimit64",
    "getrusage",
    "getpriority",
    "setpriority",
    "ioprio_get",
    "ioprio_set",
    "uname",
    "sysinfo",
    "getcpu",
    "getrandom",
    // Credentials and capabilities (the bounding set limits what they can do).
    "capget",
    "capset",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "getgroups",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setfsuid",
    "setfsgid",
    "setgroups",
    // Signals.
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigpending",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "pause",
    // Clocks and timers (reading only; setting the clock is refused).
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "nanosleep",
    "gettimeofday",
    "time",
    "times",
    "alarm",
    "getitimer",
    "setitimer",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    // Scheduling.
    "sched_yield",
    "sched_getaffinity",
    "sched_setaffinity",
    "sched_getattr",
    "sched_setattr",
    "sched_getparam",
    "sched_setparam",
    "sched_getscheduler",
    "sched_setscheduler",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_rr_get_interval",
    // Futexes, polling and event descriptors.
    "futex",
    "futex_waitv",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_wait",
    "epoll_wait_old",
    "epoll_pwait",
    "epoll_pwait2",
    "eventfd",
    "eventfd2",
    // Linux AIO (io_uring is refused).
    "io_setup",
    "io_destroy",
    "io_submit",
    "io_cancel",
    "io_getevents",
    "io_pgetevents",
    // Sockets (socket itself has its own rule below).
    "socketpair",
    "bind",
    "listen",
    "accept",
    "accept4",
    "connect",
    "getsockname",
    "getpeername",
    "getsockopt",
    "setsockopt",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "sendmmsg",
    "recvmmsg",
    "shutdown",
    // System V IPC and POSIX message queues (the container has its own IPC namespace).
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "semget",
    "semop",
    "semtimedop",
    "semctl",
    "shmget",
    "shmat",
    "shmdt",
    "shmctl",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
];

/// Allowed with any arguments, for 32-bit x86 programs only: the i386 names of calls
/// already in [`ALLOWED`] (16-bit-uid-free `*32`, large-file `*64`, 64-bit-time `*_time64`,
/// the socketcall and ipc multiplexers). libseccomp knows them on x86_64 as pseudo-syscalls
/// and puts them in the x86 filter alone.
pub const ALLOWED_I386: &[&str] = &[
    // Files.
    "_llseek",
    "_newselect",
    "fadvise64_64",
    "fcntl64",
    "fstat64",
    "fstatat64",
    "fstatfs64",
    "ftruncate64",
    "lstat64",
    "sendfile64",
    "stat64",
    "statfs64",
    "truncate64",
    "chown32",
    "fchown32",
    "lchown32",
    "utimensat_time64",
    // Memory, processes and signals.
    "mmap2",
    "ugetrlimit",
    "waitpid",
    "sigprocmask",
    "sigreturn",
    // Credentials.
    "getuid32",
    "geteuid32",
    "getgid32",
    "getegid32",
    "getresuid32",
    "getresgid32",
    "getgroups32",
    "setuid32",
    "setgid32",
    "setreuid32",
    "setregid32",
    "setresuid32",
    "setresgid32",
    "setfsuid32",
    "setfsgid32",
    "setgroups32",
    // 64-bit time.
    "clock_gettime64",
    "clock_getres_time64",
    "clock_nanosleep_time64",
    "futex_time64",
    "io_pgetevents_time64",
    "mq_timedreceive_time64",
    "mq_timedsend_time64",
    "ppoll_time64",
    "pselect6_time64",
    "recvmmsg_time64",
    "rt_sigtimedwait_time64",
    "sched_rr_get_interval_time64",
    "semtimedop_time64",
    "timer_gettime64",
    "timer_settime64",
    "timerfd_gettime64",
    "timerfd_settime64",
    // Multiplexers, as moby allows them (socketcall reaches socket past the AF_VSOCK rule;
    // glibc uses the direct socket calls of Linux 4.3 and later).
    "socketcall",
    "ipc",
];

/// The clone flags that make new namespaces: `clone` is allowed only without all of them.
pub const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// The `personality` arguments moby allows: PER_LINUX, PER_LINUX32, UNAME26,
/// UNAME26|PER_LINUX32, and 0xffffffff (query only).
pub const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// AF_VSOCK: the one socket family moby's profile refuses.
const AF_VSOCK: u64 = libc::AF_VSOCK as u64;

/// A comparison of argument 0 (the only one this profile looks at).
fn arg0(op: LinuxSeccompOperator, value: u64, value_two: Option<u64>) -> LinuxSeccompArg {
    let mut b = LinuxSeccompArgBuilder::default()
        .index(0usize)
        .op(op)
        .value(value);
    if let Some(v) = value_two {
        b = b.value_two(v);
    }
    b.build()
        .expect("every field of a seccomp argument is given")
}

fn rule(names: &[&str], action: LinuxSeccompAction, args: Vec<LinuxSeccompArg>) -> LinuxSyscall {
    let mut b = LinuxSyscallBuilder::default()
        .names(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .action(action);
    if !args.is_empty() {
        b = b.args(args);
    }
    b.build().expect("names and action are given")
}

fn allow(names: &[&str]) -> LinuxSyscall {
    rule(names, LinuxSeccompAction::ScmpActAllow, vec![])
}

/// `clone` when `flags & CLONE_NAMESPACE_FLAGS == 0` (flags are argument 0 on x86).
///
/// The OCI spec does not say which of `value` and `valueTwo` is the mask of
/// SCMP_CMP_MASKED_EQ. runc, crun and moby's profile take `value` as the mask and
/// `valueTwo` as the datum; libcontainer 0.7 takes them the other way round (`translate_op`
/// in its `seccomp/mod.rs`). Read that way, moby's rule `{value: mask}` has a zero mask,
/// and the filter libseccomp 2.5 builds from it lets every clone through, namespaces
/// included. So the rule is written as libcontainer reads it, and a test loads the profile
/// through libcontainer and checks that each namespace flag is refused.
fn clone_rule() -> LinuxSyscall {
    let no_namespaces = arg0(
        LinuxSeccompOperator::ScmpCmpMaskedEq,
        0,
        Some(CLONE_NAMESPACE_FLAGS),
    );
    rule(
        &["clone"],
        LinuxSeccompAction::ScmpActAllow,
        vec![no_namespaces],
    )
}

/// The container profile: errno EPERM for anything not allowed, on x86_64, x86 and x32.
pub fn profile() -> LinuxSeccomp {
    let mut syscalls = vec![allow(ALLOWED), allow(ALLOWED_I386), clone_rule()];
    // ENOSYS, not EPERM: libc then falls back to clone, whose flags the rule above checks.
    let mut clone3 = rule(&["clone3"], LinuxSeccompAction::ScmpActErrno, vec![]);
    clone3.set_errno_ret(Some(libc::ENOSYS as u32));
    syscalls.push(clone3);
    // One rule per value: the comparisons of one rule must all hold.
    for p in PERSONALITIES {
        syscalls.push(rule(
            &["personality"],
            LinuxSeccompAction::ScmpActAllow,
            vec![arg0(LinuxSeccompOperator::ScmpCmpEq, p, None)],
        ));
    }
    syscalls.push(rule(
        &["socket"],
        LinuxSeccompAction::ScmpActAllow,
        vec![arg0(LinuxSeccompOperator::ScmpCmpNe, AF_VSOCK, None)],
    ));
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(libc::EPERM as u32)
        .architectures(vec![
            Arch::ScmpArchX86_64,
            Arch::ScmpArchX86,
            Arch::ScmpArchX32,
        ])
        .syscalls(syscalls)
        .build()
        .expect("every field of the profile is given")
}

/// Every name some rule of `profile` allows, with or without conditions on its arguments.
pub fn allowed_names(profile: &LinuxSeccomp) -> Vec<&str> {
    profile
        .syscalls()
        .iter()
        .flatten()
        .filter(|r| r.action() == LinuxSeccompAction::ScmpActAllow)
        .flat_map(|r| r.names().iter().map(String::as_str))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::ffi::CString;
    use std::io;

    /// Calls a container must never make, from moby's refusals and our own.
    const REFUSED: &[&str] = &[
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "keyctl",
        "add_key",
        "request_key",
        "bpf",
        "mount",
        "umount",
        "umount2",
        "mount_setattr",
        "pivot_root",
        "unshare",
        "setns",
        "fsopen",
        "fsmount",
        "move_mount",
        "open_tree",
        "fspick",
        "fsconfig",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "kcmp",
        "pidfd_getfd",
        "process_madvise",
        "init_module",
        "finit_module",
        "delete_module",
        "create_module",
        "get_kernel_syms",
        "query_module",
        "clock_settime",
        "clock_settime64",
        "clock_adjtime",
        "clock_adjtime64",
        "settimeofday",
        "stime",
        "adjtimex",
        "reboot",
        "kexec_load",
        "kexec_file_load",
        "swapon",
        "swapoff",
        "acct",
        "lookup_dcookie",
        "perf_event_open",
        "userfaultfd",
        "quotactl",
        "quotactl_fd",
        "nfsservctl",
        "open_by_handle_at",
        "name_to_handle_at",
        "iopl",
        "ioperm",
        "vm86",
        "vm86old",
        "uselib",
        "_sysctl",
        "syslog",
        "sethostname",
        "setdomainname",
        "fanotify_init",
        "vhangup",
        "mbind",
        "set_mempolicy",
        "get_mempolicy",
        "clone3",
    ];

    // libseccomp's own resolver (linked through libcontainer), as libcontainer calls it.
    extern "C" {
        fn seccomp_syscall_resolve_name_arch(arch_token: u32, name: *const libc::c_char) -> i32;
    }
    const SCMP_ARCH_NATIVE: u32 = 0;
    const SCMP_ARCH_X86: u32 = 0x4000_0003; // AUDIT_ARCH_I386
    const SCMP_ARCH_X86_64: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
    const NR_SCMP_ERROR: i32 = -1;

    fn resolve(arch: u32, name: &str) -> i32 {
        let c = CString::new(name).unwrap();
        unsafe { seccomp_syscall_resolve_name_arch(arch, c.as_ptr()) }
    }

    #[test]
    fn no_name_is_listed_twice() {
        let mut seen = HashSet::new();
        for name in ALLOWED.iter().chain(ALLOWED_I386) {
            assert!(seen.insert(name), "{name} is listed twice");
        }
        let refused: HashSet<_> = REFUSED.iter().collect();
        assert_eq!(refused.len(), REFUSED.len(), "REFUSED has a duplicate");
    }

    #[test]
    fn every_name_is_a_syscall_libseccomp_knows() {
        for name in ALLOWED
            .iter()
            .chain(["clone", "clone3", "personality", "socket"].iter())
        {
            let nr = resolve(SCMP_ARCH_X86_64, name);
            assert!(
                nr >= 0,
                "{name} is not an x86_64 syscall to libseccomp ({nr})"
            );
        }
        for name in ALLOWED_I386 {
            let nr = resolve(SCMP_ARCH_X86, name);
            assert!(nr >= 0, "{name} is not an x86 syscall to libseccomp ({nr})");
            assert!(
                resolve(SCMP_ARCH_X86_64, name) < 0,
                "{name} is an x86_64 syscall: it belongs in ALLOWED"
            );
            // What libcontainer calls: an error here would make it skip the name.
            assert_ne!(resolve(SCMP_ARCH_NATIVE, name), NR_SCMP_ERROR, "{name}");
        }
    }

    #[test]
    fn the_profile_denies_by_default_and_refuses_the_dangerous_calls() {
        let p = profile();
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(libc::EPERM as u32));
        assert_eq!(
            p.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
        let allowed = allowed_names(&p);
        for name in REFUSED {
            assert!(!allowed.contains(name), "{name} must not be allowed");
        }
        let clone3 = p
            .syscalls()
            .iter()
            .flatten()
            .find(|r| r.names().iter().any(|n| n == "clone3"))
            .unwrap();
        assert_eq!(
            (clone3.action(), clone3.errno_ret()),
            (LinuxSeccompAction::ScmpActErrno, Some(libc::ENOSYS as u32))
        );
        // Every conditional rule names a single call.
        for r in p.syscalls().iter().flatten() {
            if r.args().is_some() {
                assert_eq!(r.names().len(), 1, "{r:?}");
            }
        }
    }

    /// `Err(errno)` if a raw syscall returned -1.
    fn errno(ret: libc::c_long) -> Result<libc::c_long, i32> {
        if ret == -1 {
            Err(io::Error::last_os_error().raw_os_error().unwrap())
        } else {
            Ok(ret)
        }
    }

    /// Loads the profile through libcontainer on a thread of its own (a filter binds only
    /// the thread that loads it and its children) and makes calls with arguments the
    /// kernel itself would refuse some other way, so EPERM can only come from the filter.
    #[test]
    fn the_loaded_profile_allows_ordinary_programs_and_refuses_the_rest() {
        std::thread::spawn(|| {
            unsafe { assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0) };
            libcontainer::seccomp::initialize_seccomp(&profile()).unwrap();
            let null = std::ptr::null::<u8>();
            let eperm = Err(libc::EPERM);
            unsafe {
                // unshare(0) is a no-op the kernel allows.
                assert_eq!(errno(libc::syscall(libc::SYS_unshare, 0)), eperm);
                assert_eq!(errno(libc::syscall(libc::SYS_setns, -1, 0)), eperm);
                assert_eq!(
                    errno(libc::syscall(libc::SYS_mount, null, null, null, 0, null)),
                    eperm
                );
                assert_eq!(
                    errno(libc::syscall(libc::SYS_io_uring_setup, 1, null)),
                    eperm
                );
                assert_eq!(errno(libc::syscall(libc::SYS_keyctl, 0, 0, 0)), eperm);
                assert_eq!(errno(libc::syscall(libc::SYS_bpf, 0, null, 0)), eperm);
                assert_eq!(errno(libc::syscall(libc::SYS_ptrace, 2, -1, 0, 0)), eperm);
                assert_eq!(
                    errno(libc::syscall(libc::SYS_init_module, null, 0, null)),
                    eperm
                );
                assert_eq!(
                    errno(libc::syscall(libc::SYS_clock_settime, 0, null)),
                    eperm
                );
                assert_eq!(errno(libc::syscall(libc::SYS_sethostname, null, 1)), eperm);
                assert_eq!(errno(libc::syscall(libc::SYS_reboot, 0, 0, 0, null)), eperm);
                assert_eq!(
                    errno(libc::syscall(
                        libc::SYS_socket,
                        libc::AF_VSOCK,
                        libc::SOCK_STREAM,
                        0
                    )),
                    eperm
                );
                // ADDR_NO_RANDOMIZE (setarch -R) is not among moby's personalities.
                assert_eq!(
                    errno(libc::syscall(libc::SYS_personality, 0x0040000)),
                    eperm
                );
                assert!(errno(libc::syscall(libc::SYS_personality, 0xffff_ffffu64)).is_ok());
                assert_eq!(
                    errno(libc::syscall(libc::SYS_clone3, null, 0)),
                    Err(libc::ENOSYS)
                );
                // clone making any namespace is refused; if it were not, the child leaves.
                for flag in [
                    libc::CLONE_NEWNS,
                    libc::CLONE_NEWUTS,
                    libc::CLONE_NEWIPC,
                    libc::CLONE_NEWUSER,
                    libc::CLONE_NEWPID,
                    libc::CLONE_NEWNET,
                    libc::CLONE_NEWCGROUP,
                ] {
                    let flags = (flag | libc::SIGCHLD) as libc::c_long;
                    let r = errno(libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0));
                    if r == Ok(0) {
                        libc::_exit(0);
                    }
                    assert_eq!(r, eperm, "clone with {flag:#x}");
                }
                // A plain fork through clone works.
                let flags = libc::SIGCHLD as libc::c_long;
                let pid = errno(libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0)).unwrap();
                if pid == 0 {
                    libc::_exit(7);
                }
                let mut status = 0;
                assert_eq!(libc::waitpid(pid as i32, &mut status, 0), pid as i32);
                assert_eq!(libc::WEXITSTATUS(status), 7);
                // Allowed calls reach the kernel: ENOENT, not EPERM.
                let missing = c"/nonexistent-fluxnode-seccomp";
                assert_eq!(
                    errno(libc::syscall(libc::SYS_chroot, missing.as_ptr())),
                    Err(libc::ENOENT)
                );
                let fd = errno(libc::syscall(
                    libc::SYS_socket,
                    libc::AF_UNIX,
                    libc::SOCK_STREAM,
                    0,
                ));
                libc::close(fd.unwrap() as i32);
            }
            // Threads: glibc tries clone3, gets ENOSYS and falls back to clone.
            assert_eq!(std::thread::spawn(|| 42).join().unwrap(), 42);
            // A shell pipeline: fork or vfork, execve, pipes, wait.
            let out = std::process::Command::new("/bin/sh")
                .args(["-c", "echo seccomp | cat"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            assert_eq!(out.stdout, b"seccomp\n");
        })
        .join()
        .unwrap();
    }
}
