#!/usr/bin/env python3
"""Writes the fuzz corpus seeds (fuzz/corpus/<target>/) and dictionaries
(fuzz/dict/). Run from anywhere: python3 fuzz/seeds.py

Naming, checked by fuzz/tests/corpus.rs and integration/tests/hostile_configs.rs:
  ok-*   accepted: by the library target, and for config/ by
         `rtctr create` as root (exit 0), then deleted;
  bad-*  refused: config/ seeds by `rtctr create` (exit 1 with a message),
         process/ and seccomp/ seeds by the library target;
  other  (seccomp_gen/ bytes, regressions) only must not crash.
Config seeds use root.path "rootfs": the integration test links it to a
busybox root filesystem.
"""

import copy
import json
import os
import random
import re

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CORPUS = os.path.join(HERE, "corpus")


def default_config():
    """`rtctr spec`'s config, read from runtime/src/spec.rs."""
    src = open(os.path.join(ROOT, "runtime/src/spec.rs")).read()
    raw = re.search(r'pub const DEFAULT_CONFIG: &str = r#"(.*?)"#;', src, re.S).group(1)
    return raw, json.loads(raw)


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, (dict, list)):
        data = json.dumps(data, indent=1) + "\n"
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# A profile in the shape of podman's default (containers-common
# seccomp.json) after podman turned it into OCI form for amd64 with
# docker's default capabilities: ENOSYS by default, a long allow list,
# argument rules for personality, clone and socket, an EPERM block.
ALLOW = """accept accept4 access adjtimex alarm arch_prctl bind brk capget capset
chdir chmod chown chown32 chroot clock_adjtime clock_getres clock_gettime
clock_nanosleep close close_range connect copy_file_range creat dup dup2 dup3
epoll_create epoll_create1 epoll_ctl epoll_pwait epoll_pwait2 epoll_wait
eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
fallocate fanotify_mark fchdir fchmod fchmodat fchown fchownat fcntl fdatasync
fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstatfs fsync
ftruncate futex futimesat get_robust_list get_thread_area getcpu getcwd
getdents getdents64 getegid geteuid getgid getgroups getitimer getpeername
getpgid getpgrp getpid getppid getpriority getrandom getresgid getresuid
getrlimit getrusage getsid getsockname getsockopt gettid gettimeofday getuid
getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch
io_cancel io_destroy io_getevents io_setup io_submit io_uring_enter
io_uring_register io_uring_setup ioctl ioprio_get ioprio_set ipc kill lchown
lgetxattr link linkat listen listxattr llistxattr lremovexattr lseek
lsetxattr lstat madvise membarrier memfd_create mincore mkdir mkdirat mknod
mknodat mlock mlock2 mlockall mmap modify_ldt mprotect mq_getsetattr
mq_notify mq_open mq_timedreceive mq_timedsend mq_unlink mremap msgctl msgget
msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep
newfstatat open openat openat2 pause pidfd_getfd pidfd_open pidfd_send_signal
pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll prctl pread64 preadv
preadv2 prlimit64 process_mrelease pselect6 pwrite64 pwritev pwritev2 read
readahead readlink readlinkat readv reboot recvfrom recvmmsg recvmsg
remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir
rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn
rt_sigsuspend rt_sigtimedwait rt_tgsigqueueinfo sched_get_priority_max
sched_get_priority_min sched_getaffinity sched_getattr sched_getparam
sched_getscheduler sched_rr_get_interval sched_setaffinity sched_setattr
sched_setparam sched_setscheduler sched_yield seccomp select semctl semget
semop semtimedop send sendfile sendmmsg sendmsg sendto set_robust_list
set_thread_area set_tid_address setfsgid setfsuid setgid setgroups setitimer
setpgid setpriority setregid setresgid setresuid setreuid setrlimit setsid
setsockopt setuid setxattr shmat shmctl shmdt shmget shutdown sigaltstack
signalfd signalfd4 socketcall socketpair splice stat statfs statx symlink
symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create
timer_delete timer_getoverrun timer_gettime timer_settime timerfd_create
timerfd_gettime timerfd_settime times tkill truncate umask uname unlink
unlinkat utime utimensat utimes vfork vmsplice wait4 waitid waitpid write
writev""".split()

