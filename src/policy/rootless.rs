//! What the kernel refuses a normal user's user namespace, refused at once
//! with the reason and what to use instead, before anything is touched:
//! idmapped mounts (mount_setattr MOUNT_ATTR_IDMAP needs CAP_SYS_ADMIN in
//! the initial user namespace) and NFS mounts (NFS is not mountable from a
//! user namespace).

use crate::config::{Backend, Config};
use crate::error::{volume_subject, HookError};
use crate::input::annotations::{RequestSource, VolumeRequest};

/// Refuse a request a rootless hook cannot carry out.
pub fn refuse(config: &Config, req: &VolumeRequest) -> Result<(), HookError> {
    let subject = volume_subject(&req.spec);
    let nfs = match &req.source {
        RequestSource::Nfs(_) => true,
        RequestSource::Named(n) => config
            .volumes
            .get(n)
            .is_some_and(|v| matches!(v.backend(), Backend::Nfs(_))),
        RequestSource::HostPath(_) => false,
    };
    if nfs {
        return Err(HookError::invalid(
            subject,
            "NFS volumes cannot be used by rootless containers: the kernel does not allow an NFS mount in an unprivileged user namespace",
        )
        .hint("mount the export on the host (fstab or autofs, by root) and ask the admin to add that directory to allowed_host_paths, or run the container with rootful podman"));
    }
    if req.options.idmap {
        return Err(HookError::invalid(
            subject,
            "option idmap cannot be used by rootless containers: the kernel does not allow idmapped mounts in an unprivileged user namespace",
        )
        .hint("use option U (e.g. name:/dest:rw+U) to give the volume to the container's user, or run the container with --userns=keep-id"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::annotations::parse_annotation;

    #[test]
    fn idmap_and_nfs_are_refused_with_the_reason() {
        let c = Config::parse(
            "allowed_nfs_servers = [\"10.0.0.5\"]\n[volumes.share]\nnfs = \"10.0.0.5:/srv\"\n",
            std::path::Path::new("/etc/x.toml"),
        )
        .unwrap();
        for (ann, want) in [
            (
                "data:/data:idmap",
                "idmapped mounts in an unprivileged user namespace",
            ),
            (
                "share:/share",
                "NFS mount in an unprivileged user namespace",
            ),
            ("nfs://10.0.0.5/srv:/share", "NFS mount"),
        ] {
            let req = &parse_annotation(ann).unwrap()[0];
            let e = refuse(&c, req).unwrap_err().to_string();
            assert!(e.contains(want), "{ann}: {e}");
        }
        for ok in ["data:/data:ro+nosuid+U", "/srv/x:/x"] {
            assert!(
                refuse(&c, &parse_annotation(ok).unwrap()[0]).is_ok(),
                "{ok}"
            );
        }
    }
}
