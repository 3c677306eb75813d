//! Extract a tar stream into a volume, beneath its fd.
//!
//! Every entry's parent is reached from the volume root one component at a
//! time with openat2 RESOLVE_BENEATH | NO_SYMLINKS | NO_XDEV, and the entry
//! is made with an *at call on that parent: a symlink in the archive is
//! created, never followed; `..` and absolute names are refused before
//! anything is made; a hard link may only name an entry inside the volume.
//! Device nodes, setuid/setgid files and file capabilities are refused
//! unless [`ImportOptions::preserve_special`]. New files are created
//! `O_EXCL` with mode 0600 and get their owner, then their mode (chown
//! clears setuid bits), then their xattrs.

use std::ffi::{CStr, CString};
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{
    chmodat, chownat, fchmod, fchown, linkat, mkdirat, mknodat, openat, symlinkat, utimensat,
    AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid,
};
use rustix::io::Errno;
use tar::{Archive, EntryType};

use super::{at, ArchiveError, USAGE_XATTR};

#[derive(Debug, Default, Clone, Copy)]
pub struct ImportOptions {
    /// Accept device nodes, setuid/setgid files and `security.capability`.
    pub preserve_special: bool,
}

/// What [`import`] made.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportStats {
    pub entries: u64,
    pub bytes: u64,
}

/// Extract `input` into the directory open at `root` (the volume's root;
/// the caller checked it is empty). On an error, what was made so far is
/// left for the caller to remove.
pub fn import<R: Read>(
    root: &OwnedFd,
    input: R,
    opts: ImportOptions,
) -> Result<ImportStats, ArchiveError> {
    let mut archive = Archive::new(input);
    let mut stats = ImportStats::default();
    // Directory mtimes, set once their content is in.
    let mut dir_times: Vec<(Vec<CString>, u64)> = Vec::new();
    let entries = archive.entries().map_err(|e| ArchiveError::io(b"", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ArchiveError {
            entry: None,
            why: format!("not a valid tar stream: {e}"),
            refused: true,
        })?;
        let raw = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader) {
            continue;
        }
        let names = components(&raw)?;
        let meta = Meta::of(&mut entry, &raw, opts)?;
        if names.is_empty() {
            if kind != EntryType::Directory {
                return Err(ArchiveError::refused(
                    &raw,
                    "the volume root must be a directory",
                ));
            }
            let top = crate::fd::open_dir_beneath(root.as_fd(), c".")
                .map_err(|e| ArchiveError::io(&raw, e))?;
            meta.apply_fd(&top, &raw)?;
            dir_times.push((Vec::new(), meta.mtime));
            stats.entries += 1;
            continue;
        }
        let (leaf, dirs) = names.split_last().expect("not empty");
        let parent = open_parent(root.as_fd(), dirs, &raw)?;
        let p = parent.as_fd();
        let io = |e: Errno| ArchiveError::io(&raw, e);
        match kind {
            EntryType::Directory => {
                match mkdirat(p, leaf.as_c_str(), Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(io(e)),
                }
                let fd = open_sub(p, leaf, &raw)?;
                meta.apply_fd(&fd, &raw)?;
                dir_times.push((names.clone(), meta.mtime));
            }
            EntryType::Regular | EntryType::Continuous => {
                let fd = openat(
                    p,
                    leaf.as_c_str(),
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| match e {
                    Errno::EXIST => ArchiveError::refused(&raw, "is in the archive twice"),
                    e => io(e),
                })?;
                let mut file = std::fs::File::from(fd);
                let n = io::copy(&mut entry, &mut file).map_err(|e| ArchiveError::io(&raw, e))?;
                stats.bytes += n;
                meta.apply_fd(&OwnedFd::from(file), &raw)?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| ArchiveError::refused(&raw, "a symlink without a target"))?;
                let target = CString::new(target.into_owned())
                    .map_err(|_| ArchiveError::refused(&raw, "NUL in the symlink target"))?;
                // Made as data, never followed: where it points is not checked.
                symlinkat(target.as_c_str(), p, leaf.as_c_str()).map_err(|e| match e {
                    Errno::EXIST => ArchiveError::refused(&raw, "is in the archive twice"),
                    e => io(e),
                })?;
                meta.apply_at(p, leaf, true, &raw)?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| ArchiveError::refused(&raw, "a hard link without a target"))?
                    .into_owned();
                let tnames = components(&target).map_err(|mut e| {
                    e.entry = Some(String::from_utf8_lossy(&raw).into_owned());
                    e.why = format!("hard link target: {}", e.why);
                    e
                })?;
                let Some((tleaf, tdirs)) = tnames.split_last() else {
                    return Err(ArchiveError::refused(
                        &raw,
                        "a hard link to the volume root",
                    ));
                };
                let tparent = open_parent(root.as_fd(), tdirs, &raw)?;
                // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink.
                linkat(
                    tparent.as_fd(),
                    tleaf.as_c_str(),
                    p,
                    leaf.as_c_str(),
                    AtFlags::empty(),
                )
                .map_err(|e| match e {
                    Errno::EXIST => ArchiveError::refused(&raw, "is in the archive twice"),
                    Errno::NOENT => ArchiveError::refused(
                        &raw,
                        "a hard link to an entry not (yet) in the archive",
                    ),
                    e => io(e),
                })?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (ft, dev) = match kind {
                    EntryType::Fifo => (FileType::Fifo, 0),
                    _ => {
                        if !opts.preserve_special {
                            return Err(ArchiveError::refused(
                                &raw,
                                "is a device node; refused without --preserve-special",
                            ));
                        }
                        let h = entry.header();
                        let major = h.device_major().ok().flatten().unwrap_or(0);
                        let minor = h.device_minor().ok().flatten().unwrap_or(0);
                        let ft = if kind == EntryType::Char {
                            FileType::CharacterDevice
                        } else {
                            FileType::BlockDevice
                        };
                        (ft, rustix::fs::makedev(major, minor))
                    }
                };
                mknodat(p, leaf.as_c_str(), ft, Mode::from_raw_mode(0o600), dev).map_err(|e| {
                    match e {
                        Errno::EXIST => ArchiveError::refused(&raw, "is in the archive twice"),
                        e => io(e),
                    }
                })?;
                meta.apply_at(p, leaf, false, &raw)?;
            }
            other => {
                return Err(ArchiveError::refused(
                    &raw,
                    format!("entry type {other:?} is not supported"),
                ))
            }
        }
        stats.entries += 1;
    }
    // Deepest first, so setting one does not change its parent's again.
    dir_times.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    for (names, mtime) in dir_times {
        let (parent, leaf): (OwnedFd, &CStr) = match names.split_last() {
            None => (
                crate::fd::open_dir_beneath(root.as_fd(), c".")
                    .map_err(|e| ArchiveError::io(b".", e))?,
                c".",
            ),
            Some((leaf, dirs)) => (open_parent(root.as_fd(), dirs, b"")?, leaf.as_c_str()),
        };
        let t = Timespec {
            tv_sec: mtime as i64,
            tv_nsec: 0,
        };
        let _ = utimensat(
            &parent,
            leaf,
            &Timestamps {
                last_access: t,
                last_modification: t,
            },
            AtFlags::SYMLINK_NOFOLLOW,
        );
    }
    Ok(stats)
}