EPERM = """bdflush io_pgetevents kexec_file_load kexec_load migrate_pages move_pages
nfsservctl nice oldfstat oldlstat oldolduname oldstat olduname pciconfig_iobase
pciconfig_read pciconfig_write sgetmask ssetmask swapcontext swapoff swapon
sysfs uselib userfaultfd ustat vm86 vm86old vmsplice""".split()


def podman_profile():
    personality = [
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}]}
        for v in (0, 8, 131072, 131080, 4294967295)
    ]
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": EPERM, "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ALLOW, "action": "SCMP_ACT_ALLOW"},
            *personality,
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
        ],
    }


def seccomp_seeds():
    ok = {
        "podman": podman_profile(),
        "minimal-allow": {"defaultAction": "SCMP_ACT_ALLOW"},
        "kill-some": {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["ptrace", "kexec_load"], "action": "SCMP_ACT_KILL_PROCESS"},
                         {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}],
        },
        "notify": {
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/agent.sock",
            "listenerMetadata": "meta-1",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
        },
        "args-all-ops": {
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
                *[{"names": ["getpriority"], "action": a, "errnoRet": 2,
                   "args": [{"index": i, "value": 1 << (8 * i), "valueTwo": 3, "op": op}]}
                  for i, (a, op) in enumerate([
                      ("SCMP_ACT_ALLOW", "SCMP_CMP_NE"), ("SCMP_ACT_LOG", "SCMP_CMP_LT"),
                      ("SCMP_ACT_TRAP", "SCMP_CMP_LE"), ("SCMP_ACT_TRACE", "SCMP_CMP_EQ"),
                      ("SCMP_ACT_KILL_THREAD", "SCMP_CMP_GE"), ("SCMP_ACT_KILL", "SCMP_CMP_GT")])],
                {"names": ["setpriority"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                          {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                          {"index": 5, "value": 255, "valueTwo": 15, "op": "SCMP_CMP_MASKED_EQ"}]},
            ],
        },
        "log-flags": {
            "defaultAction": "SCMP_ACT_LOG",
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "architectures": ["SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"],
            "syscalls": [{"names": ["rt_sigaction", "uselib", "no_such_call"],
                          "action": "SCMP_ACT_TRAP"}],
        },
    }
    too_large = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ALLOW[:300], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": i, "value": 0x1234_5678_9abc + i, "op": "SCMP_CMP_LE"}
                               for i in range(6)]}],
    }
    bad = {
        "notify-default": {"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/run/a.sock"},
        "notify-without-listener": {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]},
        "notify-write": {
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/a.sock",
            "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]},
        "errno-4096": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 4096},
        "trace-65536": {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["ptrace"], "action": "SCMP_ACT_TRACE", "errnoRet": 65536}]},
        "arg-index-6": {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 6, "value": 9, "op": "SCMP_CMP_EQ"}]}]},
        "conflicting-rules": {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["kill"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
                {"names": ["kill"], "action": "SCMP_ACT_LOG",
                 "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]}]},
        "too-large": too_large,
        "unknown-action": {"defaultAction": "SCMP_ACT_MAYBE"},
        "unknown-op": {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 0, "value": 9, "op": "SCMP_CMP_ABOUT"}]}]},
        "negative-value": {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]},
        "names-not-array": {"defaultAction": "SCMP_ACT_ALLOW",
                            "syscalls": [{"names": "kill", "action": "SCMP_ACT_ERRNO"}]},
    }
    for name, p in ok.items():
        write("seccomp", f"ok-{name}.json", p)
    for name, p in bad.items():
        write("seccomp", f"bad-{name}.json", p)
    write("seccomp", "bad-not-json.txt", "defaultAction: SCMP_ACT_ALLOW\n")
    return ok, bad


