//! Plan: approved volumes plus the bundle become an ordered list of kernel
//! steps. Pure data and pure code: unit-tested without root.

use std::path::PathBuf;

use crate::annotations::Relabel;
use crate::bundle::Bundle;
use crate::config::{Access, OwnerChange, RelabelPolicy};
use crate::error::{volume_subject, HookError};
use crate::policy::{ResolvedSource, ResolvedVolume};

/// Mount attributes applied atomically to the detached tree before it is
/// attached (mount_setattr), so there is no "bind, then remount ro" window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MountAttrs {
    pub read_only: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
}

/// How to obtain the source tree in the host mount namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceStep {
    /// Open `root/name` without following symlinks; when missing and
    /// `create` is set, mkdir it with that owner and mode.
    Managed {
        root: PathBuf,
        name: String,
        create: Option<NewDir>,
    },
    /// Open an admin-defined path.
    Admin { path: PathBuf },
    /// Open a host path and check, on the opened fd, that it is still under
    /// `allowed_by` (a symlink swapped in after the policy check is caught).
    Host { path: PathBuf, allowed_by: PathBuf },
    /// Mount an NFS export (`nfs::mount`), within its deadline.
    Nfs(crate::nfs::NfsStep),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewDir {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountStep {
    pub spec: String,
    pub name: Option<String>,
    pub source: SourceStep,
    /// Absolute path inside the container (resolved under `MountPlan::root`).
    pub dest: PathBuf,
    pub attrs: MountAttrs,
    /// SELinux relabelling (`z`/`Z` or the admin's default), done in the
    /// host mount namespace before the tree is cloned.
    pub label: Option<LabelPlan>,
    pub access: Access,
    pub exclusive_readers: bool,
    /// Option `U`: give the volume's files to the container's user.
    pub owner: Option<OwnerPlan>,
    /// Option `idmap`: idmap the mount into the container's user namespace.
    pub idmap: bool,
}

impl MountStep {
    /// What identifies the volume's data for access claims: its host path.
    pub fn source_key(&self) -> PathBuf {
        match &self.source {
            SourceStep::Managed { root, name, .. } => root.join(name),
            SourceStep::Admin { path } | SourceStep::Host { path, .. } => path.clone(),
            // The export (and sub-directory) on its server: claims on one
            // host only see this host's containers.
            SourceStep::Nfs(n) => PathBuf::from(format!("nfs:{}", n.volume.display())),
        }
    }
}

/// What to relabel a volume to and when. The context itself is computed at
/// apply time (it depends on whether SELinux is enabled on the host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelPlan {
    pub mode: Relabel,
    pub policy: RelabelPolicy,
}

/// Option `U`: the on-disk owner every entry of the volume gets, and when
/// to walk the tree to give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerPlan {
    pub uid: u32,
    pub gid: u32,
    pub policy: OwnerChange,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    /// The container's rootfs in the runtime's mount namespace.
    pub root: PathBuf,
    /// Parents before children: a volume at /data is attached before one at
    /// /data/logs, so the second lands on top of the first.
    pub steps: Vec<MountStep>,
}

pub const NEW_VOLUME_MODE: u32 = 0o755;

pub fn build(bundle: &Bundle, volumes: &[ResolvedVolume]) -> Result<MountPlan, HookError> {
    let mut steps = Vec::with_capacity(volumes.len());
    for v in volumes {
        // NFS: z/Z become context=, U and idmap are refused (nfs::plan_step).
        if let ResolvedSource::Nfs(n) = &v.source {
            steps.push(MountStep {
                spec: v.spec.clone(),
                name: v.name.clone(),
                source: SourceStep::Nfs(crate::nfs::plan_step(
                    bundle,
                    n,
                    &v.options,
                    &volume_subject(&v.spec),
                )?),
                dest: v.dest.clone(),
                attrs: MountAttrs {
                    read_only: v.options.read_only,
                    nosuid: v.options.nosuid,
                    nodev: v.options.nodev,
                    noexec: v.options.noexec,
                },
                access: v.access,
                exclusive_readers: v.exclusive_readers,
                label: None,
                owner: None,
                idmap: false,
            });
            continue;
        }
        let idmap = v.options.idmap;
        if idmap && !bundle.has_user_namespace() {
            return Err(HookError::invalid(
                volume_subject(&v.spec),
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
                    volume_subject(&v.spec),
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
        steps.push(MountStep {
            spec: v.spec.clone(),
            name: v.name.clone(),
            source,
            dest: v.dest.clone(),
            attrs: MountAttrs {
                read_only: v.options.read_only,
                nosuid: v.options.nosuid,
                nodev: v.options.nodev,
                noexec: v.options.noexec,
            },
            label: v.options.relabel.map(|mode| LabelPlan {
                mode,
                policy: v.relabel_policy,
            }),
            access: v.access,
            exclusive_readers: v.exclusive_readers,
            owner,
            idmap,
        });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotations::parse_annotation;
    use crate::bundle::Spec;
    use crate::config::Config;
    use crate::policy::resolve;

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
        assert_eq!(p.root, PathBuf::from("/b/rootfs"));
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
        use crate::config::RelabelPolicy;
        let p = plan("{}", "a:/a:Z;b:/b:z;c:/c").unwrap();
        let labels: Vec<_> = p.steps.iter().map(|s| s.label).collect();
        let on_change = RelabelPolicy::OnChange;
        assert_eq!(
            labels,
            [
                Some(LabelPlan {
                    mode: Relabel::Private,
                    policy: on_change
                }),
                // Unset relabel: a shared volume is walked at every start.
                Some(LabelPlan {
                    mode: Relabel::Shared,
                    policy: RelabelPolicy::Always
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
            build(&b, &[r])
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
        build(&bundle(json), &vols)
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
}
