//! Access claims: who holds which volume. Claims are the per-container
//! records ([`super::store`]) of containers that are still alive; a record
//! whose holder is gone (crashed runtime, `runc delete` that skipped hooks)
//! is stale and recovered. Checked and written under one lock, so of many
//! containers started at once on an exclusive volume exactly one wins.
//!
//! A claim is on the volume itself, not on the name it was asked by: two
//! uses overlap when their sources are the same object (`st_dev`, `st_ino`
//! of the opened root) or when one host path contains the other. So an
//! exclusive volume reached through an allowed host path, a bind-mount
//! alias or a parent directory still conflicts with its holder.

use std::path::{Path, PathBuf};

use super::store::{Record, RecordVolume};
use crate::apply::SourceKey;
use crate::config::Access;
use crate::error::{short_id, volume_subject, HookError};
use crate::input::annotations::Relabel;
use crate::plan::MountStep;

/// A live holder's use of a volume.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub id: String,
    pub pid: Option<i32>,
    pub attached_at: u64,
    pub volume: RecordVolume,
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
                volume: v.clone(),
            })
        })
        .collect()
}

/// Do two uses reach the same data? The same root object, or one host
/// path at or below the other (component by component).
pub fn overlaps(key: &SourceKey, path: &Path, id: Option<(u64, u64)>) -> bool {
    (key.id.is_some() && key.id == id) || key.path.starts_with(path) || path.starts_with(&key.path)
}

fn holding<'h>(key: &'h SourceKey, holders: &'h [Holder]) -> impl Iterator<Item = &'h Holder> {
    holders
        .iter()
        .filter(move |h| overlaps(key, &h.volume.source, h.volume.id))
}

/// Refuse a step that an exclusive volume's current holders forbid, on
/// either side: this request's volume is exclusive, or a holder's is.
pub fn check(step: &MountStep, key: &SourceKey, holders: &[Holder]) -> Result<(), HookError> {
    let me_ro = step.attrs.read_only;
    for h in holding(key, holders) {
        let mine = step.access == Access::Exclusive;
        let theirs = h.volume.access == Access::Exclusive;
        if !mine && !theirs {
            continue;
        }
        // Writers exclude each other; without exclusive_readers (on every
        // exclusive side), any user excludes every other.
        let readers = (!mine || step.exclusive_readers) && (!theirs || h.volume.exclusive_readers);
        let conflict = if readers {
            !me_ro && !h.volume.read_only
        } else {
            true
        };
        if conflict {
            let what = if h.volume.read_only { "reads" } else { "holds" };
            let name = if theirs {
                h.volume.name.as_deref().or(step.name.as_deref())
            } else {
                step.name.as_deref().or(h.volume.name.as_deref())
            };
            let alias = if h.volume.source == key.path {
                String::new()
            } else {
                format!(" (as {})", h.volume.source.display())
            };
            return Err(HookError::failed(
                volume_subject(&step.spec),
                format!(
                    "volume {} is exclusive and container {} {what} it{alias} (pid {}, since {})",
                    name.unwrap_or("?"),
                    short_id(&h.id),
                    h.pid.map_or("?".into(), |p| p.to_string()),
                    h.attached_at
                ),
            )
            .hint(if readers && !me_ro {
                "stop that container first, or attach this one read-only (:ro)"
            } else {
                "stop that container first"
            }));
        }
    }
    Ok(())
}

/// z/Z against running holders: relabelling a volume private (Z) that
/// another running container uses with another label would lock that
/// container out, and relabelling shared (z) one that a container holds
/// privately (Z) would hand its private files to every container.
pub fn labels_free(step: &MountStep, key: &SourceKey, holders: &[Holder]) -> Result<(), HookError> {
    let Some((mode, target)) = step
        .label
        .as_ref()
        .and_then(|l| l.context.as_deref().map(|c| (l.mode, c)))
    else {
        return Ok(());
    };
    for h in holding(key, holders) {
        let Some(other) = h.volume.label.as_deref() else {
            continue;
        };
        let why = match mode {
            Relabel::Private if other != target => format!(
                "{} is in use by running container {} with label {other}; relabelling it private (Z) to {target} would lock that container out",
                key.path.display(),
                short_id(&h.id)
            ),
            Relabel::Shared if h.volume.label_private => format!(
                "{} is held private (Z) by running container {} with label {other}; relabelling it shared (z) to {target} would give that container's private files to every container",
                key.path.display(),
                short_id(&h.id)
            ),
            _ => continue,
        };
        return Err(HookError::failed(volume_subject(&step.spec), why).hint(match mode {
            Relabel::Private => {
                "use z to share the volume between containers, or stop the other container first"
            }
            Relabel::Shared => "stop that container first, or use another volume",
        }));
    }
    Ok(())
}

/// The record (a claim until it is marked attached) of a container or
/// machine `id`, held by `pid`, about to use `steps` keyed by `keys`.
pub fn claim(
    id: &str,
    bundle: PathBuf,
    root: PathBuf,
    pid: i32,
    steps: &[MountStep],
    keys: &[SourceKey],
) -> Record {
    Record {
        id: id.to_string(),
        bundle,
        root,
        attached_at: super::now(),
        pid: Some(pid),
        pid_start: super::pid_start_time(pid),
        attached: false,
        volumes: steps
            .iter()
            .zip(keys)
            .map(|(s, k)| record_volume(s, k))
            .collect(),
    }
}

/// Every claim rule for every step against the live holders other than
/// `me`: exclusive access, and z/Z against held labels.
pub fn check_all(
    steps: &[MountStep],
    keys: &[SourceKey],
    live: &[Record],
    me: &str,
) -> Result<(), HookError> {
    let holders = holders(live, me);
    for (step, key) in steps.iter().zip(keys) {
        check(step, key, &holders)?;
        labels_free(step, key, &holders)?;
    }
    Ok(())
}

