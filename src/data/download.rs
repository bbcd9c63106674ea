//! Fetching a missing official dataset: download with a progress bar, MD5 check against the published sum,
//! and an unpacking that cannot write outside the data folder. Without network (or with downloads off) the
//! error says which files to put where.
use super::cifar::CifarLayout;
use super::error::DataError;
use super::idx::IdxSet;
use super::DataRequest;
use flate2::read::{GzDecoder, MultiGzDecoder};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use md5::{Digest, Md5};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tar::EntryType;

/// Fetches and installs a CIFAR archive into `req.data_dir`, or says what to put where.
pub(crate) fn fetch_cifar(layout: &CifarLayout, req: &DataRequest) -> Result<(), DataError> {
    let folder = req.data_dir.join(layout.folder);
    let missing = |reason: String| {
        let files = layout.missing_files(&folder).join(", ");
        DataError::Missing {
            dataset: req.kind,
            instructions: format!(
                "{reason}put {files} in {}/ (unpack {} into {}/)",
                folder.display(),
                layout.url,
                req.data_dir.display()
            ),
        }
    };
    if !req.download {
        return Err(missing(String::new()));
    }
    let file_name = layout.url.rsplit('/').next().unwrap_or(layout.url);
    let source = Source::of(req.mirror, file_name, layout.md5);
    let url = source.urls(&[layout.url.rsplit_once('/').map_or("", |(base, _)| base)])[0].clone();
    let archive = partial_download_path(req.data_dir, file_name);
    let fetched = download(&url, &archive, req.progress).and_then(|()| {
        install_archive(&archive, &source.md5, req.data_dir).map_err(|err| err.to_string())
    });
    // The archive is only a vehicle: once unpacked (or refused) it is not kept.
    let _ = fs::remove_file(&archive);
    if let Err(err) = fetched {
        return Err(missing(format!("fetching {url} failed ({err}); ")));
    }
    if !layout.missing_files(&folder).is_empty() {
        return Err(missing(format!(
            "the archive from {url} did not hold every file; "
        )));
    }
    Ok(())
}

/// Fetches the missing `.gz` files of an IDX dataset into `data_dir/<folder>/` (unpacked), or says what to
/// put where. Returns the folder.
pub(crate) fn fetch_idx(set: &IdxSet, req: &DataRequest) -> Result<PathBuf, DataError> {
    let folder = req.data_dir.join(set.folder);
    let missing = |reason: String| {
        let files: Vec<String> = set
            .missing_files(&folder)
            .iter()
            .map(|name| format!("{name}.gz"))
            .collect();
        let package = set.debian_package.map_or(String::new(), |package| {
            format!(
                ", or install the Debian package {package} (it puts them in {})",
                set.system_folders.join(" or ")
            )
        });
        DataError::Missing {
            dataset: req.kind,
            instructions: format!(
                "{reason}put {} (gzipped or not) in {}/ from {}{package}",
                files.join(", "),
                folder.display(),
                set.mirrors.first().copied().unwrap_or_default(),
            ),
        }
    };
    if !req.download {
        return Err(missing(String::new()));
    }
    for (name, md5) in set.file_names().into_iter().zip(set.md5s) {
        if set.missing_files(&folder).contains(&name) {
            let gz_name = format!("{name}.gz");
            let source = Source::of(req.mirror, &gz_name, md5);
            let urls = source.urls(set.mirrors);
            fetch_gzip_file(&urls, name, &source.md5, &folder, req)
                .map_err(|reason| missing(format!("{reason}; ")))?;
        }
    }
    Ok(folder)
}

/// Where one file comes from and the MD5 it must have: the official addresses and the published
/// sum, or the configured mirror's copy with the sum its `MD5SUMS` gives (a mirror may repack:
/// Debian's gzip files differ from the originals), else the published one.
struct Source<'a> {
    mirror: Option<&'a str>,
    file: &'a str,
    md5: String,
}

impl<'a> Source<'a> {
    fn of(mirror: Option<&'a str>, file: &'a str, published_md5: &str) -> Source<'a> {
        let md5 = mirror
            .and_then(|base| mirror_sums(base).remove(file))
            .unwrap_or_else(|| published_md5.to_string());
        Source { mirror, file, md5 }
    }

    /// The file's addresses, tried in order: the mirror's alone, or each official base's.
    fn urls(&self, official_bases: &[&str]) -> Vec<String> {
        let join = |base: &str| format!("{}/{}", base.trim_end_matches('/'), self.file);
        match self.mirror {
            Some(base) => vec![join(base)],
            None => official_bases.iter().map(|base| join(base)).collect(),
        }
    }
}

