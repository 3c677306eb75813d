//! `check`: what the hook would do for a bundle, volume by volume, and
//! which rule allowed or denied each — without changing anything.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;

use crate::apply::rootfs::{self, DestState, RootFs};
use crate::apply::{mount, nfs, owner, relabel, source};
use crate::cli::Format;
use crate::config::Config;
use crate::error::{printable, Class, HookError};
use crate::input::annotations::{parse_annotation, ANNOTATION_KEY};
use crate::input::bundle::Bundle;
use crate::input::host::Host;
use crate::input::selinux::SelinuxHost;
use crate::plan::{self, LabelPlan, MountStep, SourceStep};
use crate::policy::{self, Rules};

#[derive(Debug, Serialize)]
struct Report {
    bundle: String,
    root: String,
    config: String,
    /// rootful, rootless or per-user, with the per-user paths.
    mode: String,
    annotation: Option<String>,
    volumes: Vec<VolumeReport>,
}

#[derive(Debug, Default, Serialize)]
struct VolumeReport {
    spec: String,
    /// allowed | denied | invalid | failed
    decision: String,
    rule: Option<String>,
    source: Option<String>,
    source_state: Option<String>,
    destination: Option<String>,
    destination_state: Option<String>,
    options: Option<String>,
    /// The SELinux decision: current label, target label, walk or not.
    selinux: Option<String>,
    /// NFS: the mount the hook would make (type, source, options, deadline).
    nfs_mount: Option<String>,
    /// Option U: current and target owner, walk or skip.
    owner: Option<String>,
    /// Option idmap: whether the mount is idmapped.
    idmap: Option<String>,
    /// What the admin lets requests do with this volume (idmap, U, z/Z,
    /// suid, dev, exec), however it is reached.
    permits: Option<String>,
    /// Something the admin should know that does not refuse the start.
    warning: Option<String>,
    why: Option<String>,
    hint: Option<String>,
}

