//! Plan: approved volumes plus the bundle become an ordered list of kernel
//! steps. Pure data and pure code: unit-tested without root.

use std::path::PathBuf;

use crate::bundle::Bundle;
use crate::config::Access;
use crate::error::HookError;
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
    pub access: Access,
    pub exclusive_readers: bool,
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
        let nfs = matches!(v.source, ResolvedSource::Nfs(_));
        // Parsed, but not applied yet: refuse rather than ignore them
        // (NFS volumes apply z/Z as context= and refuse U/idmap themselves).
        for (on, opt) in [
            (v.options.relabel.is_some(), "z/Z"),
            (v.options.chown, "U"),
            (v.options.idmap, "idmap"),
        ] {
            if on && !nfs {
                return Err(HookError::failed(
                    crate::error::volume_subject(&v.spec),
                    format!("option {opt} is not supported by this build"),
                ));
            }
        }
        let source = match &v.source {
            ResolvedSource::Managed {
                root,
                name,
                auto_create,
            } => {
                let create = if *auto_create {
                    let (uid, gid) = bundle.host_owner()?;
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
            ResolvedSource::Nfs(n) => SourceStep::Nfs(crate::nfs::plan_step(
                bundle,
                n,
                &v.options,
                &crate::error::volume_subject(&v.spec),
            )?),
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
            access: v.access,
            exclusive_readers: v.exclusive_readers,
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
        let c = Config {
            volumes_root: "/nonexistent-ovh/vols".into(),
            ..Config::default()
        };
        let vols: Vec<_> = parse_annotation(ann)
            .unwrap()
            .iter()
            .map(|r| resolve(&c, r).unwrap())
            .collect();
        build(&bundle(json), &vols)
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
}