/// The mirror's `MD5SUMS` (`md5sum`'s output: `<32 hex digits>  <file name>` a line), by file
/// name; empty when it has none.
fn mirror_sums(base: &str) -> std::collections::HashMap<String, String> {
    let url = format!("{}/MD5SUMS", base.trim_end_matches('/'));
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(20))
        .timeout_read(Duration::from_secs(60))
        .build();
    let text = agent
        .get(&url)
        .call()
        .ok()
        .and_then(|response| response.into_string().ok())
        .unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (sum, name) = line.split_once(char::is_whitespace)?;
            let name = name.trim().trim_start_matches('*');
            (sum.len() == 32).then(|| (name.to_string(), sum.to_lowercase()))
        })
        .collect()
}

/// Downloads `name.gz` from the first address that answers and unpacks it to `folder/name`.
fn fetch_gzip_file(
    urls: &[String],
    name: &str,
    md5: &str,
    folder: &Path,
    req: &DataRequest,
) -> Result<(), String> {
    let gz_name = format!("{name}.gz");
    let part = partial_download_path(req.data_dir, &gz_name);
    let mut failures = Vec::new();
    for url in urls {
        let fetched = download(url, &part, req.progress).and_then(|()| {
            install_gzip(&part, md5, &folder.join(name)).map_err(|err| err.to_string())
        });
        let _ = fs::remove_file(&part);
        match fetched {
            Ok(()) => return Ok(()),
            Err(err) => failures.push(format!("fetching {url} failed ({err})")),
        }
    }
    Err(failures.join("; "))
}

/// Where a download is written while in flight: inside the data folder, next to where it will land.
fn partial_download_path(data_dir: &Path, file_name: &str) -> PathBuf {
    data_dir.join(format!(".{file_name}.part"))
}

