//! Turns an [`ExecRequest`] into an OCI runtime spec (`config.json`) and renders the files
//! the container sees as `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`.
//!
//! Part of the executor; pure (no I/O), and imports nothing from the crate's graph, cache,
//! image or layer modules. The user is resolved beforehand ([`crate::executor::user`]) and
//! the generated files are written by the runtime, so this module only maps data to data.
//!
//! Compat: buildkit executor/oci/spec.go `GenerateSpec`, which starts from containerd's
//! default Unix spec (oci/spec.go `populateDefaultUnixSpec`) and adjusts it for builds.
//! Diverges: no seccomp profile, no AppArmor and no cgroup namespace; the process runs
//! with the default capability set, which is what limits a RUN step in practice. A
//! privileged request (`RUN --security=insecure`) gets what BuildKit's insecure mode gives:
//! every capability, no masked or read-only paths, a writable `/sys`, and a cgroup rule
//! allowing every device; the host's device nodes are not copied into its `/dev`.

use std::path::PathBuf;

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDevice,
    LinuxDeviceBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, Mount as OciMount,
    MountBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder,
    Spec, SpecBuilder, UserBuilder,
};

use crate::executor::error::{Error, Result};
use crate::executor::request::{
    DEFAULT_HOSTNAME, DEFAULT_PATH, ExecRequest, MountKind, Network, Resources,
};
use crate::executor::user::ResolvedUser;

/// Host paths of the files the executor generates for one run. They are bind-mounted
/// read-only-for-the-layer: the container may write to them, but they live outside the
/// rootfs, so nothing of them reaches a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFiles {
    /// Mounted at `/etc/hosts`.
    pub hosts: PathBuf,
    /// Mounted at `/etc/resolv.conf`.
    pub resolv_conf: PathBuf,
    /// Mounted at `/etc/hostname`.
    pub hostname: PathBuf,
}

/// The capabilities a RUN step gets.
// Compat: containerd oci/spec.go defaultUnixCaps, which buildkit keeps for sandboxed execs.
const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Every capability, for a privileged step, indexed by its Linux number (`CAP_CHOWN` = 0).
// Compat: buildkit's insecure mode (oci.WithPrivileged) grants the full set.
const ALL_CAPABILITIES: [Capability; 41] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::DacReadSearch,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setpcap,
    Capability::LinuxImmutable,
    Capability::NetBindService,
    Capability::NetBroadcast,
    Capability::NetAdmin,
    Capability::NetRaw,
    Capability::IpcLock,
    Capability::IpcOwner,
    Capability::SysModule,
    Capability::SysRawio,
    Capability::SysChroot,
    Capability::SysPtrace,
    Capability::SysPacct,
    Capability::SysAdmin,
    Capability::SysBoot,
    Capability::SysNice,
    Capability::SysResource,
    Capability::SysTime,
    Capability::SysTtyConfig,
    Capability::Mknod,
    Capability::Lease,
    Capability::AuditWrite,
    Capability::AuditControl,
    Capability::Setfcap,
    Capability::MacOverride,
    Capability::MacAdmin,
    Capability::Syslog,
    Capability::WakeAlarm,
    Capability::BlockSuspend,
    Capability::AuditRead,
    Capability::Perfmon,
    Capability::Bpf,
    Capability::CheckpointRestore,
];

/// Paths hidden from the container (bind-mounted over with /dev/null or an empty tmpfs).
// Compat: containerd oci/spec.go populateDefaultUnixSpec MaskedPaths.
const MASKED_PATHS: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    "/proc/scsi",
];

