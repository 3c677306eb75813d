//! Plan: approved volumes plus the bundle become an ordered list of kernel
//! steps. Pure data and pure code: it reads no file (the host's SELinux
//! facts come in as [`SelinuxHost`]), so it is unit-tested without root.

use super::selinux::target_context;
use super::step::{
    LabelPlan, MountAttrs, MountPlan, MountStep, NewDir, NfsStep, OwnerPlan, SourceStep,
    NEW_VOLUME_MODE,
};
use crate::error::{volume_subject, HookError};
use crate::input::annotations::Options;
use crate::input::bundle::Bundle;
use crate::input::selinux::SelinuxHost;
use crate::policy::{NfsVolume, ResolvedSource, ResolvedVolume};

impl From<&Options> for MountAttrs {
    fn from(o: &Options) -> Self {
        MountAttrs {
            read_only: o.read_only,
            nosuid: o.nosuid,
            nodev: o.nodev,
            noexec: o.noexec,
        }
    }
}

pub fn build(
    bundle: &Bundle,
    volumes: &[ResolvedVolume],
    selinux: &SelinuxHost,
) -> Result<MountPlan, HookError> {
    let mut steps = Vec::with_capacity(volumes.len());
    for v in volumes {
        let subject = || volume_subject(&v.spec);
        // z/Z: the context a bind volume is relabelled to, or an NFS
        // volume's context=; computed here for both.
        let label = match v.options.relabel {
            Some(mode) => Some(LabelPlan {
                mode,
                policy: v.relabel_policy,
                context: target_context(bundle, selinux, mode).map_err(|e| e.about(subject()))?,
            }),
            None => None,
        };
        let step = |source, owner, idmap| MountStep {
            spec: v.spec.clone(),
            name: v.name.clone(),
            source,
            dest: v.dest.clone(),
            attrs: MountAttrs::from(&v.options),
            label: label.clone(),
            access: v.access,
            exclusive_readers: v.exclusive_readers,
            owner,
            idmap,
        };
        // NFS: z/Z become context=, U and idmap are refused.
        if let ResolvedSource::Nfs(n) = &v.source {
            steps.push(step(
                SourceStep::Nfs(nfs_step(bundle, n, &v.options, &subject())?),
                None,
                false,
            ));
            continue;
        }
        let idmap = v.options.idmap;
        if idmap && !bundle.has_user_namespace() {
            return Err(HookError::invalid(
                subject(),
                "option idmap needs a container with a user namespace, and this one has none",
            )
            .hint("use option U to give the volume to the container's user instead"));
        }
        // The ids files must have on disk for the container's user to own
        // them: the host ids its user maps to, or, through an idmapped mount
        // (which maps on-disk ids through the container's user namespace),
        // the container's own ids.
        let disk_owner = || {
            if idmap {
                Ok(bundle.user())
            } else {
                bundle.host_owner()
            }
        };
        let owner = if v.options.chown {
            if !idmap
                && bundle.has_user_namespace()
                && (bundle.uid_mappings().is_empty() || bundle.gid_mappings().is_empty())
            {
                // A user namespace joined by path: its mappings are not in
                // config.json, so the host ids are unknown here.
                return Err(HookError::invalid(
                    subject(),
                    "option U: the container joins an existing user namespace and config.json has no linux.uidMappings/gidMappings, so its host ids are unknown",
                )
                .hint("use option idmap instead, or give the container its own mappings"));
            }
            let (uid, gid) = disk_owner()?;
            Some(OwnerPlan {
                uid,
                gid,
                policy: v.owner_change,
            })
        } else {
            None
        };
        let source = match &v.source {
            ResolvedSource::Managed {
                root,
                name,
                auto_create,
            } => {
                let create = if *auto_create {
                    let (uid, gid) = disk_owner()?;
                    Some(NewDir {
                        uid,
                        gid,
                        mode: NEW_VOLUME_MODE,
                    })
                } else {
                    None
                };
                SourceStep::Managed {
                    root: root.clone(),
                    name: name.clone(),
                    create,
                }
            }
            ResolvedSource::Admin { path } => SourceStep::Admin { path: path.clone() },
            ResolvedSource::Host { path, allowed_by } => SourceStep::Host {
                path: path.clone(),
                allowed_by: allowed_by.clone(),
            },
            // Planned above.
            ResolvedSource::Nfs(_) => continue,
        };
        steps.push(step(source, owner, idmap));
    }
    steps.sort_by(|a, b| {
        a.dest
            .components()
            .count()
            .cmp(&b.dest.components().count())
            .then_with(|| a.dest.cmp(&b.dest))
    });
    Ok(MountPlan {
        root: bundle.root_path(),
        steps,
    })
}