/// Streams `url` into `destination` with a byte progress bar on stderr (when `progress`). The error is a
/// reason for the caller to put next to the address.
fn download(url: &str, destination: &Path, progress: bool) -> Result<(), String> {
    if let Some(parent) = destination.parent() {
        fs::create_dir_all(parent).map_err(|err| DataError::write(parent, err).to_string())?;
    }
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(20))
        .timeout_read(Duration::from_secs(60))
        .build();
    let response = agent.get(url).call().map_err(|err| err.to_string())?;
    let length = response
        .header("Content-Length")
        .and_then(|value| value.parse::<u64>().ok());
    let bar = if progress {
        ProgressBar::with_draw_target(length, ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    let style = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = bar
        .with_style(style.progress_chars("=> "))
        .with_message(url.rsplit('/').next().unwrap_or(url).to_string());
    let file =
        File::create(destination).map_err(|err| DataError::write(destination, err).to_string())?;
    let mut writer = bar.wrap_write(io::BufWriter::new(file));
    let copied = io::copy(&mut response.into_reader(), &mut writer)
        .and_then(|_| writer.flush())
        .map_err(|err| format!("the transfer broke off: {err}"));
    bar.finish_and_clear();
    copied
}

/// The MD5 of a file as 32 lowercase hex digits.
pub fn md5_hex(path: &Path) -> Result<String, DataError> {
    let mut file = File::open(path).map_err(|err| DataError::read(path, err))?;
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(|err| DataError::read(path, err))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

fn verify_md5(path: &Path, expected: &str) -> Result<(), DataError> {
    let actual = md5_hex(path)?;
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(DataError::Checksum {
            path: path.to_path_buf(),
            expected: expected.to_ascii_lowercase(),
            actual,
        })
    }
}

/// Verifies a `.tar.gz` against `expected_md5` and unpacks it into `data_dir`.
///
/// Only regular files and folders with relative paths free of `..` are accepted; anything else (absolute
/// paths, symbolic or hard links, devices) refuses the whole archive. The entries are first written to a
/// fresh folder inside `data_dir`, then moved into place, so a refused archive leaves `data_dir` as it was.
pub fn install_archive(
    archive: &Path,
    expected_md5: &str,
    data_dir: &Path,
) -> Result<(), DataError> {
    verify_md5(archive, expected_md5)?;
    let staging = StagingDir::create(data_dir)?;
    unpack_tar_gz(archive, staging.path())?;
    move_into_place(staging.path(), data_dir)
}

/// Verifies a `.gz` file against `expected_md5` and decompresses it to `destination`, through a temporary
/// file in the same folder so that a broken stream never leaves a half-written file behind.
pub fn install_gzip(file: &Path, expected_md5: &str, destination: &Path) -> Result<(), DataError> {
    verify_md5(file, expected_md5)?;
    let folder = destination.parent().unwrap_or(Path::new("."));
    let staging = StagingDir::create(folder)?;
    let unpacked = staging.path().join("unpacked");
    let source = File::open(file).map_err(|err| DataError::read(file, err))?;
    let mut target = File::create(&unpacked).map_err(|err| DataError::write(&unpacked, err))?;
    io::copy(&mut MultiGzDecoder::new(source), &mut target)
        .map_err(|err| DataError::malformed(file, format!("broken gzip stream: {err}")))?;
    fs::rename(&unpacked, destination).map_err(|err| DataError::write(destination, err))
}

fn unpack_tar_gz(archive_path: &Path, into: &Path) -> Result<(), DataError> {
    let broken =
        |err: io::Error| DataError::malformed(archive_path, format!("broken archive: {err}"));
    let file = File::open(archive_path).map_err(|err| DataError::read(archive_path, err))?;
    let mut archive = tar::Archive::new(GzDecoder::new(file));
    for entry in archive.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        let entry_type = entry.header().entry_type();
        let raw_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let refuse = |problem: &'static str| DataError::UnsafeArchive {
            archive: archive_path.to_path_buf(),
            entry: raw_name.clone(),
            problem,
        };
        // pax global headers only carry metadata for the entries after them.
        if entry_type == EntryType::XGlobalHeader {
            continue;
        }
        let relative = safe_relative_path(&entry.path().map_err(broken)?).map_err(refuse)?;
        let target = into.join(&relative);
        match entry_type {
            EntryType::Directory => {
                fs::create_dir_all(&target).map_err(|err| DataError::write(&target, err))?
            }
            EntryType::Regular => {
                if relative.as_os_str().is_empty() {
                    return Err(refuse("a file without a name"));
                }
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).map_err(|err| DataError::write(parent, err))?;
                }
                let mut out =
                    File::create(&target).map_err(|err| DataError::write(&target, err))?;
                io::copy(&mut entry, &mut out).map_err(broken)?;
            }
            EntryType::Symlink => return Err(refuse("symbolic links are not accepted")),
            EntryType::Link => return Err(refuse("hard links are not accepted")),
            _ => return Err(refuse("only regular files and folders are accepted")),
        }
    }
    Ok(())
}

/// The entry's path with `.` dropped, refused when absolute or when it climbs with `..`.
fn safe_relative_path(path: &Path) -> Result<PathBuf, &'static str> {
    let mut relative = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("`..` could climb out of the data folder"),
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute paths are not accepted")
            }
        }
    }
    Ok(relative)
}

/// Moves `from` (a file or folder) to `to`, merging into folders that are already there.
fn move_into_place(from: &Path, to: &Path) -> Result<(), DataError> {
    let is_dir = |path: &Path| fs::symlink_metadata(path).is_ok_and(|meta| meta.is_dir());
    if is_dir(from) && to.exists() {
        for entry in fs::read_dir(from).map_err(|err| DataError::read(from, err))? {
            let entry = entry.map_err(|err| DataError::read(from, err))?;
            move_into_place(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        fs::rename(from, to).map_err(|err| DataError::write(to, err))
    }
}

/// A fresh folder inside the data folder, removed with whatever is left in it when dropped.
struct StagingDir(PathBuf);

impl StagingDir {
    fn create(parent: &Path) -> Result<Self, DataError> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        fs::create_dir_all(parent).map_err(|err| DataError::write(parent, err))?;
        let unique = format!(
            ".adarat-unpack-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = parent.join(unique);
        fs::create_dir(&path).map_err(|err| DataError::write(&path, err))?;
        Ok(StagingDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_pass() {
        assert_eq!(
            safe_relative_path(Path::new("./a/b.bin")).unwrap(),
            PathBuf::from("a/b.bin")
        );
        assert!(safe_relative_path(Path::new("a/../../b")).is_err());
        assert!(safe_relative_path(Path::new("/etc/passwd")).is_err());
    }
}