/// An entry name as components beneath the volume root: `./` and `.`
/// dropped; absolute names and `..` refused.
fn components(raw: &[u8]) -> Result<Vec<CString>, ArchiveError> {
    if raw.first() == Some(&b'/') {
        return Err(ArchiveError::refused(
            raw,
            "an absolute path would escape the volume",
        ));
    }
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                return Err(ArchiveError::refused(
                    raw,
                    "a `..` component would escape the volume",
                ))
            }
            c => out
                .push(CString::new(c).map_err(|_| ArchiveError::refused(raw, "NUL in the name"))?),
        }
    }
    Ok(out)
}

fn open_sub(dir: BorrowedFd<'_>, name: &CStr, raw: &[u8]) -> Result<OwnedFd, ArchiveError> {
    let symlink = || {
        rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
    };
    crate::fd::open_dir_beneath(dir, name).map_err(|e| match e {
        Errno::LOOP | Errno::NOTDIR if symlink() => ArchiveError::refused(
            raw,
            "leads through a symlink in the archive; refused (symlinks are never followed)",
        ),
        Errno::LOOP | Errno::NOTDIR => ArchiveError::refused(raw, "a parent is not a directory"),
        Errno::XDEV => ArchiveError::refused(raw, "leads into another mount"),
        e => ArchiveError::io(raw, e),
    })
}

/// The directory `dirs` beneath `root`, made 0755 where missing (an
/// archive may omit a parent's own entry).
fn open_parent(
    root: BorrowedFd<'_>,
    dirs: &[CString],
    raw: &[u8],
) -> Result<OwnedFd, ArchiveError> {
    let mut cur = open_sub(root, c".", raw)?;
    for d in dirs {
        match mkdirat(&cur, d.as_c_str(), Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(ArchiveError::io(raw, e)),
        }
        cur = open_sub(cur.as_fd(), d, raw)?;
    }
    Ok(cur)
}