/// What a record says of a volume this container is about to use.
pub fn record_volume(step: &MountStep, key: &SourceKey) -> RecordVolume {
    let label = step.label.as_ref().and_then(|l| l.context.clone());
    RecordVolume {
        spec: step.spec.clone(),
        name: step.name.clone(),
        source: key.path.clone(),
        id: key.id,
        dest: step.dest.clone(),
        read_only: step.attrs.read_only,
        access: step.access,
        exclusive_readers: step.exclusive_readers,
        label_private: label.is_some()
            && step
                .label
                .as_ref()
                .is_some_and(|l| l.mode == Relabel::Private),
        label,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RelabelPolicy;
    use crate::plan::{LabelPlan, MountAttrs, SourceStep};

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

    fn key(path: &str, id: Option<(u64, u64)>) -> SourceKey {
        SourceKey {
            path: path.into(),
            id,
        }
    }

    fn holder(ro: bool) -> Holder {
        holder_of(
            &step(Access::Exclusive, ro, false),
            &key("/srv/db", Some((1, 2))),
        )
    }

    fn holder_of(s: &MountStep, k: &SourceKey) -> Holder {
        Holder {
            id: "abcdef0123456789".into(),
            pid: Some(42),
            attached_at: 7,
            volume: record_volume(s, k),
        }
    }

    #[test]
    fn exclusive_rules() {
        let k = key("/srv/db", Some((1, 2)));
        let shared_holder = holder_of(&step(Access::Shared, false, false), &k);
        // Shared volumes never conflict.
        assert!(check(&step(Access::Shared, false, false), &k, &[shared_holder]).is_ok());
        // A second writer is refused, naming the holder.
        let e = check(&step(Access::Exclusive, false, false), &k, &[holder(false)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("container abcdef012345 holds it (pid 42"), "{e}");
        // Without exclusive_readers, even a reader is refused, and a writer is refused beside a reader.
        assert!(check(&step(Access::Exclusive, true, false), &k, &[holder(false)]).is_err());
        assert!(check(&step(Access::Exclusive, false, false), &k, &[holder(true)]).is_err());
        // With exclusive_readers, readers come and go beside one writer.
        let readers_holder = |ro| holder_of(&step(Access::Exclusive, ro, true), &k);
        assert!(check(
            &step(Access::Exclusive, true, true),
            &k,
            &[readers_holder(false)]
        )
        .is_ok());
        assert!(check(
            &step(Access::Exclusive, false, true),
            &k,
            &[readers_holder(true)]
        )
        .is_ok());
        let e = check(
            &step(Access::Exclusive, false, true),
            &k,
            &[readers_holder(false)],
        )
        .unwrap_err();
        assert!(e.hint.unwrap().contains(":ro"));
        // Other volumes do not count.
        let other = key("/srv/other", Some((1, 3)));
        assert!(check(
            &step(Access::Exclusive, false, false),
            &other,
            &[holder(false)]
        )
        .is_ok());
        assert!(check(&step(Access::Exclusive, false, false), &k, &[]).is_ok());
    }

    /// Security #12 item 7: the claim is on the volume, however it is reached.
    #[test]
    fn aliases_of_an_exclusive_volume_conflict() {
        let held = holder(false);
        let mut by_path = step(Access::Shared, false, false);
        by_path.name = None;
        // The same object under another path (a bind-mount alias).
        let e = check(
            &by_path,
            &key("/mnt/alias", Some((1, 2))),
            std::slice::from_ref(&held),
        )
        .unwrap_err();
        assert!(e.to_string().contains("volume db is exclusive"), "{e}");
        assert!(e.to_string().contains("(as /srv/db)"), "{e}");
        // A parent directory, and a sub-directory, of the volume.
        assert!(check(
            &by_path,
            &key("/srv", Some((1, 9))),
            std::slice::from_ref(&held)
        )
        .is_err());
        assert!(check(
            &by_path,
            &key("/srv/db/sub", None),
            std::slice::from_ref(&held)
        )
        .is_err());
        // A sibling whose name shares a prefix is another volume.
        assert!(check(&by_path, &key("/srv/db2", Some((1, 8))), &[held]).is_ok());
    }

    /// Security #12 item 9: z on a volume another container holds with Z.
    #[test]
    fn shared_label_refused_on_a_privately_held_volume() {
        let k = key("/srv/db", Some((1, 2)));
        let labelled = |mode, ctx: &str| {
            let mut s = step(Access::Shared, false, false);
            s.label = Some(LabelPlan {
                mode,
                policy: RelabelPolicy::OnChange,
                context: Some(ctx.into()),
            });
            s
        };
        let private = "u:object_r:container_file_t:s0:c1,c2";
        let shared = "u:object_r:container_file_t:s0";
        let held = holder_of(&labelled(Relabel::Private, private), &k);
        let e = labels_free(
            &labelled(Relabel::Shared, shared),
            &k,
            std::slice::from_ref(&held),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("held private (Z) by running container abcdef012345"),
            "{e}"
        );
        // Z with another label: refused; the same label: fine.
        assert!(labels_free(
            &labelled(Relabel::Private, "u:object_r:container_file_t:s0:c3,c4"),
            &k,
            std::slice::from_ref(&held)
        )
        .is_err());
        assert!(labels_free(&labelled(Relabel::Private, private), &k, &[held]).is_ok());
        // z beside z: fine.
        let held_shared = holder_of(&labelled(Relabel::Shared, shared), &k);
        assert!(labels_free(&labelled(Relabel::Shared, shared), &k, &[held_shared]).is_ok());
    }
}