pub fn run(
    config: &Config,
    host: &Host,
    bundle_dir: &Path,
    extra: &[(String, String)],
    format: Format,
) -> Result<(), HookError> {
    let bundle = Bundle::load(bundle_dir)?;
    let mut annotations: BTreeMap<String, String> = super::annotations(None, &bundle);
    annotations.extend(extra.iter().cloned());
    let value = annotations.get(ANNOTATION_KEY).cloned();
    let root = bundle.root_path();
    let mut report = Report {
        bundle: bundle.dir.display().to_string(),
        root: root.display().to_string(),
        config: match &config.narrowing {
            None => config.origin.to_string(),
            Some(n) => format!("{}, narrowed by {}", config.origin, n.path.display()),
        },
        mode: if host.per_user() {
            format!(
                "{}: volumes in {}, records in {}",
                host.describe(),
                config.volumes_root.display(),
                config.state_dir.display()
            )
        } else {
            host.describe()
        },
        annotation: value.clone(),
        volumes: Vec::new(),
    };
    let mut worst: Option<Class> = None;
    let mut note = |c: Class| {
        worst = Some(match (worst, c) {
            (Some(Class::Invalid), _) | (_, Class::Invalid) => Class::Invalid,
            (Some(Class::Denied), _) | (_, Class::Denied) => Class::Denied,
            _ => Class::Failed,
        })
    };
    if let Some(value) = &value {
        match parse_annotation(value) {
            Err(e) => {
                note(e.class);
                // Say which spec is wrong when one is; else the whole value is.
                let bad = value
                    .split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .find(|s| crate::input::annotations::parse_spec(s).is_err());
                let spec = bad.map_or_else(|| format!("{ANNOTATION_KEY}={value}"), str::to_string);
                report.volumes.push(error_report(spec, &e));
            }
            Ok(requests) => {
                let rootfs = RootFs::open(&root).ok();
                for req in &requests {
                    let rootless = |r| {
                        if host.per_user() {
                            policy::rootless::refuse(config, r)?;
                        }
                        policy::resolve(config, r)
                    };
                    let v = match rootless(req).and_then(|r| {
                        let one = std::slice::from_ref(&r);
                        let selinux = super::prestart::selinux_host(&bundle, one);
                        plan::build(&bundle, one, &selinux).map(|p| (r, p, selinux))
                    }) {
                        Err(e) => {
                            note(e.class);
                            error_report(req.spec.clone(), &e)
                        }
                        Ok((resolved, plan, selinux)) => {
                            let step = &plan.steps[0];
                            let (dest_shown, dest_state, dest_refused) =
                                describe_dest(rootfs.as_ref(), &step.dest);
                            let (source_state, source_refused) =
                                describe_source(&step.source, host.owners());
                            let (idmap, idmap_ok) = describe_idmap(step);
                            let mut v = VolumeReport {
                                spec: req.spec.clone(),
                                decision: "allowed".into(),
                                rule: Some(resolved.rule.clone()),
                                source: Some(source_path(&step.source)),
                                source_state: Some(source_state),
                                destination: Some(dest_shown),
                                destination_state: Some(dest_state),
                                options: Some(resolved.options.to_list()),
                                selinux: step
                                    .label
                                    .as_ref()
                                    .map(|l| describe_label(&selinux, step, l)),
                                owner: Some(describe_owner(step)),
                                idmap: Some(idmap),
                                permits: Some(describe_rules(&resolved.rules)),
                                warning: reachable_warning(&step.source),
                                ..Default::default()
                            };
                            if let SourceStep::Nfs(n) = &step.source {
                                let context =
                                    step.label.as_ref().and_then(|l| l.context.as_deref());
                                let d = nfs::describe(n, context);
                                v.source_state = Some(d.server);
                                v.nfs_mount = Some(d.mount);
                                match d.resolved {
                                    Err(e) => {
                                        note(Class::Failed);
                                        v.decision = "failed".into();
                                        v.hint = e.hint_text().map(str::to_string);
                                    }
                                    Ok(_)
                                        if context.is_none()
                                            && crate::input::selinux::selinux_enabled().is_ok() =>
                                    {
                                        v.hint = Some(crate::input::selinux::boolean_note());
                                    }
                                    Ok(_) => {}
                                }
                            }
                            if let Some((class, hint)) = source_refused {
                                note(class);
                                v.decision = decision_name(class).into();
                                v.hint = Some(hint);
                            } else if !idmap_ok {
                                note(Class::Failed);
                                v.decision = "failed".into();
                                v.hint = Some(
                                    "use option U instead, which changes the owner of the files"
                                        .into(),
                                );
                            } else if let Some(hint) = dest_refused {
                                note(Class::Failed);
                                v.decision = "failed".into();
                                v.hint = Some(hint.into());
                            }
                            v
                        }
                    };
                    report.volumes.push(v);
                }
            }
        }
    }
    print(&report, format)
        .map_err(|e| HookError::failed("check", format!("writing the report: {e}")))?;
    match worst {
        None => Ok(()),
        // The report said it all; exit with the class's code quietly.
        Some(class) => Err(HookError::new(class, "check", "see the report above")),
    }
}

fn decision_name(c: Class) -> &'static str {
    match c {
        Class::Denied => "denied",
        Class::Invalid => "invalid",
        Class::Failed => "failed",
    }
}

fn error_report(spec: String, e: &HookError) -> VolumeReport {
    VolumeReport {
        spec,
        decision: decision_name(e.class).into(),
        why: Some(e.why.clone()),
        hint: e.hint.clone(),
        ..Default::default()
    }
}

fn source_path(s: &SourceStep) -> String {
    match s {
        SourceStep::Managed { root, name, .. } => root.join(name).display().to_string(),
        SourceStep::Admin { path } | SourceStep::Host { path, .. } => path.display().to_string(),
        SourceStep::Nfs(n) => format!("nfs {}", n.volume.display()),
    }
}