/// What an entry says about its inode.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: u64,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Meta {
    fn of<R: Read>(
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
        opts: ImportOptions,
    ) -> Result<Meta, ArchiveError> {
        let bad =
            |what: &str| ArchiveError::refused(raw, format!("unreadable {what} in the header"));
        let h = entry.header();
        let kind = h.entry_type();
        let uid = u32::try_from(h.uid().map_err(|_| bad("uid"))?).map_err(|_| bad("uid"))?;
        let gid = u32::try_from(h.gid().map_err(|_| bad("gid"))?).map_err(|_| bad("gid"))?;
        let mode = h.mode().map_err(|_| bad("mode"))? & 0o7777;
        let mtime = h.mtime().unwrap_or(0).min(i64::MAX as u64);
        if kind != EntryType::Directory && mode & 0o6000 != 0 && !opts.preserve_special {
            return Err(ArchiveError::refused(
                raw,
                format!("mode {mode:04o} is setuid/setgid; refused without --preserve-special"),
            ));
        }
        let mut xattrs = Vec::new();
        if let Some(exts) = entry
            .pax_extensions()
            .map_err(|e| ArchiveError::io(raw, e))?
        {
            for ext in exts {
                let ext = ext.map_err(|e| ArchiveError::io(raw, e))?;
                let Ok(key) = ext.key() else { continue };
                let Some(name) = key.strip_prefix("SCHILY.xattr.") else {
                    continue;
                };
                if name == USAGE_XATTR || name.is_empty() || name.contains('\0') {
                    continue;
                }
                if name == "security.capability" && !opts.preserve_special {
                    return Err(ArchiveError::refused(
                        raw,
                        "carries file capabilities (security.capability); refused without --preserve-special",
                    ));
                }
                xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
            }
        }
        Ok(Meta {
            uid,
            gid,
            mode,
            mtime,
            xattrs,
        })
    }

    /// Owner, mode, xattrs and mtime of an opened directory or file.
    fn apply_fd(&self, fd: &OwnedFd, raw: &[u8]) -> Result<(), ArchiveError> {
        let io = |e: Errno| ArchiveError::io(raw, e);
        fchown(
            fd,
            Some(Uid::from_raw(self.uid)),
            Some(Gid::from_raw(self.gid)),
        )
        .map_err(io)?;
        fchmod(fd, Mode::from_raw_mode(self.mode)).map_err(io)?;
        for (k, v) in &self.xattrs {
            rustix::fs::fsetxattr(fd, k.as_str(), v, rustix::fs::XattrFlags::empty()).map_err(
                |e| ArchiveError::io(raw, io::Error::other(format!("setxattr {k}: {e}"))),
            )?;
        }
        let t = Timespec {
            tv_sec: self.mtime as i64,
            tv_nsec: 0,
        };
        rustix::fs::futimens(
            fd,
            &Timestamps {
                last_access: t,
                last_modification: t,
            },
        )
        .map_err(io)
    }

    /// The same for `name` in `dir`, not followed (a symlink, a node).
    fn apply_at(
        &self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        symlink: bool,
        raw: &[u8],
    ) -> Result<(), ArchiveError> {
        let io = |e: Errno| ArchiveError::io(raw, e);
        chownat(
            dir,
            name,
            Some(Uid::from_raw(self.uid)),
            Some(Gid::from_raw(self.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(io)?;
        if !symlink {
            // Just made by mknodat here: not a symlink.
            chmodat(dir, name, Mode::from_raw_mode(self.mode), AtFlags::empty()).map_err(io)?;
        }
        let path = at(dir, name);
        for (k, v) in &self.xattrs {
            match rustix::fs::lsetxattr(&path, k.as_str(), v, rustix::fs::XattrFlags::empty()) {
                Ok(()) => {}
                // user.* is not allowed on symlinks by the kernel.
                Err(Errno::PERM) if symlink && k.starts_with("user.") => {}
                Err(e) => {
                    return Err(ArchiveError::io(
                        raw,
                        io::Error::other(format!("setxattr {k}: {e}")),
                    ))
                }
            }
        }
        let t = Timespec {
            tv_sec: self.mtime as i64,
            tv_nsec: 0,
        };
        utimensat(
            dir,
            name,
            &Timestamps {
                last_access: t,
                last_modification: t,
            },
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_escape() {
        let ok = |s: &str| components(s.as_bytes()).unwrap();
        assert_eq!(
            ok("./a/b/"),
            vec![CString::new("a").unwrap(), CString::new("b").unwrap()]
        );
        assert!(ok(".").is_empty() && ok("./").is_empty());
        for bad in ["/etc/x", "../x", "a/../../x", "a/..", "//x"] {
            let e = components(bad.as_bytes()).unwrap_err();
            assert!(e.refused, "{bad}");
            assert!(e.why.contains("escape"), "{bad}: {}", e.why);
        }
    }
}
