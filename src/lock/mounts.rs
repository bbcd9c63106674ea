//! Which mount a folder is on, from the kernel's `/proc/self/mountinfo`, so that a file system
//! whose locks do not work can be named in the error that says so.
use std::fmt;
use std::path::{Path, PathBuf};

/// One mounted file system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted.
    pub point: PathBuf,
    /// `nfs`, `nfs4`, `lustre`, `ext4`…
    pub fs_type: String,
    /// The mount's options and the file system's own (`nolock`, `local_lock=all`, `flock`…).
    pub options: Vec<String>,
}

impl Mount {
    /// The option under which a network file system's client keeps POSIX locks to itself: locks
    /// taken on two hosts then do not see each other (NFS's `nolock` implies `local_lock=all`).
    pub fn host_local_locks(&self) -> Option<&str> {
        let local: &[&str] = match self.fs_type.as_str() {
            "nfs" | "nfs4" => &["nolock", "local_lock=all", "local_lock=posix"],
            "lustre" => &["localflock"],
            _ => &[],
        };
        (self.options.iter())
            .map(String::as_str)
            .find(|o| local.contains(o))
    }
}

impl fmt::Display for Mount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.point.display(), self.fs_type)
    }
}

/// The mount that holds `path` (or, when it does not exist yet, its nearest existing ancestor);
/// None where there is no `/proc/self/mountinfo` to read (or the one fault injection names).
pub(super) fn mount_of(path: &Path) -> Option<Mount> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let resolved = existing.canonicalize().ok()?;
    let text = std::fs::read_to_string(crate::faults::mountinfo()).ok()?;
    containing(parse(&text), &resolved)
}

/// The mount whose point is the longest prefix of `path`; of several on one point, the last
/// mounted, which hides the others.
fn containing(mounts: Vec<Mount>, path: &Path) -> Option<Mount> {
    (mounts.into_iter().enumerate())
        .filter(|(_, m)| path.starts_with(&m.point))
        .max_by_key(|(index, m)| (m.point.components().count(), *index))
        .map(|(_, m)| m)
}

/// The mounts of a mountinfo text (proc(5)): `id parent major:minor root point options
/// [optional fields…] - type source super-options`. Malformed lines are skipped.
fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mount> {
    let (before, after) = line.split_once(" - ")?;
    let fields: Vec<&str> = before.split(' ').collect();
    let (point, options) = (fields.get(4)?, fields.get(5)?);
    let mut after = after.split(' ');
    let fs_type = after.next()?;
    let super_options = after.nth(1).unwrap_or("");
    Some(Mount {
        point: PathBuf::from(unescape(point)),
        fs_type: fs_type.to_string(),
        options: (options.split(',').chain(super_options.split(',')))
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

/// The kernel writes a space, tab, newline or backslash in a path as a backslash and three octal
/// digits.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = (bytes.get(i + 1..i + 4))
            .filter(|digits| digits.iter().all(|d| (b'0'..=b'7').contains(d)))
            .and_then(|digits| u8::from_str_radix(std::str::from_utf8(digits).ok()?, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
40 27 0:45 / /shared rw,relatime shared:20 - nfs4 server:/export rw,vers=4.2,rsize=1048576,hard,proto=tcp,local_lock=none,addr=10.0.0.1
41 27 0:46 / /scratch/old\\040runs rw,relatime - nfs server:/old rw,vers=3,hard,nolock,proto=tcp,local_lock=all,addr=10.0.0.2
42 41 0:47 / /scratch/old\\040runs/fast rw - lustre 10.0.0.3@tcp:/fs rw,flock
broken line
";

    #[test]
    fn mountinfo_lines_give_point_type_and_both_option_sets() {
        let mounts = parse(SAMPLE);
        assert_eq!(mounts.len(), 5, "the broken line is skipped");
        let old = &mounts[3];
        assert_eq!(old.point, Path::new("/scratch/old runs"));
        assert_eq!(old.fs_type, "nfs");
        assert!(old.options.iter().any(|o| o == "relatime"));
        assert!(old.options.iter().any(|o| o == "nolock"));
        assert_eq!(old.to_string(), "/scratch/old runs (nfs)");
    }

    #[test]
    fn only_nfs_mounted_with_client_side_locks_keeps_them_to_one_host() {
        let mounts = parse(SAMPLE);
        let local: Vec<Option<&str>> = mounts.iter().map(Mount::host_local_locks).collect();
        assert_eq!(local, [None, None, None, Some("nolock"), None]);
        let posix_only = parse_line("50 27 0:50 / /n rw - nfs4 s:/n rw,vers=4.1,local_lock=posix");
        assert_eq!(
            posix_only.unwrap().host_local_locks(),
            Some("local_lock=posix")
        );
        // Local flock emulation leaves the fcntl locks adarat takes shared.
        let flock_only = parse_line("51 27 0:51 / /f rw - nfs s:/f rw,vers=3,local_lock=flock");
        assert_eq!(flock_only.unwrap().host_local_locks(), None);
        let lustre = parse_line("52 27 0:52 / /l rw,localflock - lustre m@tcp:/l rw,localflock");
        assert_eq!(lustre.unwrap().host_local_locks(), Some("localflock"));
        // `nolock` means nothing to a local file system.
        let ext4 = parse_line("53 27 8:1 / /e rw,nolock - ext4 /dev/sda1 rw");
        assert_eq!(ext4.unwrap().host_local_locks(), None);
    }

    #[test]
    fn a_path_is_on_the_deepest_mount_that_holds_it() {
        let on = |path: &str| containing(parse(SAMPLE), Path::new(path)).map(|m| m.fs_type);
        assert_eq!(on("/home/me/output").as_deref(), Some("ext4"));
        assert_eq!(on("/shared/output/.locks").as_deref(), Some("nfs4"));
        assert_eq!(on("/scratch/old runs/output").as_deref(), Some("nfs"));
        assert_eq!(on("/scratch/old runs/fast/x").as_deref(), Some("lustre"));
        // A prefix of a name is not a parent folder.
        assert_eq!(on("/sharedfolder").as_deref(), Some("ext4"));
    }

    #[test]
    fn a_later_mount_on_the_same_point_hides_the_earlier() {
        let text = "1 0 0:1 / / rw - ext4 a rw\n2 1 0:2 / /d rw - nfs b rw,nolock\n3 1 0:3 / /d rw - nfs4 c rw\n";
        let found = containing(parse(text), Path::new("/d/x")).unwrap();
        assert_eq!(found.fs_type, "nfs4");
    }

    #[test]
    fn this_machines_folders_are_found_on_a_mount() {
        let dir = tempfile::tempdir().unwrap();
        let mount = mount_of(&dir.path().join("not/yet/made")).expect("a mount");
        assert!(dir.path().canonicalize().unwrap().starts_with(&mount.point));
        assert!(!mount.fs_type.is_empty());
    }
}
