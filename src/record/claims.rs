//! Access claims: who holds which volume. Claims are the per-container
//! records (record.rs) of containers that are still alive; a record whose
//! holder is gone (crashed runtime, `runc delete` that skipped hooks) is
//! stale and recovered. Checked and written under one lock, so of many
//! containers started at once on an exclusive volume exactly one wins.

use std::path::PathBuf;

use super::store::Record;
use crate::config::Access;
use crate::error::{volume_subject, HookError};
use crate::plan::MountStep;

/// A live holder's use of a volume.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub id: String,
    pub pid: Option<i32>,
    pub attached_at: u64,
    pub source: PathBuf,
    pub read_only: bool,
}

/// Every volume use of live records, other than `me`.
pub fn holders(live: &[Record], me: &str) -> Vec<Holder> {
    live.iter()
        .filter(|r| r.id != me)
        .flat_map(|r| {
            r.volumes.iter().map(|v| Holder {
                id: r.id.clone(),
                pid: r.pid,
                attached_at: r.attached_at,
                source: v.source.clone(),
                read_only: v.read_only,
            })
        })
        .collect()
}

/// Refuse a step that an exclusive volume's current holders forbid.
pub fn check(step: &MountStep, holders: &[Holder]) -> Result<(), HookError> {
    if step.access != Access::Exclusive {
        return Ok(());
    }
    let key = step.source_key();
    let me_ro = step.attrs.read_only;
    for h in holders.iter().filter(|h| h.source == key) {
        // Writers exclude each other; without exclusive_readers, any user
        // excludes every other.
        let conflict = if step.exclusive_readers {
            !me_ro && !h.read_only
        } else {
            true
        };
        if conflict {
            let what = if h.read_only { "reads" } else { "holds" };
            return Err(HookError::failed(
                volume_subject(&step.spec),
                format!(
                    "volume {} is exclusive and container {} {what} it (pid {}, since {})",
                    step.name.as_deref().unwrap_or("?"),
                    crate::error::short_id(&h.id),
                    h.pid.map_or("?".into(), |p| p.to_string()),
                    h.attached_at
                ),
            )
            .hint(if step.exclusive_readers && !me_ro {
                "stop that container first, or attach this one read-only (:ro)"
            } else {
                "stop that container first"
            }));
        }
    }
    Ok(())
}

/// Z: refuse a volume that another running container uses with another
/// label (relabelling it would lock that container out).
pub fn private_label_free(
    step: &MountStep,
    target: &str,
    live: &[Record],
    me: &str,
) -> Result<(), HookError> {
    let key = step.source_key();
    for r in live.iter().filter(|r| r.id != me) {
        let other = r
            .volumes
            .iter()
            .filter(|v| v.source == key)
            .find_map(|v| v.label.as_deref().filter(|l| *l != target));
        if let Some(other) = other {
            return Err(HookError::failed(
                volume_subject(&step.spec),
                format!(
                    "{} is in use by running container {} with label {other}; relabelling it private (Z) to {target} would lock that container out",
                    key.display(),
                    crate::error::short_id(&r.id)
                ),
            )
            .hint("use z to share the volume between containers, or stop the other container first"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{MountAttrs, SourceStep};

    fn step(access: Access, ro: bool, readers: bool) -> MountStep {
        MountStep {
            spec: "db:/db".into(),
            name: Some("db".into()),
            source: SourceStep::Admin {
                path: "/srv/db".into(),
            },
            dest: "/db".into(),
            attrs: MountAttrs {
                read_only: ro,
                ..Default::default()
            },
            label: None,
            access,
            exclusive_readers: readers,
            owner: None,
            idmap: false,
        }
    }

    fn holder(ro: bool) -> Holder {
        Holder {
            id: "abcdef0123456789".into(),
            pid: Some(42),
            attached_at: 7,
            source: "/srv/db".into(),
            read_only: ro,
        }
    }

    #[test]
    fn exclusive_rules() {
        // Shared volumes never conflict.
        assert!(check(&step(Access::Shared, false, false), &[holder(false)]).is_ok());
        // A second writer is refused, naming the holder.
        let e = check(&step(Access::Exclusive, false, false), &[holder(false)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("container abcdef012345 holds it (pid 42"), "{e}");
        // Without exclusive_readers, even a reader is refused, and a writer is refused beside a reader.
        assert!(check(&step(Access::Exclusive, true, false), &[holder(false)]).is_err());
        assert!(check(&step(Access::Exclusive, false, false), &[holder(true)]).is_err());
        // With exclusive_readers, readers come and go beside one writer.
        assert!(check(&step(Access::Exclusive, true, true), &[holder(false)]).is_ok());
        assert!(check(&step(Access::Exclusive, false, true), &[holder(true)]).is_ok());
        let e = check(&step(Access::Exclusive, false, true), &[holder(false)]).unwrap_err();
        assert!(e.hint.unwrap().contains(":ro"));
        // Other volumes do not count.
        let mut other = holder(false);
        other.source = "/srv/other".into();
        assert!(check(&step(Access::Exclusive, false, false), &[other]).is_ok());
        assert!(check(&step(Access::Exclusive, false, false), &[]).is_ok());
    }
}
