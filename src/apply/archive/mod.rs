//! A volume's content as a tar stream (the `tar` crate writes and parses
//! the format; PAX `SCHILY.xattr.*` records carry the xattrs, as GNU tar
//! and podman do):
//!
//! - [`export`]: a sequential walk beneath the volume's fd (openat2
//!   BENEATH | NO_SYMLINKS | NO_XDEV: no symlink followed, no mount
//!   entered), keeping owners, modes, mtimes, xattrs (SELinux labels,
//!   `user.*`, the hook's `trusted.*` markers) and hard links;
//! - [`import`] ([`import::import`]): extraction beneath an fd, never by
//!   path joins; entries that would escape, device nodes and setuid/setgid
//!   files are refused (the latter two unless `preserve_special`).
//!
//! The usage record ([`crate::record::usage`]) is not carried: a volume's
//! history is its own.

pub mod import;

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{statat, AtFlags, Dir, FileType, OFlags};
use tar::{Builder, EntryType, Header};

pub use import::{import, ImportOptions};

/// The usage xattr, never exported nor imported.
const USAGE_XATTR: &str = "trusted.oci-volume-hook.usage";
/// Deeper trees are refused: one directory fd is open per level.
const MAX_DEPTH: usize = 256;

/// Why an archive could not be written or read: the entry (relative to the
/// volume, raw) and why. `refused`: the archive asked for something this
/// hook does not do (an escape, a device node...), not an I/O failure.
#[derive(Debug)]
pub struct ArchiveError {
    pub entry: Option<String>,
    pub why: String,
    pub refused: bool,
}

impl std::fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.entry {
            Some(e) => write!(f, "entry \"{}\": {}", crate::error::printable(e), self.why),
            None => write!(f, "{}", self.why),
        }
    }
}

impl ArchiveError {
    pub(crate) fn io(entry: &[u8], e: impl Into<io::Error>) -> Self {
        ArchiveError {
            entry: Some(String::from_utf8_lossy(entry).into_owned()),
            why: e.into().to_string(),
            refused: false,
        }
    }

    pub(crate) fn refused(entry: &[u8], why: impl Into<String>) -> Self {
        ArchiveError {
            entry: Some(String::from_utf8_lossy(entry).into_owned()),
            why: why.into(),
            refused: true,
        }
    }
}

/// What [`export`] wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExportStats {
    pub entries: u64,
    /// File content bytes.
    pub bytes: u64,
    /// Mount points below the volume, and sockets: not in the archive.
    pub skipped: u64,
}

/// Write the volume whose root directory is open at `root` as a tar stream.
pub fn export<W: Write>(root: &OwnedFd, out: W) -> Result<(W, ExportStats), ArchiveError> {
    let mut b = Builder::new(out);
    let mut st = ExportStats::default();
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let top =
        crate::fd::open_dir_beneath(root.as_fd(), c".").map_err(|e| ArchiveError::io(b".", e))?;
    let rst = rustix::fs::fstat(&top).map_err(|e| ArchiveError::io(b".", e))?;
    let xattrs = read_xattrs(&crate::fd::proc_fd(top.as_fd()), true)
        .map_err(|e| ArchiveError::io(b".", e))?;
    let mut h = header(&rst, EntryType::Directory);
    append(&mut b, &mut h, Path::new("."), &xattrs, io::empty())?;
    st.entries += 1;
    export_dir(&mut b, &top, Path::new(""), 1, &mut links, &mut st)?;
    b.finish().map_err(|e| ArchiveError::io(b".", e))?;
    let out = b.into_inner().map_err(|e| ArchiveError::io(b".", e))?;
    Ok((out, st))
}

fn header(st: &rustix::fs::Stat, kind: EntryType) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

fn append<W: Write>(
    b: &mut Builder<W>,
    h: &mut Header,
    path: &Path,
    xattrs: &[(String, Vec<u8>)],
    data: impl io::Read,
) -> Result<(), ArchiveError> {
    append_xattrs(b, path, xattrs)?;
    b.append_data(h, path, data)
        .map_err(|e| ArchiveError::io(path.as_os_str().as_bytes(), e))
}

/// An entry's xattrs as PAX records (`SCHILY.xattr.NAME`), before it.
fn append_xattrs<W: Write>(
    b: &mut Builder<W>,
    path: &Path,
    xattrs: &[(String, Vec<u8>)],
) -> Result<(), ArchiveError> {
    if xattrs.is_empty() {
        return Ok(());
    }
    let keys: Vec<(String, &[u8])> = xattrs
        .iter()
        .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
        .collect();
    b.append_pax_extensions(keys.iter().map(|(k, v)| (k.as_str(), *v)))
        .map_err(|e| ArchiveError::io(path.as_os_str().as_bytes(), e))
}

