//! The few fields of the bundle's config.json the hook needs, decoded
//! leniently: unknown fields, unknown capability names or a newer runtime-spec
//! version never break the hook.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxIdMapping;
use serde::Deserialize;

use crate::error::HookError;

/// Largest config.json accepted. podman's are ~20 KiB.
pub const MAX_CONFIG_JSON_BYTES: u64 = 16 << 20;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Spec {
    #[serde(default)]
    pub root: Option<Root>,
    #[serde(default)]
    pub process: Option<Process>,
    #[serde(default)]
    pub linux: Option<Linux>,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Root {
    #[serde(default)]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Process {
    #[serde(default)]
    pub user: User,
    #[serde(default, rename = "selinuxLabel")]
    pub selinux_label: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct User {
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Linux {
    #[serde(default, rename = "uidMappings")]
    pub uid_mappings: Vec<LinuxIdMapping>,
    #[serde(default, rename = "gidMappings")]
    pub gid_mappings: Vec<LinuxIdMapping>,
    #[serde(default, rename = "mountLabel")]
    pub mount_label: Option<String>,
    #[serde(default)]
    pub namespaces: Vec<Namespace>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Namespace {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Mount {
    #[serde(default)]
    pub destination: PathBuf,
}

/// A loaded bundle: its directory and the decoded config.json.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
}

impl Bundle {
    pub fn load(dir: &Path) -> Result<Bundle, HookError> {
        if dir.as_os_str().is_empty() {
            return Err(HookError::invalid(
                "bundle",
                "the state names no bundle directory",
            ));
        }
        if !dir.is_absolute() {
            return Err(HookError::invalid(
                "bundle",
                format!("bundle path {} is not absolute", dir.display()),
            ));
        }
        let path = dir.join("config.json");
        let subject = format!("bundle {}", dir.display());
        let file = File::open(&path).map_err(|e| {
            HookError::failed(&subject, format!("open {}: {e}", path.display()))
                .hint("the runtime's bundle directory must hold config.json")
        })?;
        let mut buf = Vec::new();
        file.take(MAX_CONFIG_JSON_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|e| HookError::failed(&subject, format!("read {}: {e}", path.display())))?;
        if buf.len() as u64 > MAX_CONFIG_JSON_BYTES {
            return Err(HookError::invalid(
                &subject,
                format!(
                    "{} is larger than {MAX_CONFIG_JSON_BYTES} bytes",
                    path.display()
                ),
            ));
        }
        let spec = Spec::parse(&buf).map_err(|e| e.about(subject))?;
        Ok(Bundle {
            dir: dir.to_path_buf(),
            spec,
        })
    }

    /// The rootfs as an absolute path: `root.path` joined to the bundle when
    /// relative (runc, crun), as is when absolute (podman), `rootfs` when unset.
    pub fn root_path(&self) -> PathBuf {
        match self.spec.root.as_ref().map(|r| r.path.as_path()) {
            Some(p) if p.is_absolute() => p.to_path_buf(),
            Some(p) if !p.as_os_str().is_empty() => self.dir.join(p),
            _ => self.dir.join("rootfs"),
        }
    }

    pub fn user(&self) -> (u32, u32) {
        let u = self
            .spec
            .process
            .as_ref()
            .map(|p| p.user.clone())
            .unwrap_or_default();
        (u.uid, u.gid)
    }

    pub fn uid_mappings(&self) -> &[LinuxIdMapping] {
        self.spec.linux.as_ref().map_or(&[], |l| &l.uid_mappings)
    }

    pub fn gid_mappings(&self) -> &[LinuxIdMapping] {
        self.spec.linux.as_ref().map_or(&[], |l| &l.gid_mappings)
    }

    pub fn mount_label(&self) -> Option<&str> {
        self.spec
            .linux
            .as_ref()
            .and_then(|l| l.mount_label.as_deref())
            .filter(|s| !s.is_empty())
    }

    pub fn process_label(&self) -> Option<&str> {
        self.spec
            .process
            .as_ref()
            .and_then(|p| p.selinux_label.as_deref())
            .filter(|s| !s.is_empty())
    }

    pub fn has_user_namespace(&self) -> bool {
        self.spec
            .linux
            .as_ref()
            .is_some_and(|l| l.namespaces.iter().any(|n| n.kind == "user"))
    }

    /// The container's (process) owner as host ids: uid/gid mapped through the
    /// user-namespace mappings when there are any.
    pub fn host_owner(&self) -> Result<(u32, u32), HookError> {
        let (uid, gid) = self.user();
        let huid = map_id(self.uid_mappings(), uid).ok_or_else(|| {
            HookError::invalid(
                "bundle",
                format!("process.user.uid {uid} is not covered by linux.uidMappings"),
            )
        })?;
        let hgid = map_id(self.gid_mappings(), gid).ok_or_else(|| {
            HookError::invalid(
                "bundle",
                format!("process.user.gid {gid} is not covered by linux.gidMappings"),
            )
        })?;
        Ok((huid, hgid))
    }
}

impl Spec {
    pub fn parse(bytes: &[u8]) -> Result<Spec, HookError> {
        // serde would also take a JSON array as a struct; a config is an object.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(HookError::invalid("config.json", "not a JSON object"));
        }
        serde_json::from_slice(bytes).map_err(|e| {
            HookError::invalid(
                "config.json",
                format!("not a valid OCI runtime config: {e}"),
            )
        })
    }
}

/// Map a container id to a host id through OCI id mappings; no mappings means
/// no user namespace, so the id is the host id.
pub fn map_id(mappings: &[LinuxIdMapping], id: u32) -> Option<u32> {
    if mappings.is_empty() {
        return Some(id);
    }
    mappings.iter().find_map(|m| {
        let offset = id.checked_sub(m.container_id())?;
        (offset < m.size())
            .then(|| m.host_id().checked_add(offset))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Bundle {
        Bundle {
            dir: PathBuf::from("/b"),
            spec: Spec::parse(json.as_bytes()).unwrap(),
        }
    }

    #[test]
    fn root_path_relative_absolute_and_missing() {
        assert_eq!(
            spec(r#"{"root":{"path":"rootfs"}}"#).root_path(),
            PathBuf::from("/b/rootfs")
        );
        assert_eq!(
            spec(r#"{"root":{"path":"/var/lib/containers/storage/overlay/x/merged"}}"#).root_path(),
            PathBuf::from("/var/lib/containers/storage/overlay/x/merged")
        );
        assert_eq!(spec("{}").root_path(), PathBuf::from("/b/rootfs"));
    }

    #[test]
    fn unknown_fields_and_capabilities_do_not_break_decoding() {
        let b = spec(
            r#"{"ociVersion":"9.9.9","process":{"user":{"uid":1000,"gid":1000,"additionalGids":[5]},
            "capabilities":{"bounding":["CAP_FUTURE_THING","CAP_CHOWN"]},"selinuxLabel":"system_u:system_r:container_t:s0:c1,c2"},
            "linux":{"mountLabel":"system_u:object_r:container_file_t:s0:c1,c2","futureField":{"x":1},
            "namespaces":[{"type":"mount"},{"type":"user"}],
            "uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
            "gidMappings":[{"containerID":0,"hostID":200000,"size":65536}]},
            "mounts":[{"destination":"/tmp","type":"tmpfs","source":"tmpfs","options":["nosuid"]}],
            "someNewTopLevel":true}"#,
        );
        assert_eq!(b.user(), (1000, 1000));
        assert_eq!(b.host_owner().unwrap(), (101000, 201000));
        assert!(b.has_user_namespace());
        assert_eq!(
            b.mount_label(),
            Some("system_u:object_r:container_file_t:s0:c1,c2")
        );
        assert_eq!(
            b.process_label(),
            Some("system_u:system_r:container_t:s0:c1,c2")
        );
        assert_eq!(b.spec.mounts[0].destination, PathBuf::from("/tmp"));
    }

    #[test]
    fn id_mapping_edges() {
        let maps: Vec<LinuxIdMapping> = serde_json::from_str(
            r#"[{"containerID":0,"hostID":100000,"size":1000},{"containerID":1000,"hostID":5000,"size":1}]"#,
        )
        .unwrap();
        assert_eq!(map_id(&maps, 0), Some(100000));
        assert_eq!(map_id(&maps, 999), Some(100999));
        assert_eq!(map_id(&maps, 1000), Some(5000));
        assert_eq!(map_id(&maps, 1001), None);
        assert_eq!(map_id(&[], 42), Some(42));
        let overflow: Vec<LinuxIdMapping> =
            serde_json::from_str(r#"[{"containerID":0,"hostID":4294967295,"size":10}]"#).unwrap();
        assert_eq!(map_id(&overflow, 1), None);
    }

    #[test]
    fn unmapped_user_is_an_error() {
        let b = spec(
            r#"{"process":{"user":{"uid":70000,"gid":0}},"linux":{"uidMappings":[{"containerID":0,"hostID":100000,"size":65536}]}}"#,
        );
        assert!(b
            .host_owner()
            .unwrap_err()
            .to_string()
            .contains("uidMappings"));
    }

    #[test]
    fn malformed_config_is_invalid_not_panic() {
        for bad in ["", "{", "[]", r#"{"root":5}"#, r#"{"mounts":{}}"#] {
            assert!(Spec::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