def config_seeds(seccomp_ok, seccomp_bad):
    raw, base = default_config()

    def cfg(edit=None):
        c = copy.deepcopy(base)
        c["process"]["terminal"] = False
        c["process"]["args"] = ["true"]
        if edit:
            edit(c)
        return c

    def ns(c, *types):
        c["linux"]["namespaces"].extend({"type": t} for t in types)

    maps = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    ok = {
        "default": cfg(),
        "minimal": {
            "ociVersion": "1.0.0",
            "root": {"path": "rootfs"},
            "process": {"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]},
        },
        "seccomp-podman": cfg(lambda c: c["linux"].update(seccomp=seccomp_ok["podman"])),
        "resources": cfg(lambda c: c["linux"]["resources"].update(
            memory={"limit": 64 << 20, "swappiness": 0},
            cpu={"shares": 512, "quota": 50000, "period": 100000},
            pids={"limit": 32},
            devices=[{"allow": False, "access": "rwm"},
                     {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}])),
        "userns": cfg(lambda c: (ns(c, "user"), c["linux"].update(
            uidMappings=maps, gidMappings=maps))),
        "timens": cfg(lambda c: (ns(c, "time"), c["linux"].update(
            timeOffsets={"boottime": {"secs": 864000, "nanosecs": 0},
                         "monotonic": {"secs": -5, "nanosecs": 1}}))),
        "sysctl-rlimits-umask": cfg(lambda c: (
            c["linux"].update(sysctl={"net.ipv4.ip_forward": "1", "kernel.shmmax": "65536",
                                      "fs.mqueue.msg_max": "20"}),
            c["process"].update(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 300, "hard": 400},
                                         {"type": "RLIMIT_NPROC", "soft": 64, "hard": 64}],
                                oomScoreAdj=100),
            c["process"]["user"].update(umask=0o27, additionalGids=[1, 2]))),
        "hooks-scheduler": cfg(lambda c: (
            c.update(hooks={"createRuntime": [{"path": "/bin/true", "args": ["true"]}],
                            "poststop": [{"path": "/bin/true", "timeout": 5}]},
                     annotations={"org.example/key": "value"}),
            c["process"].update(scheduler={"policy": "SCHED_OTHER",
                                           "flags": ["SCHED_FLAG_RESET_ON_FORK"]}))),
        "mounts-paths": cfg(lambda c: (
            c["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                                "options": ["nosuid", "nodev", "mode=1777", "size=1m"]}),
            c["linux"].update(maskedPaths=["/proc/kcore", "/proc/nonexistent"],
                              readonlyPaths=["/proc/sys"], rootfsPropagation="rprivate"))),
        # process is optional at create (required at start).
        "no-process": cfg(lambda c: c.pop("process")),
        # Regression (issue 11): a hook timeout of i64::MAX aborted create.
        "regress-hook-timeout-max": cfg(lambda c: c.update(hooks={
            "createRuntime": [{"path": "/bin/true", "timeout": 9223372036854775807}],
            "poststop": [{"path": "/bin/true", "timeout": 9223372036854775807}]})),
    }

    def bad_seccomp(name):
        return cfg(lambda c: c["linux"].update(seccomp=seccomp_bad[name]))

    def set_path(path, value):
        def edit(c):
            node = c
            for k in path[:-1]:
                node = node[k]
            node[path[-1]] = value
        return cfg(edit)

    bad = {
        "default-terminal": raw,  # exactly `rtctr spec`: no console socket
        "oci-version-2": set_path(["ociVersion"], "2.0.0"),
        "oci-version-empty": set_path(["ociVersion"], ""),
        "no-linux": cfg(lambda c: c.pop("linux")),
        "no-root": cfg(lambda c: c.pop("root")),
        "rootfs-missing": set_path(["root", "path"], "no-such-rootfs"),
        "args-empty": set_path(["process", "args"], []),
        "args-empty-program": set_path(["process", "args"], [""]),
        "args-not-array": set_path(["process", "args"], "sh"),
        "args-nul": set_path(["process", "args"], ["tr\u0000ue"]),
        "env-nul": set_path(["process", "env"], ["A=b\u0000c"]),
        "program-missing": set_path(["process", "args"], ["/no/such/program"]),
        "cwd-relative": set_path(["process", "cwd"], "tmp"),
        "env-no-equals": set_path(["process", "env"], ["PATH"]),
        "uid-max": set_path(["process", "user", "uid"], 4294967295),
        "uid-negative": set_path(["process", "user", "uid"], -1),
        "uid-float": set_path(["process", "user", "uid"], 1.5),
        "gid-huge-number": set_path(["process", "user", "gid"], 1e400),
        "additional-gid-max": set_path(["process", "user", "additionalGids"], [4294967295]),
        "cap-unknown": set_path(["process", "capabilities", "bounding"], ["CAP_KILL", "CAP_TEST"]),
        "rlimit-soft-above-hard": set_path(
            ["process", "rlimits"], [{"type": "RLIMIT_NOFILE", "soft": 2, "hard": 1}]),
        "rlimit-duplicate": set_path(
            ["process", "rlimits"], [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}] * 2),
        "rlimit-unknown": set_path(
            ["process", "rlimits"], [{"type": "RLIMIT_FOO", "soft": 1, "hard": 1}]),
        "oom-score-adj-range": set_path(["process", "oomScoreAdj"], -2000),
        "namespace-duplicate": cfg(lambda c: ns(c, "pid")),
        "namespace-unknown": cfg(lambda c: ns(c, "netns")),
        "namespace-relative-path": cfg(
            lambda c: c["linux"]["namespaces"].append({"type": "user", "path": "proc/1/ns/user"})),
        "namespace-path-missing": cfg(lambda c: c["linux"].update(
            namespaces=[{"type": "mount"}, {"type": "uts"},
                        {"type": "network", "path": "/proc/self/ns/no-such"}])),
        "hostname-without-uts": cfg(
            lambda c: c["linux"].update(namespaces=[{"type": "mount"}, {"type": "pid"}])),
        "hostname-too-long": set_path(["hostname"], "h" * 100),
        "userns-without-maps": cfg(lambda c: ns(c, "user")),
        "maps-without-userns": cfg(lambda c: c["linux"].update(uidMappings=maps)),
        "map-overflow": cfg(lambda c: (ns(c, "user"), c["linux"].update(
            uidMappings=[{"containerID": 2147483647, "hostID": 1, "size": 2}], gidMappings=maps))),
        "map-size-zero": cfg(lambda c: (ns(c, "user"), c["linux"].update(
            uidMappings=maps, gidMappings=[{"containerID": 0, "hostID": 0, "size": 0}]))),
        "timeoffsets-without-timens": cfg(lambda c: c["linux"].update(
            timeOffsets={"monotonic": {"secs": 1}})),
        "sysctl-host": set_path(["linux", "sysctl"], {"kernel.panic": "1"}),
        "sysctl-dotdot": set_path(["linux", "sysctl"], {"net/../../kernel/panic": "1"}),
        "sysctl-unknown-key": set_path(["linux", "sysctl"], {"net.no.such.key": "1"}),
        "propagation-unknown": set_path(["linux", "rootfsPropagation"], "bogus"),
        "mount-relative-destination": set_path(["mounts", 0, "destination"], "proc"),
        "mount-type-unknown": cfg(lambda c: c["mounts"].append(
            {"destination": "/mnt", "type": "nosuchfs", "source": "none"})),
        "mount-bind-source-missing": cfg(lambda c: c["mounts"].append(
            {"destination": "/mnt", "type": "bind", "source": "/no/such/dir",
             "options": ["rbind"]})),
        "masked-path-relative": set_path(["linux", "maskedPaths"], ["proc/kcore"]),
        "hook-relative-path": set_path(["hooks"], {"poststop": [{"path": "true"}]}),
        "hook-fails": set_path(["hooks"], {"createRuntime": [{"path": "/bin/false"}]}),
        "cgroups-path-dotdot": set_path(["linux", "cgroupsPath"], "../../../escape"),
        "swappiness-above-100": set_path(["linux", "resources", "memory"], {"swappiness": 101}),
        "swap-below-limit": set_path(["linux", "resources", "memory"],
                                     {"limit": 1 << 30, "swap": 1 << 20}),
        "memory-limit-tiny": set_path(["linux", "resources", "memory"], {"limit": 4096}),
        "device-access-x": set_path(["linux", "resources", "devices"],
                                    [{"allow": True, "access": "rwx"}]),
        "device-major-huge": set_path(["linux", "resources", "devices"],
                                      [{"allow": True, "type": "c", "major": 1 << 40}]),
        "unified-key-escape": set_path(["linux", "resources", "unified"], {"../x": "1"}),
        "unified-key-unknown": set_path(["linux", "resources", "unified"], {"nosuch.max": "1"}),
        "hugepage-size-slash": set_path(["linux", "resources", "hugepageLimits"],
                                        [{"pageSize": "2MB/../x", "limit": 1}]),
        "network-ports": set_path(["annotations"], {"rtctr.network": "default",
                                                    "rtctr.network.ports": "80:x/tcp"}),
        "network-ip": set_path(["annotations"], {"rtctr.network": "",
                                                 "rtctr.network.ip": "10.1"}),
        "network-name": set_path(["annotations"], {"rtctr.network": "../../etc/passwd"}),
        "mount-option-unknown": cfg(lambda c: c["mounts"].append(
            {"destination": "/mnt", "type": "tmpfs", "source": "tmpfs",
             "options": ["idmap"]})),
        "mount-size-garbage": cfg(lambda c: c["mounts"].append(
            {"destination": "/mnt", "type": "tmpfs", "source": "tmpfs",
             "options": ["size=lots"]})),
        "device-node-relative": set_path(["linux", "devices"], [
            {"path": "dev/x", "type": "c", "major": 1, "minor": 3}]),
        "device-node-type-a": set_path(["linux", "devices"], [
            {"path": "/dev/x", "type": "a", "major": 1, "minor": 3}]),
        "seccomp-too-large": bad_seccomp("too-large"),
        "seccomp-conflicting-rules": bad_seccomp("conflicting-rules"),
        "seccomp-notify-without-listener": bad_seccomp("notify-without-listener"),
        "seccomp-errno-4096": bad_seccomp("errno-4096"),
        "seccomp-unknown-action": bad_seccomp("unknown-action"),
    }
    for name, c in ok.items():
        write("config", f"ok-{name}.json", c)
    for name, c in bad.items():
        write("config", f"bad-{name}.json", c)
    # Not JSON, or not a config at all.
    compact = json.dumps(cfg())
    for name, data in {
        "empty.json": b"",
        "not-json.txt": b"ociVersion: 1.2.0\n",
        "null.json": b"null",
        "array.json": b"[]",
        "string.json": b'"config"',
        "truncated.json": compact[: len(compact) // 2],
        "trailing-garbage.json": compact + "}",
        "two-objects.json": compact + compact,
        "deep-nesting.json": "[" * 5000 + "]" * 5000,
        "invalid-utf8.json": compact.encode().replace(b'"true"', b'"tr\xff\xfe"', 1),
        "lone-surrogate.json": compact.replace('"true"', '"\\ud800"', 1),
        "duplicate-key.json": compact[:-1] + ', "ociVersion": "0.1"}',
        "bom.json": b"\xef\xbb\xbf" + compact.encode(),
        # Found by the config target: an unknown key " " is the error's path.
        "regress-blank-key.json": '{"ociVersion": "1.2.0", " ": troo}\n',
    }.items():
        write("config", f"bad-{name}", data)


def process_seeds():
    ok = {
        "sh": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "full": {
            "terminal": False, "args": ["sh", "-c", "id"], "cwd": "/tmp",
            "env": ["PATH=/bin:/usr/bin", "EMPTY="],
            "user": {"uid": 1000, "gid": 1000, "additionalGids": [5, 100], "umask": 18},
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                             "permitted": ["CAP_KILL"]},
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}],
            "noNewPrivileges": True, "apparmorProfile": "", "oomScoreAdj": 0,
        },
    }
    sh = ok["sh"]
    bad = {
        "args-empty": {**sh, "args": []},
        "no-args": {"cwd": "/", "user": {"uid": 0, "gid": 0}},
        "cwd-relative": {**sh, "cwd": "."},
        "no-cwd": {"args": ["sh"], "user": {"uid": 0, "gid": 0}},
        "env-no-equals": {**sh, "env": ["A=1", "B"]},
        "uid-max": {**sh, "user": {"uid": 4294967295, "gid": 0}},
        "gid-out-of-range": {**sh, "user": {"uid": 0, "gid": 2147483648}},
        "rlimit-duplicate": {**sh, "rlimits": [{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}] * 2},
        "cap-unknown": {**sh, "capabilities": {"bounding": ["CAP_NOPE"]}},
    }
    for name, p in ok.items():
        write("process", f"ok-{name}.json", p)
    for name, p in bad.items():
        write("process", f"bad-{name}.json", p)
    for name, data in {
        "empty.json": b"",
        "not-json.txt": b"sh -c id",
        "trailing-garbage.json": json.dumps(sh) + ' {"args": ["rm"]}',
        "whole-config.json": json.dumps({"ociVersion": "1.2.0", "process": sh}),
    }.items():
        write("process", f"bad-{name}", data)