fn export_dir<W: Write>(
    b: &mut Builder<W>,
    dir: &OwnedFd,
    rel: &Path,
    depth: usize,
    links: &mut HashMap<(u64, u64), PathBuf>,
    st: &mut ExportStats,
) -> Result<(), ArchiveError> {
    let here = rel.as_os_str().as_bytes();
    if depth > MAX_DEPTH {
        return Err(ArchiveError::refused(
            here,
            format!("deeper than {MAX_DEPTH} directories"),
        ));
    }
    let mut names = list(dir).map_err(|e| ArchiveError::io(here, e))?;
    names.sort();
    let parent_proc = crate::fd::proc_fd(dir.as_fd());
    for name in names {
        let path = rel.join(OsStr::from_bytes(name.as_bytes()));
        let pb = path.as_os_str().as_bytes().to_vec();
        let ioe = |e: io::Error| ArchiveError::io(&pb, e);
        let s = match statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(s) => s,
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(ioe(e.into())),
        };
        let at = parent_proc.join(OsStr::from_bytes(name.as_bytes()));
        let kind = FileType::from_raw_mode(s.st_mode);
        match kind {
            FileType::Directory => {
                let sub = match crate::fd::open_dir_beneath(dir.as_fd(), &name) {
                    Ok(fd) => fd,
                    Err(rustix::io::Errno::XDEV) => {
                        st.skipped += 1;
                        log::warn!("export: {}: a mount point, not exported", path.display());
                        continue;
                    }
                    Err(e) => return Err(ioe(e.into())),
                };
                let xattrs = read_xattrs(&at, false).map_err(ioe)?;
                append(
                    b,
                    &mut header(&s, EntryType::Directory),
                    &path,
                    &xattrs,
                    io::empty(),
                )?;
                st.entries += 1;
                export_dir(b, &sub, &path, depth + 1, links, st)?;
            }
            FileType::RegularFile => {
                let xattrs = read_xattrs(&at, false).map_err(ioe)?;
                if s.st_nlink > 1 {
                    if let Some(first) = links.get(&(s.st_dev, s.st_ino)) {
                        let mut h = header(&s, EntryType::Link);
                        let first = first.clone();
                        b.append_link(&mut h, &path, &first).map_err(ioe)?;
                        st.entries += 1;
                        continue;
                    }
                    links.insert((s.st_dev, s.st_ino), path.clone());
                }
                let fd = crate::fd::open_beneath(dir.as_fd(), name.as_c_str(), OFlags::RDONLY)
                    .map_err(|e| ioe(e.into()))?;
                let now = rustix::fs::fstat(&fd).map_err(|e| ioe(e.into()))?;
                if (now.st_dev, now.st_ino) != (s.st_dev, s.st_ino) {
                    return Err(ioe(io::Error::other("replaced while exported")));
                }
                let mut h = header(&now, EntryType::Regular);
                h.set_size(now.st_size as u64);
                // Exactly the size in the header, even if it grows meanwhile.
                let data = io::Read::take(std::fs::File::from(fd), now.st_size as u64);
                append(b, &mut h, &path, &xattrs, data)?;
                st.bytes += now.st_size as u64;
                st.entries += 1;
            }
            FileType::Symlink => {
                let target =
                    rustix::fs::readlinkat(dir, &name, Vec::new()).map_err(|e| ioe(e.into()))?;
                let xattrs = read_xattrs(&at, false).map_err(ioe)?;
                let mut h = header(&s, EntryType::Symlink);
                append_xattrs(b, &path, &xattrs)?;
                b.append_link(&mut h, &path, OsStr::from_bytes(target.as_bytes()))
                    .map_err(ioe)?;
                st.entries += 1;
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                let xattrs = read_xattrs(&at, false).map_err(ioe)?;
                let ty = match kind {
                    FileType::CharacterDevice => EntryType::Char,
                    FileType::BlockDevice => EntryType::Block,
                    _ => EntryType::Fifo,
                };
                let mut h = header(&s, ty);
                if ty != EntryType::Fifo {
                    h.set_device_major(rustix::fs::major(s.st_rdev))
                        .map_err(ioe)?;
                    h.set_device_minor(rustix::fs::minor(s.st_rdev))
                        .map_err(ioe)?;
                }
                append(b, &mut h, &path, &xattrs, io::empty())?;
                st.entries += 1;
            }
            _ => {
                st.skipped += 1;
                log::warn!("export: {}: a socket, not exported", path.display());
            }
        }
    }
    Ok(())
}

/// The names in a directory, `.` and `..` left out.
fn list(dir: &OwnedFd) -> io::Result<Vec<CString>> {
    let dup = rustix::io::fcntl_dupfd_cloexec(dir, 0)?;
    let mut d = Dir::new(dup)?;
    let mut names = Vec::new();
    while let Some(e) = d.read() {
        let e = e?;
        let n = e.file_name();
        if n != c"." && n != c".." {
            names.push(n.to_owned());
        }
    }
    Ok(names)
}

/// Every xattr of the entry at `path` (its last component followed only
/// with `follow`: the root, through its fd's magic link),
/// the usage record left out.
fn read_xattrs(path: &Path, follow: bool) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut list = vec![0u8; 65536];
    let listed = if follow {
        rustix::fs::listxattr(path, &mut list[..])
    } else {
        rustix::fs::llistxattr(path, &mut list[..])
    };
    let n = match listed {
        Ok(n) => n,
        Err(rustix::io::Errno::OPNOTSUPP) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for raw in list[..n].split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let Ok(name) = std::str::from_utf8(raw) else {
            continue;
        };
        if name == USAGE_XATTR {
            continue;
        }
        let mut value = vec![0u8; 65536];
        let got = if follow {
            rustix::fs::getxattr(path, name, &mut value[..])
        } else {
            rustix::fs::lgetxattr(path, name, &mut value[..])
        };
        match got {
            Ok(len) => {
                value.truncate(len);
                out.push((name.to_string(), value));
            }
            Err(rustix::io::Errno::NODATA) => {}
            Err(e) => return Err(e.into()),
        }
    }
    out.sort();
    Ok(out)
}

/// `/proc/self/fd/N/name`: the entry `name` in the directory open at `dir`,
/// for l* calls (the directory is reached through its fd, `name` is not
/// followed).
pub(crate) fn at(dir: BorrowedFd<'_>, name: &CStr) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()))
        .join(OsStr::from_bytes(name.to_bytes()))
}