/// Paths the container may read but not write.
// Compat: containerd oci/spec.go populateDefaultUnixSpec ReadonlyPaths.
const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Character devices every container gets in its `/dev`: (path, major, minor).
// Compat: runc libcontainer/specconv AllowedDevices (the nodes it creates in /dev).
const DEVICES: [(&str, i64, i64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// The open-files limit of the process, soft and hard.
// Compat: buildkit executor/oci/spec.go sets RLIMIT_NOFILE to 1024*1024.
const NOFILE_LIMIT: u64 = 1_048_576;

/// The size of `/dev/shm` when a request gives none, in KiB.
// Compat: containerd populateDefaultUnixSpec mounts /dev/shm with size=65536k.
const DEFAULT_SHM_KIB: u64 = 65_536;

/// Builds the runtime spec for `request`, running as `user`, with `files` mounted over the
/// container's `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`.
///
/// # Errors
///
/// [`Error::InvalidRequest`] for an empty argv or relative paths; [`Error::Spec`] if
/// oci-spec rejects a value.
pub fn build(request: &ExecRequest, user: &ResolvedUser, files: &GeneratedFiles) -> Result<Spec> {
    validate(request)?;
    let cwd = if request.cwd.is_empty() {
        "/"
    } else {
        &request.cwd
    };
    let capabilities = if request.privileged {
        ALL_CAPABILITIES
            .into_iter()
            .collect::<std::collections::HashSet<_>>()
    } else {
        DEFAULT_CAPABILITIES.into_iter().collect()
    };
    let mut capability_sets = LinuxCapabilitiesBuilder::default()
        .bounding(capabilities.clone())
        .effective(capabilities.clone())
        .permitted(capabilities)
        .build()?;
    // The builder fills unset sets from `LinuxCapabilities::default()`; containerd leaves
    // inheritable and ambient empty, so a non-root user gets no capabilities across exec.
    capability_sets.set_inheritable(None);
    capability_sets.set_ambient(None);
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(
            UserBuilder::default()
                .uid(user.uid)
                .gid(user.gid)
                .additional_gids(user.additional_gids.clone())
                .build()?,
        )
        .args(request.args.clone())
        .env(environment(&request.env))
        .cwd(cwd)
        .capabilities(capability_sets)
        .rlimits(rlimits(request)?)
        .no_new_privileges(!request.privileged)
        .build()?;

    let mut spec = SpecBuilder::default()
        .version("1.0.2-dev")
        .root(
            RootBuilder::default()
                .path(&request.rootfs)
                .readonly(request.readonly_rootfs)
                .build()?,
        )
        .hostname(hostname(request))
        .process(process)
        .mounts(mounts(request, files)?)
        .linux(linux(request)?)
        .build()?;
    // The builder fills unset fields from `Spec::default()`, which carries an empty
    // annotations map; leaving it out keeps config.json minimal.
    spec.set_annotations(None);
    Ok(spec)
}

/// The process's resource limits: the default open-files limit, replaced or joined by the
/// request's own.
// Compat: buildkit executor/oci/spec.go generateRlimitOpts (`RLIMIT_<NAME>`, a limit of a
// resource replacing the default one).
fn rlimits(request: &ExecRequest) -> Result<Vec<PosixRlimit>> {
    let mut out = vec![
        PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .soft(NOFILE_LIMIT)
            .hard(NOFILE_LIMIT)
            .build()?,
    ];
    // -1 is RLIM_INFINITY, as Go's uint64(-1) makes it.
    let value = |limit: i64| u64::try_from(limit).unwrap_or(u64::MAX);
    for limit in &request.rlimits {
        let typ = rlimit_type(&limit.resource).ok_or_else(|| Error::InvalidRequest {
            reason: format!("unknown resource limit `{}`", limit.resource),
        })?;
        out.retain(|existing| existing.typ() != typ);
        out.push(
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(value(limit.soft))
                .hard(value(limit.hard))
                .build()?,
        );
    }
    Ok(out)
}

fn rlimit_type(resource: &str) -> Option<PosixRlimitType> {
    Some(match resource {
        "core" => PosixRlimitType::RlimitCore,
        "cpu" => PosixRlimitType::RlimitCpu,
        "data" => PosixRlimitType::RlimitData,
        "fsize" => PosixRlimitType::RlimitFsize,
        "locks" => PosixRlimitType::RlimitLocks,
        "memlock" => PosixRlimitType::RlimitMemlock,
        "msgqueue" => PosixRlimitType::RlimitMsgqueue,
        "nice" => PosixRlimitType::RlimitNice,
        "nofile" => PosixRlimitType::RlimitNofile,
        "nproc" => PosixRlimitType::RlimitNproc,
        "rss" => PosixRlimitType::RlimitRss,
        "rtprio" => PosixRlimitType::RlimitRtprio,
        "rttime" => PosixRlimitType::RlimitRttime,
        "sigpending" => PosixRlimitType::RlimitSigpending,
        "stack" => PosixRlimitType::RlimitStack,
        _ => return None,
    })
}

/// Lowers the open-files limit of `spec` to at most `ceiling`.
///
/// Raising a hard limit needs `CAP_SYS_RESOURCE`; where the caller lacks it (a build inside
/// a container, for instance) the runtime would fail with EPERM, so it passes its own hard
/// limit here.
// Diverges: buildkit always asks for 1048576 and fails on such hosts.
pub fn limit_nofile(spec: &mut Spec, ceiling: u64) -> Result<()> {
    let Some(process) = spec.process_mut() else {
        return Ok(());
    };
    let Some(rlimits) = process.rlimits().clone() else {
        return Ok(());
    };
    let rlimits = rlimits
        .into_iter()
        .map(|limit| {
            if limit.typ() != PosixRlimitType::RlimitNofile {
                return Ok(limit);
            }
            PosixRlimitBuilder::default()
                .typ(limit.typ())
                .hard(limit.hard().min(ceiling))
                .soft(limit.soft().min(ceiling))
                .build()
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    process.set_rlimits(Some(rlimits));
    Ok(())
}

/// Keeps only the capabilities in `bounding` (a `CapBnd` mask from `/proc/self/status`):
/// runc cannot grant a capability the caller does not hold, which a build inside a
/// container (without `CAP_SYS_RESOURCE`, say) would otherwise fail on.
pub fn limit_capabilities(spec: &mut Spec, bounding: u64) {
    let Some(process) = spec.process_mut() else {
        return;
    };
    let Some(mut sets) = process.capabilities().clone() else {
        return;
    };
    let held = |set: &Option<std::collections::HashSet<Capability>>| {
        set.as_ref().map(|caps| {
            caps.iter()
                .copied()
                .filter(|cap| {
                    ALL_CAPABILITIES
                        .iter()
                        .position(|c| c == cap)
                        .is_some_and(|bit| bounding & (1u64 << bit) != 0)
                })
                .collect()
        })
    };
    sets.set_bounding(held(sets.bounding()));
    sets.set_effective(held(sets.effective()));
    sets.set_permitted(held(sets.permitted()));
    process.set_capabilities(Some(sets));
}

/// Renders `spec` as `config.json` bytes, with capability sets sorted so the output is the
/// same on every run (oci-spec keeps them in a `HashSet`).
///
/// # Errors
///
/// Never in practice; serde_json reports failures only for non-string map keys.
pub fn to_json(spec: &Spec) -> Result<Vec<u8>> {
    let mut value = serde_json::to_value(spec).map_err(oci_spec::OciSpecError::from)?;
    if let Some(caps) = value
        .pointer_mut("/process/capabilities")
        .and_then(serde_json::Value::as_object_mut)
    {
        for set in caps.values_mut() {
            if let Some(list) = set.as_array_mut() {
                list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    serde_json::to_vec_pretty(&value).map_err(|e| Error::Spec(e.into()))
}

/// Renders `/etc/hosts` for the container.
// Compat: buildkit executor/oci/hosts.go makeHostsFile (localhost lines, then extra hosts).
pub fn hosts_file(hostname: &str, extra_hosts: &[(String, String)]) -> String {
    let hostname = if hostname.is_empty() {
        DEFAULT_HOSTNAME
    } else {
        hostname
    };
    let mut out =
        format!("127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for (host, ip) in extra_hosts {
        out.push_str(&format!("{ip}\t{host}\n"));
    }
    out
}

/// Renders `/etc/resolv.conf` for the container from the host's file.
///
/// Compat: buildkit executor/oci/resolvconf.go `GetResolvConf`: with host networking the
/// host's file is used as it is; in a private network namespace, loopback nameservers
/// cannot be reached, so they are dropped, and Google's public servers are used when none
/// remain (as Docker does).
pub fn resolv_conf(host: &str, network: Network) -> String {
    if network == Network::Host {
        return host.to_owned();
    }
    let mut out = String::new();
    let mut nameservers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let address = words.next().unwrap_or("");
            if address.starts_with("127.") || address == "::1" {
                continue;
            }
            nameservers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if nameservers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

/// The hostname the container gets.
pub fn hostname(request: &ExecRequest) -> String {
    if request.hostname.is_empty() {
        DEFAULT_HOSTNAME.to_owned()
    } else {
        request.hostname.clone()
    }
}

fn validate(request: &ExecRequest) -> Result<()> {
    let invalid = |reason: String| Err(Error::InvalidRequest { reason });
    if request.args.is_empty() {
        return invalid("no command given".into());
    }
    if !request.rootfs.is_absolute() {
        return invalid(format!(
            "rootfs `{}` is not an absolute path",
            request.rootfs.display()
        ));
    }
    if !request.cwd.is_empty() && !request.cwd.starts_with('/') {
        return invalid(format!(
            "working directory `{}` is not an absolute path",
            request.cwd
        ));
    }
    for mount in &request.mounts {
        if !mount.destination.starts_with('/') {
            return invalid(format!(
                "mount destination `{}` is not an absolute path",
                mount.destination
            ));
        }
    }
    Ok(())
}

/// Adds the default `PATH` when the request's environment has none.
fn environment(env: &[String]) -> Vec<String> {
    let mut out = env.to_vec();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        out.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    out
}

fn mount(
    destination: &str,
    typ: &str,
    source: impl Into<PathBuf>,
    options: &[&str],
) -> Result<OciMount> {
    Ok(MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>())
        .build()?)
}

fn mounts(request: &ExecRequest, files: &GeneratedFiles) -> Result<Vec<OciMount>> {
    // Compat: containerd populateDefaultUnixSpec mounts; buildkit drops its /run tmpfs
    // (oci.WithoutRunMount) so that RUN steps can write to /run in the image.
    // Compat: buildkit executor/oci/spec.go gives /dev/shm `size=<shm-size/1024>k`.
    let shm_kib = if request.shm_size == 0 {
        DEFAULT_SHM_KIB
    } else {
        request.shm_size.div_ceil(1024)
    };
    let shm_size = format!("size={shm_kib}k");
    let mut out = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_size],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            if request.privileged {
                &["nosuid", "noexec", "nodev"]
            } else {
                &["nosuid", "noexec", "nodev", "ro"]
            },
        )?,
        // The container's own cgroups, so a step can read its limits; writable only to a
        // privileged step.
        // Compat: containerd populateDefaultUnixSpec, buildkit oci.WithWriteableCgroupfs.
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            if request.privileged {
                &["nosuid", "noexec", "nodev", "relatime"]
            } else {
                &["nosuid", "noexec", "nodev", "relatime", "ro"]
            },
        )?,
    ];
    // Compat: buildkit executor/oci/spec.go binds resolv.conf and hosts from its state dir.
    for (destination, source) in [
        ("/etc/resolv.conf", &files.resolv_conf),
        ("/etc/hosts", &files.hosts),
        ("/etc/hostname", &files.hostname),
    ] {
        out.push(mount(destination, "bind", source, &["rbind", "rprivate"])?);
    }
    for m in &request.mounts {
        out.push(match &m.kind {
            MountKind::Bind { source, readonly } => {
                let mut options = vec!["rbind", "rprivate"];
                if *readonly {
                    options.push("ro");
                }
                mount(&m.destination, "bind", source, &options)?
            }
            MountKind::Tmpfs { size } => {
                // Compat: buildkit solver/llbsolver/mounts tmpfs mounts get "nosuid" + size.
                let size = size.map(|s| format!("size={s}"));
                let mut options = vec!["nosuid"];
                options.extend(size.as_deref());
                mount(&m.destination, "tmpfs", "tmpfs", &options)?
            }
        });
    }
    Ok(out)
}

fn devices() -> Result<Vec<LinuxDevice>> {
    DEVICES
        .iter()
        .map(|(path, major, minor)| {
            Ok(LinuxDeviceBuilder::default()
                .path(*path)
                .typ(LinuxDeviceType::C)
                .major(*major)
                .minor(*minor)
                .file_mode(0o666u32)
                .uid(0u32)
                .gid(0u32)
                .build()?)
        })
        .collect()
}

/// The request's cgroup limits as the spec's `linux.resources`, next to the device rules.
fn resources(
    device_rules: Vec<oci_spec::runtime::LinuxDeviceCgroup>,
    limits: Option<&Resources>,
) -> Result<oci_spec::runtime::LinuxResources> {
    let mut out = LinuxResourcesBuilder::default().devices(device_rules);
    let Some(limits) = limits else {
        return Ok(out.build()?);
    };
    if limits.memory.is_some() || limits.memory_swap.is_some() {
        let mut memory = LinuxMemoryBuilder::default();
        if let Some(limit) = limits.memory {
            memory = memory.limit(limit);
        }
        if let Some(swap) = limits.memory_swap {
            memory = memory.swap(swap);
        }
        out = out.memory(memory.build()?);
    }
    let mut cpu = LinuxCpuBuilder::default();
    let mut any_cpu = false;
    if let Some(shares) = limits.cpu_shares {
        cpu = cpu.shares(shares);
        any_cpu = true;
    }
    if let Some(period) = limits.cpu_period {
        cpu = cpu.period(period);
        any_cpu = true;
    }
    if let Some(quota) = limits.cpu_quota {
        cpu = cpu.quota(quota);
        any_cpu = true;
    }
    if let Some(cpus) = &limits.cpuset_cpus {
        cpu = cpu.cpus(cpus.clone());
        any_cpu = true;
    }
    if let Some(mems) = &limits.cpuset_mems {
        cpu = cpu.mems(mems.clone());
        any_cpu = true;
    }
    if any_cpu {
        out = out.cpu(cpu.build()?);
    }
    Ok(out.build()?)
}

fn linux(request: &ExecRequest) -> Result<oci_spec::runtime::Linux> {
    let (network, privileged) = (request.network, request.privileged);
    let mut namespaces = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ];
    // Host networking shares the host's namespace, as buildkit does without CNI.
    if network == Network::None {
        namespaces.push(LinuxNamespaceType::Network);
    }
    let namespaces = namespaces
        .into_iter()
        .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    // Deny every device, then allow the standard ones (containerd's default cgroup rule);
    // a privileged step may use every device.
    let mut device_rules = vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(privileged)
            .access("rwm")
            .build()?,
    ];
    for (_, major, minor) in DEVICES {
        device_rules.push(
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::C)
                .major(major)
                .minor(minor)
                .access("rwm")
                .build()?,
        );
    }
    Ok(LinuxBuilder::default()
        .namespaces(namespaces)
        .devices(devices()?)
        .resources(resources(device_rules, request.resources.as_ref())?)
        .masked_paths(if privileged {
            Vec::new()
        } else {
            MASKED_PATHS.map(String::from).to_vec()
        })
        .readonly_paths(if privileged {
            Vec::new()
        } else {
            READONLY_PATHS.map(String::from).to_vec()
        })
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::Mount;

    fn files() -> GeneratedFiles {
        GeneratedFiles {
            hosts: "/state/bundle/hosts".into(),
            resolv_conf: "/state/bundle/resolv.conf".into(),
            hostname: "/state/bundle/hostname".into(),
        }
    }

    fn request() -> ExecRequest {
        ExecRequest::new(
            "/rootfs",
            vec!["/bin/sh".into(), "-c".into(), "true".into()],
        )
    }

    fn json(spec: &Spec) -> serde_json::Value {
        serde_json::from_slice(&to_json(spec).unwrap()).unwrap()
    }

    #[test]
    fn default_path_is_added_only_when_missing() {
        assert_eq!(
            environment(&["A=1".into()]),
            [format!("PATH={DEFAULT_PATH}"), "A=1".into()]
        );
        assert_eq!(environment(&["PATH=/x".into()]), ["PATH=/x"]);
    }

    #[test]
    fn network_none_adds_a_network_namespace() {
        let has_net = |network| {
            let mut r = request();
            r.network = network;
            let spec = json(&build(&r, &ResolvedUser::default(), &files()).unwrap());
            spec["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|ns| ns["type"] == "network")
        };
        assert!(has_net(Network::None));
        assert!(!has_net(Network::Host));
    }

    #[test]
    fn a_privileged_request_gets_every_capability_and_no_masks() {
        let sandbox = json(&build(&request(), &ResolvedUser::default(), &files()).unwrap());
        let mut privileged = request();
        privileged.privileged = true;
        let insecure = json(&build(&privileged, &ResolvedUser::default(), &files()).unwrap());
        let caps = |spec: &serde_json::Value| {
            spec["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len()
        };
        assert_eq!((caps(&sandbox), caps(&insecure)), (14, 41));
        assert_eq!(sandbox["process"]["noNewPrivileges"], true);
        assert!(
            insecure["process"]
                .get("noNewPrivileges")
                .is_none_or(|v| v == false)
        );
        assert!(
            !sandbox["linux"]["maskedPaths"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        assert!(
            insecure["linux"]
                .get("maskedPaths")
                .is_none_or(|v| v.as_array().unwrap().is_empty())
        );
        assert_eq!(insecure["linux"]["resources"]["devices"][0]["allow"], true);
        assert_eq!(sandbox["linux"]["resources"]["devices"][0]["allow"], false);
        let sys = |spec: &serde_json::Value| {
            spec["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["destination"] == "/sys")
                .unwrap()["options"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("ro"))
        };
        assert!(sys(&sandbox) && !sys(&insecure));
    }

    #[test]
    fn capabilities_the_caller_lacks_are_dropped() {
        let mut privileged = request();
        privileged.privileged = true;
        let mut spec = build(&privileged, &ResolvedUser::default(), &files()).unwrap();
        // Every capability but CAP_SYS_RESOURCE (24).
        limit_capabilities(&mut spec, 0x01ff_feff_ffff);
        let caps = json(&spec)["process"]["capabilities"]["permitted"].clone();
        let caps = caps.as_array().unwrap();
        assert_eq!(caps.len(), 40);
        assert!(!caps.contains(&serde_json::json!("CAP_SYS_RESOURCE")));
        assert!(caps.contains(&serde_json::json!("CAP_SYS_ADMIN")));
    }

    #[test]
    fn readonly_bind_and_tmpfs_options() {
        let mut r = request();
        r.mounts = vec![
            Mount {
                destination: "/src".into(),
                kind: MountKind::Bind {
                    source: "/host/src".into(),
                    readonly: true,
                },
            },
            Mount {
                destination: "/tmp".into(),
                kind: MountKind::Tmpfs { size: Some(1024) },
            },
        ];
        let spec = json(&build(&r, &ResolvedUser::default(), &files()).unwrap());
        let mounts = spec["mounts"].as_array().unwrap();
        let n = mounts.len();
        assert_eq!(
            mounts[n - 2]["options"],
            serde_json::json!(["rbind", "rprivate", "ro"])
        );
        assert_eq!(
            mounts[n - 1]["options"],
            serde_json::json!(["nosuid", "size=1024"])
        );
    }

    #[test]
    fn shm_size_rlimits_and_resources_reach_the_spec() {
        let option = |spec: &serde_json::Value, destination: &str| {
            spec["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["destination"] == destination)
                .unwrap()["options"]
                .clone()
        };
        let plain = json(&build(&request(), &ResolvedUser::default(), &files()).unwrap());
        assert!(
            option(&plain, "/dev/shm")
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("size=65536k"))
        );
        assert_eq!(plain["process"]["rlimits"].as_array().unwrap().len(), 1);
        assert!(plain["linux"]["resources"].get("memory").is_none());

        let mut r = request();
        r.shm_size = 96 << 20;
        r.rlimits = vec![
            crate::executor::Rlimit {
                resource: "nofile".into(),
                soft: 1000,
                hard: 2000,
            },
            crate::executor::Rlimit {
                resource: "core".into(),
                soft: -1,
                hard: -1,
            },
        ];
        r.resources = Some(Resources {
            memory: Some(64 << 20),
            cpu_shares: Some(512),
            cpuset_cpus: Some("0".into()),
            ..Resources::default()
        });
        let spec = json(&build(&r, &ResolvedUser::default(), &files()).unwrap());
        assert!(
            option(&spec, "/dev/shm")
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("size=98304k"))
        );
        assert_eq!(
            spec["process"]["rlimits"],
            serde_json::json!([
                {"type": "RLIMIT_NOFILE", "soft": 1000, "hard": 2000},
                {"type": "RLIMIT_CORE", "soft": u64::MAX, "hard": u64::MAX},
            ])
        );
        assert_eq!(spec["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(spec["linux"]["resources"]["cpu"]["shares"], 512);
        assert_eq!(spec["linux"]["resources"]["cpu"]["cpus"], "0");

        r.rlimits[0].resource = "as".into();
        assert!(matches!(
            build(&r, &ResolvedUser::default(), &files()),
            Err(Error::InvalidRequest { .. })
        ));
    }

    #[test]
    fn invalid_requests_are_rejected() {
        let mut r = request();
        r.args.clear();
        assert!(matches!(
            build(&r, &ResolvedUser::default(), &files()),
            Err(Error::InvalidRequest { .. })
        ));
        let mut r = request();
        r.cwd = "relative".into();
        let err = build(&r, &ResolvedUser::default(), &files()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid exec request: working directory `relative` is not an absolute path"
        );
    }

    #[test]
    fn nofile_limit_is_lowered_to_the_ceiling() {
        let mut spec = build(&request(), &ResolvedUser::default(), &files()).unwrap();
        limit_nofile(&mut spec, 20_000).unwrap();
        let json = json(&spec);
        assert_eq!(
            json["process"]["rlimits"],
            serde_json::json!([{"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 20000}])
        );
    }

    #[test]
    fn hosts_file_lists_hostname_and_extra_hosts() {
        assert_eq!(
            hosts_file("", &[("db".into(), "10.0.0.2".into())]),
            "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.0.2\tdb\n"
        );
    }

    #[test]
    fn resolv_conf_drops_loopback_servers_in_a_private_network() {
        let host = "search example.com\nnameserver 127.0.0.53\n";
        assert_eq!(resolv_conf(host, Network::Host), host);
        assert_eq!(
            resolv_conf(host, Network::None),
            "search example.com\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(
            resolv_conf("nameserver 1.1.1.1", Network::None),
            "nameserver 1.1.1.1\n"
        );
    }
}