/// The source's state, as prestart's own checks see it (no symlink on the
/// way, trusted parents, its kind), and the class of a refusal.
fn describe_source(s: &SourceStep, owners: crate::fd::Owners) -> (String, Option<(Class, String)>) {
    const CREATE: &str = "create the source on the host, or fix the config or annotation";
    if let SourceStep::Nfs(_) = s {
        return ("NFS export (not mounted by check)".into(), None);
    }
    match source::open(s, owners) {
        Ok(Some(o)) if o.is_dir => ("exists (directory)".into(), None),
        Ok(Some(_)) => ("exists (file)".into(), None),
        Ok(None) => match s {
            SourceStep::Managed {
                create: Some(n), ..
            } => (
                format!(
                    "missing: would be created, owner {}:{}, mode {:04o}",
                    n.uid, n.gid, n.mode
                ),
                None,
            ),
            _ => ("missing".into(), Some((Class::Failed, CREATE.into()))),
        },
        Err(e) => {
            let hint = e.hint_text().unwrap_or(CREATE).to_string();
            (format!("would be refused: {e}"), Some((e.class(), hint)))
        }
    }
}

/// Each option the policy decides, allowed or why not, on one line.
fn describe_rules(r: &Rules) -> String {
    let mut parts: Vec<String> = [
        ("idmap", &r.idmap),
        ("U", &r.owner_change),
        ("z/Z", &r.relabel),
        ("suid", &r.suid),
        ("dev", &r.dev),
        ("exec", &r.exec),
    ]
    .iter()
    .map(|(name, d)| match d {
        Ok(()) => format!("{name} yes"),
        Err(refusal) => format!("{name} no ({})", refusal.hint),
    })
    .collect();
    if !r.overlaps.is_empty() {
        parts.push(format!(
            "rules of [volumes.{}]",
            r.overlaps.join("], [volumes.")
        ));
    }
    parts.join("; ")
}

/// Admin paths and allowed host paths that other host users can reach.
fn reachable_warning(s: &SourceStep) -> Option<String> {
    match s {
        SourceStep::Admin { path } | SourceStep::Host { path, .. } => {
            source::reachable_by_others(path)
        }
        _ => None,
    }
}

fn describe_label(selinux: &SelinuxHost, step: &MountStep, l: &LabelPlan) -> String {
    let mode = plan::selinux::mode_name(l.mode);
    let Some(target) = l.context.as_deref() else {
        return format!(
            "{mode}: nothing to do, {}",
            selinux
                .enabled
                .clone()
                .err()
                .unwrap_or_else(|| "SELinux is disabled".into())
        );
    };
    let path = source_path(&step.source);
    let fd = match rustix::fs::open(
        path.as_str(),
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(_) => return format!("{mode}: target {target}; a new volume: would be walked (empty)"),
    };
    let d = relabel::inspect(&fd, target, l.policy);
    format!(
        "{mode}: current {}, target {target}, marker {}; walk: {} ({})",
        d.current.as_deref().unwrap_or("(none)"),
        d.marker.as_deref().unwrap_or("(none)"),
        if d.walk { "would run" } else { "skipped, O(1)" },
        d.reason
    )
}

fn describe_owner(step: &MountStep) -> String {
    if let SourceStep::Nfs(n) = &step.source {
        return format!(
            "the NFS server's (U is refused on NFS); a new sub-directory is created owned by {}:{}",
            n.new_dir.uid, n.new_dir.gid
        );
    }
    let path = source_path(&step.source);
    let Some(p) = &step.owner else {
        return match std::fs::symlink_metadata(&path) {
            Ok(m) => format!("current {}:{}; unchanged (no option U)", m.uid(), m.gid()),
            Err(_) => "unchanged (no option U)".into(),
        };
    };
    let policy = p.policy.as_str();
    let target = format!("target {}:{} ({policy})", p.uid, p.gid);
    match owner::inspect(Path::new(&path), p) {
        Ok(i) => {
            let marker = match &i.marker {
                owner::Marker::Set(v) => format!("marker {}", String::from_utf8_lossy(v)),
                owner::Marker::Absent => "no marker".into(),
                owner::Marker::Unsupported => "no xattrs".into(),
            };
            let what = match &i.decision {
                owner::OwnerDecision::Skip => "skip: no walk (O(1))".to_string(),
                owner::OwnerDecision::Walk(why) => format!("walk the volume: {why}"),
            };
            format!(
                "current {}:{}, {marker}; {target}; {what}",
                i.owner.0, i.owner.1
            )
        }
        Err(rustix::io::Errno::NOENT) => {
            format!("{target}; new volume: created with that owner, walked once (empty)")
        }
        Err(e) => format!("{target}; cannot inspect {path}: {e}"),
    }
}

