//! The hardlink rule for the walks that change entries.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// How many inodes [`Links`] tracks at most (about 50 bytes each).
const LINKS_TRACKED: usize = 1 << 18;

/// The hardlink rule: a non-directory with `st_nlink > 1` is changed only
/// when the walk has seen all of its links inside the volume. Each sighting
/// of such an inode is counted; the sighting that brings the count to
/// `st_nlink` may change it (its directory and name are at hand then, so no
/// fd is kept). What is left at the end had links elsewhere (or in a mount
/// skipped, or one created during the walk) and is reported.
pub struct Links {
    seen: Mutex<HashMap<(u64, u64), u64>>,
    /// Sightings beyond the tracking cap (left unchanged).
    untracked: AtomicU64,
}

impl Default for Links {
    fn default() -> Self {
        Links {
            seen: Mutex::new(HashMap::new()),
            untracked: AtomicU64::new(0),
        }
    }
}

impl Links {
    /// Count one sighting of (dev, ino) with `nlink` links now; `true`
    /// when every link has now been seen: change it.
    pub fn all_seen(&self, dev: u64, ino: u64, nlink: u64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let tracked = seen.len();
        match seen.get_mut(&(dev, ino)) {
            Some(n) => {
                *n += 1;
                if *n >= nlink {
                    seen.remove(&(dev, ino));
                    return true;
                }
                false
            }
            None if tracked >= LINKS_TRACKED => {
                self.untracked.fetch_add(1, Ordering::Relaxed);
                false
            }
            None if nlink <= 1 => true,
            None => {
                seen.insert((dev, ino), 1);
                false
            }
        }
    }

    /// Files left unchanged because not all their links were seen.
    pub fn left(&self) -> u64 {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.len() as u64 + self.untracked.load(Ordering::Relaxed)
    }
}