def gen_seeds():
    rng = random.Random(11)
    for n in (64, 512, 4096):
        write("seccomp_gen", f"random-{n}", bytes(rng.randrange(256) for _ in range(n)))


def dictionaries():
    src = open(os.path.join(ROOT, "runtime/src/spec.rs")).read()
    raw = re.search(r'pub const DEFAULT_CONFIG: &str = r#"(.*?)"#;', src, re.S).group(1)
    keys = set(re.findall(r'"([A-Za-z]+)":', raw))
    keys |= set("""hooks prestart createRuntime createContainer startContainer poststart
        poststop path args env timeout annotations domainname uidMappings gidMappings
        containerID hostID size seccomp defaultAction defaultErrnoRet architectures flags
        listenerPath listenerMetadata syscalls names action errnoRet index value valueTwo op
        sysctl cgroupsPath resources memory limit reservation swap swappiness cpu shares quota
        period realtimeRuntime realtimePeriod cpus mems pids blockIO weight leafWeight
        weightDevice throttleReadBpsDevice major minor rate hugepageLimits pageSize network
        classID priorities unified devices type fileMode uid gid rootfsPropagation
        timeOffsets secs nanosecs scheduler policy nice priority ioPriority class
        additionalGids umask oomScoreAdj apparmorProfile selinuxLabel consoleSize height
        width personality domain intelRdt mountLabel uidMappings options
        """.split())
    values = """pid network ipc uts mount cgroup user time SCMP_ACT_ALLOW SCMP_ACT_ERRNO
        SCMP_ACT_KILL SCMP_ACT_KILL_PROCESS SCMP_ACT_KILL_THREAD SCMP_ACT_TRAP SCMP_ACT_TRACE
        SCMP_ACT_LOG SCMP_ACT_NOTIFY SCMP_CMP_NE SCMP_CMP_LT SCMP_CMP_LE SCMP_CMP_EQ
        SCMP_CMP_GE SCMP_CMP_GT SCMP_CMP_MASKED_EQ SCMP_ARCH_X86_64 SCMP_ARCH_X86
        SCMP_ARCH_X32 SCMP_ARCH_AARCH64 SECCOMP_FILTER_FLAG_LOG SECCOMP_FILTER_FLAG_TSYNC
        SECCOMP_FILTER_FLAG_SPEC_ALLOW SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
        RLIMIT_NOFILE RLIMIT_NPROC RLIMIT_CORE CAP_SYS_ADMIN CAP_KILL CAP_NET_ADMIN
        SCHED_OTHER SCHED_FIFO SCHED_DEADLINE SCHED_FLAG_RESET_ON_FORK SCHED_FLAG_DL_OVERRUN
        rprivate rshared slave unbindable bind rbind tmpfs proc sysfs nosuid ro
        net.ipv4.ip_forward kernel.shmmax kernel.hostname fs.mqueue.msg_max user.max_user_namespaces
        memory.max cpu.weight pids.max 1.2.0 1.0.0 2.0.0 rootfs / ../ .. rwm
        read write openat personality clone clone3 socket mkdir ptrace kill sendmsg""".split()
    ints = ["0", "-1", "1", "38", "4095", "4096", "65536", "2147483647", "2147483648",
            "4294967295", "4294967296", "9223372036854775807", "18446744073709551615",
            "1e400", "true", "false", "null"]

    def quoted(s):
        return '"' + json.dumps(s).replace("\\", "\\\\").replace('"', '\\"') + '"'

    def dump(name, tokens):
        os.makedirs(os.path.join(HERE, "dict"), exist_ok=True)
        with open(os.path.join(HERE, "dict", name), "w") as f:
            f.write(f"# libFuzzer dictionary, written by fuzz/seeds.py\n")
            for t in tokens:
                f.write(t + "\n")

    config = [quoted(k) + "" for k in sorted(keys)] + [quoted(v) for v in values]
    config += ['"' + i + '"' for i in ints]
    dump("config.dict", config)
    seccomp_keys = """defaultAction defaultErrnoRet architectures flags listenerPath
        listenerMetadata syscalls names action errnoRet args index value valueTwo op""".split()
    seccomp = [quoted(k) for k in seccomp_keys] + [quoted(v) for v in values if v.isupper() or v.islower()]
    seccomp += [quoted(n) for n in ALLOW[::4]] + ['"' + i + '"' for i in ints]
    dump("seccomp.dict", seccomp)


if __name__ == "__main__":
    ok, bad = seccomp_seeds()
    config_seeds(ok, bad)
    process_seeds()
    gen_seeds()
    dictionaries()