fn describe_idmap(step: &MountStep) -> (String, bool) {
    if !step.idmap {
        return ("no".into(), true);
    }
    let ok = "yes: on-disk ids seen through the container's user namespace, no chown";
    let st = rustix::fs::statfs(source_path(&step.source).as_str());
    match st.as_ref().ok().and_then(mount::not_idmappable_fs) {
        Some(fs) => (
            format!("requested, but the source is on {fs}, which cannot be idmapped"),
            false,
        ),
        None => (ok.into(), true),
    }
}

/// A destination as `check` shows it: the path (`/var/run/app → /run/app`
/// when symlinks in the image move it), its state, and why it would be
/// refused, if it would.
fn describe_dest(rootfs: Option<&RootFs>, dest: &Path) -> (String, String, Option<&'static str>) {
    const FIX: &str = "fix the destination: symlinks in the image are followed inside the rootfs, never when dangling; a volume never goes onto a special file or the wrong file type";
    let Some(rootfs) = rootfs else {
        return (
            dest.display().to_string(),
            "rootfs cannot be opened".into(),
            Some(FIX),
        );
    };
    let d = rootfs.inspect(dest);
    let at = rootfs::shown(dest, d.resolved.as_deref());
    if let Some(why) = d.resolved.as_deref().and_then(rootfs::reserved) {
        return (
            at,
            format!("resolves, through symlinks in the image, to {why}: would be refused"),
            Some("choose a destination that is a real directory of the image"),
        );
    }
    let (state, refused) = match d.state {
        DestState::Directory => ("exists (directory)".into(), false),
        DestState::File => ("exists (file)".into(), false),
        DestState::Other(_) => (
            "exists, but is neither a directory nor a file".into(),
            true,
        ),
        DestState::Missing => ("missing: would be created in the rootfs".into(), false),
        DestState::Dangling(link, target) => (
            format!(
                "{} is a symlink in the image to {}, which does not exist there (dangling): would be refused",
                link.display(),
                target.display()
            ),
            true,
        ),
        DestState::Error(e) => (format!("cannot be resolved: {e}"), true),
    };
    (at, state, refused.then_some(FIX))
}

fn print(report: &Report, format: Format) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if format == Format::Json {
        serde_json::to_writer_pretty(&mut out, report)?;
        return writeln!(out);
    }
    writeln!(out, "bundle:      {}", printable(&report.bundle))?;
    writeln!(out, "rootfs:      {}", printable(&report.root))?;
    writeln!(out, "config:      {}", printable(&report.config))?;
    writeln!(out, "mode:        {}", printable(&report.mode))?;
    match &report.annotation {
        None => {
            writeln!(out, "annotation:  {ANNOTATION_KEY} is not set: the hook does nothing for this container")?;
            return Ok(());
        }
        Some(a) => writeln!(
            out,
            "annotation:  {ANNOTATION_KEY}={}",
            crate::error::quote(a)
        )?,
    }
    for v in &report.volumes {
        let decision = if v.decision == "denied" {
            "denied by policy"
        } else {
            v.decision.as_str()
        };
        writeln!(out, "\nvolume {}: {decision}", crate::error::quote(&v.spec))?;
        for (k, val) in [
            ("rule", &v.rule),
            ("source", &v.source),
            ("  state", &v.source_state),
            ("destination", &v.destination),
            ("  state", &v.destination_state),
            ("options", &v.options),
            ("selinux", &v.selinux),
            ("nfs mount", &v.nfs_mount),
            ("owner", &v.owner),
            ("idmap", &v.idmap),
            ("permits", &v.permits),
            ("warning", &v.warning),
            ("why", &v.why),
            ("hint", &v.hint),
        ] {
            if let Some(val) = val {
                writeln!(out, "  {:<13}{}", format!("{k}:"), printable(val))?;
            }
        }
    }
    let count = |d: &str| report.volumes.iter().filter(|v| v.decision == d).count();
    writeln!(
        out,
        "\nsummary: {} allowed, {} denied, {} invalid, {} failed",
        count("allowed"),
        count("denied"),
        count("invalid"),
        count("failed")
    )
}