/// Plan an NFS volume: refuse what NFS cannot do; sub-directories created
/// on first use belong to the container's user.
fn nfs_step(
    bundle: &Bundle,
    volume: &NfsVolume,
    options: &Options,
    subject: &str,
) -> Result<NfsStep, HookError> {
    if options.idmap {
        return Err(HookError::failed(
            subject,
            format!("option idmap cannot be used on NFS volume {}: the kernel cannot idmap NFS mounts", volume.display()),
        )
        .hint("remove idmap; the server decides file ownership on NFS (e.g. all_squash,anonuid= in its exports)"));
    }
    if options.chown {
        return Err(HookError::failed(
            subject,
            format!("option U cannot be used on NFS volume {}: file ownership on NFS is the server's (root may be squashed), so the hook does not chown NFS files", volume.display()),
        )
        .hint("remove U; a sub-directory (subdir) is created owned by the container's user, or set the owner on the server"));
    }
    let (uid, gid) = bundle.host_owner()?;
    Ok(NfsStep {
        volume: volume.clone(),
        new_dir: NewDir {
            uid,
            gid,
            mode: NEW_VOLUME_MODE,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, OwnerChange, RelabelPolicy};
    use crate::input::annotations::{parse_annotation, Relabel};
    use crate::input::bundle::Spec;
    use crate::policy::resolve;
    /// A host without SELinux, as this test machine is; no file is read.
    fn off() -> SelinuxHost {
        SelinuxHost::disabled("SELinux is disabled (test)")
    }

    fn bundle(json: &str) -> Bundle {
        Bundle {
            dir: "/b".into(),
            spec: Spec::parse(json.as_bytes()).unwrap(),
        }
    }

    fn plan(json: &str, ann: &str) -> Result<MountPlan, HookError> {
        plan_with("", json, ann)
    }

    #[test]
    fn parents_before_children_and_attrs() {
        let p = plan(
            r#"{"root":{"path":"rootfs"}}"#,
            "b:/data/logs:ro,noexec;a:/data;c:/aa",
        )
        .unwrap();
        let dests: Vec<_> = p.steps.iter().map(|s| s.dest.to_str().unwrap()).collect();
        assert_eq!(dests, ["/aa", "/data", "/data/logs"]);
        assert_eq!(p.root, std::path::PathBuf::from("/b/rootfs"));
        let logs = &p.steps[2];
        assert_eq!(
            logs.attrs,
            MountAttrs {
                read_only: true,
                nosuid: true,
                nodev: true,
                noexec: true
            }
        );
        assert_eq!(
            p.steps[1].attrs,
            MountAttrs {
                read_only: false,
                nosuid: true,
                nodev: true,
                noexec: false
            }
        );
    }

    #[test]
    fn new_volumes_are_owned_by_the_mapped_container_user() {
        let p = plan(
            r#"{"process":{"user":{"uid":1000,"gid":1001}},"linux":{"uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],"gidMappings":[{"containerID":0,"hostID":100000,"size":65536}]}}"#,
            "myapp:/myapp",
        )
        .unwrap();
        match &p.steps[0].source {
            SourceStep::Managed {
                create: Some(n), ..
            } => {
                assert_eq!((n.uid, n.gid, n.mode), (101000, 101001, 0o755))
            }
            other => panic!("unexpected {other:?}"),
        }
        let p = plan(r#"{"process":{"user":{"uid":0,"gid":0}}}"#, "myapp:/myapp").unwrap();
        assert!(matches!(
            &p.steps[0].source,
            SourceStep::Managed {
                create: Some(NewDir { uid: 0, gid: 0, .. }),
                ..
            }
        ));
    }

    #[test]
    fn z_and_capital_z_become_label_steps() {
        let p = plan("{}", "a:/a:Z;b:/b:z;c:/c").unwrap();
        let labels: Vec<_> = p.steps.iter().map(|s| s.label.clone()).collect();
        let on_change = RelabelPolicy::OnChange;
        assert_eq!(
            labels,
            [
                Some(LabelPlan {
                    mode: Relabel::Private,
                    policy: on_change,
                    context: None
                }),
                // Unset relabel: a shared volume is walked at every start.
                Some(LabelPlan {
                    mode: Relabel::Shared,
                    policy: RelabelPolicy::Always,
                    context: None
                }),
                None
            ]
        );
    }

    #[test]
    fn unmapped_user_fails_the_plan() {
        let e = plan(
            r#"{"process":{"user":{"uid":5}},"linux":{"uidMappings":[{"containerID":1000,"hostID":1,"size":1}]}}"#,
            "myapp:/myapp",
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn nfs_steps_take_z_and_refuse_u_and_idmap() {
        let c = Config {
            allowed_nfs_servers: vec!["10.0.0.5".into()],
            ..Config::default()
        };
        let b = bundle(r#"{"process":{"user":{"uid":1000,"gid":1000}}}"#);
        let go = |ann: &str| {
            let r = resolve(&c, &parse_annotation(ann).unwrap()[0]).unwrap();
            build(&b, &[r], &off())
        };
        let p = go("nfs://10.0.0.5/srv:/data:z,ro").unwrap();
        match &p.steps[0].source {
            SourceStep::Nfs(n) => {
                assert_eq!((n.new_dir.uid, n.new_dir.gid), (1000, 1000));
                assert!(p.steps[0].attrs.read_only);
            }
            other => panic!("{other:?}"),
        }
        let e = go("nfs://10.0.0.5/srv:/data:U").unwrap_err().to_string();
        assert!(
            e.contains("option U cannot be used on NFS volume 10.0.0.5:/srv"),
            "{e}"
        );
        let e = go("nfs://10.0.0.5/srv:/data:idmap")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot idmap NFS"), "{e}");
        let e = parse_annotation("nfs://10.0.0.5/srv:/data:vers=3")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown option \"vers=3\"") && e.contains("admin"),
            "{e}"
        );
    }

    const USERNS: &str = r#"{"process":{"user":{"uid":1000,"gid":1001}},"linux":{"namespaces":[{"type":"user"}],"uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],"gidMappings":[{"containerID":0,"hostID":100000,"size":65536}]}}"#;

    fn plan_with(config: &str, json: &str, ann: &str) -> Result<MountPlan, HookError> {
        let mut c = Config::parse(config, std::path::Path::new("/c.toml")).unwrap();
        c.volumes_root = "/nonexistent-ovh/vols".into();
        let vols: Vec<_> = parse_annotation(ann)
            .unwrap()
            .iter()
            .map(|r| resolve(&c, r).unwrap())
            .collect();
        build(&bundle(json), &vols, &off())
    }

    #[test]
    fn option_u_targets_the_container_user_as_host_ids() {
        // No user namespace: the process ids are the host ids.
        let p = plan(
            r#"{"process":{"user":{"uid":1000,"gid":1000}}}"#,
            "a:/a:U;b:/b",
        )
        .unwrap();
        assert_eq!(
            p.steps[0].owner,
            Some(OwnerPlan {
                uid: 1000,
                gid: 1000,
                policy: OwnerChange::OnRootMismatch
            })
        );
        assert_eq!(p.steps[1].owner, None);
        assert!(!p.steps[0].idmap);
        // A user namespace: mapped through uidMappings/gidMappings.
        let p = plan(USERNS, "a:/a:U").unwrap();
        let o = p.steps[0].owner.unwrap();
        assert_eq!((o.uid, o.gid), (101000, 101001));
        // Unmapped user: invalid, not a silent root chown.
        let e = plan(
            r#"{"process":{"user":{"uid":70000}},"linux":{"namespaces":[{"type":"user"}],"uidMappings":[{"containerID":0,"hostID":100000,"size":65536}]}}"#,
            "a:/a:U",
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn owner_change_policy_per_volume_then_global() {
        let cfg =
            "owner_change = \"always\"\n[volumes.keep]\nowner_change = \"on-root-mismatch\"\n";
        let p = plan_with(cfg, "{}", "keep:/k:U;other:/o:U").unwrap();
        let by = |d: &str| {
            p.steps
                .iter()
                .find(|s| s.dest == std::path::Path::new(d))
                .unwrap()
        };
        assert_eq!(by("/k").owner.unwrap().policy, OwnerChange::OnRootMismatch);
        assert_eq!(by("/o").owner.unwrap().policy, OwnerChange::Always);
        let p = plan_with("", "{}", "x:/x:U").unwrap();
        assert_eq!(
            p.steps[0].owner.unwrap().policy,
            OwnerChange::OnRootMismatch
        );
    }

    #[test]
    fn idmap_needs_a_user_namespace_and_keeps_container_ids_on_disk() {
        let e = plan(
            r#"{"process":{"user":{"uid":1000,"gid":1000}}}"#,
            "a:/a:idmap",
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("user namespace"), "{e}");
        assert!(e.hint.as_deref().unwrap().contains("option U"), "{e}");
        let p = plan(USERNS, "a:/a:idmap").unwrap();
        assert!(p.steps[0].idmap);
        assert_eq!(p.steps[0].owner, None);
        // Through an idmapped mount on-disk ids are container ids: a new
        // volume and a U walk use the unmapped process ids.
        match &p.steps[0].source {
            SourceStep::Managed {
                create: Some(n), ..
            } => assert_eq!((n.uid, n.gid), (1000, 1001)),
            other => panic!("unexpected {other:?}"),
        }
        let p = plan(USERNS, "a:/a:idmap,U").unwrap();
        let o = p.steps[0].owner.unwrap();
        assert_eq!((o.uid, o.gid, p.steps[0].idmap), (1000, 1001, true));
    }

    #[test]
    fn u_in_a_joined_user_namespace_without_mappings_is_refused() {
        let json = r#"{"process":{"user":{"uid":0}},"linux":{"namespaces":[{"type":"user","path":"/proc/1/ns/user"}]}}"#;
        let e = plan(json, "a:/a:U").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("uidMappings"), "{e}");
        assert!(plan(json, "a:/a:idmap,U").is_ok());
    }

    /// SELinux enforcing, without /sys/fs/selinux or /etc/selinux: the plan
    /// takes the host's facts as data, and gives bind and NFS volumes their
    /// contexts in the same place.
    #[test]
    fn contexts_for_bind_and_nfs_volumes_come_from_host_facts() {
        let host = SelinuxHost {
            enabled: Ok(()),
            file_context: Ok("system_u:object_r:container_file_t:s0".into()),
        };
        let c = Config {
            allowed_nfs_servers: vec!["10.0.0.5".into()],
            ..Config::default()
        };
        let b = bundle(r#"{"process":{"selinuxLabel":"system_u:system_r:container_t:s0:c7,c8"}}"#);
        let vols: Vec<_> = parse_annotation("a:/a:Z;nfs://10.0.0.5/srv:/n:Z;c:/c:z")
            .unwrap()
            .iter()
            .map(|r| resolve(&c, r).unwrap())
            .collect();
        let p = build(&b, &vols, &host).unwrap();
        let ctx = |d: &str| {
            let s = p
                .steps
                .iter()
                .find(|s| s.dest == std::path::Path::new(d))
                .unwrap();
            s.label.as_ref().unwrap().context.clone()
        };
        let private = Some("system_u:object_r:container_file_t:s0:c7,c8".to_string());
        assert_eq!(ctx("/a"), private);
        assert_eq!(
            ctx("/n"),
            private,
            "NFS gets the same context as a bind volume"
        );
        assert_eq!(
            ctx("/c").as_deref(),
            Some("system_u:object_r:container_file_t:s0")
        );
        // A policy file that cannot be read fails the plan, naming the volume.
        let broken = SelinuxHost {
            enabled: Ok(()),
            file_context: Err(HookError::failed("selinux", "no lxc_contexts")),
        };
        let e = build(&b, &vols[..1], &broken).unwrap_err().to_string();
        assert!(
            e.starts_with("volume \"a:/a:Z\" failed: no lxc_contexts"),
            "{e}"
        );
        // Disabled: no context, nothing read.
        let p = build(&b, &vols, &off()).unwrap();
        assert!(p
            .steps
            .iter()
            .all(|s| s.label.as_ref().unwrap().context.is_none()));
    }
}
