//! Fetching a missing official dataset, one download per dataset per data folder at a time (a lock in
//! `<data>/.locks/`, after which a dataset another process has just installed is not fetched again).
//! The file is downloaded with a progress bar into a file of this process's own, its MD5 checked
//! against the published sum and unpacked from those same bytes; only the dataset's own files are
//! installed, each at its official size, by renames from a staging folder, so that a refused download
//! installs nothing. The download and what it unpacks to are capped, so that a wrong file or a
//! decompression bomb is refused before it fills the disk. Without network (or with downloads off)
//! the error says which files to put where.
use super::cifar::CifarLayout;
use super::error::DataError;
use super::idx::{IdxFile, IdxSet};
use super::DataRequest;
use crate::lock::{LockError, ProcessLock, LOCKS_DIR};
use flate2::read::{GzDecoder, MultiGzDecoder};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use md5::{Digest, Md5};
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tar::EntryType;

const TAR_BLOCK: u64 = 512;

/// Everything a CIFAR archive holds besides the dataset's files: the official companions (a few
/// hundred bytes each), folder entries, pax headers, and the end-of-archive blocks that GNU tar pads
/// to 10 KiB records. A mebibyte is a hundredfold margin.
const ARCHIVE_ALLOWANCE: u64 = 1 << 20;

/// The most a CIFAR archive's tar stream (what its gzip unpacks to) can hold: each file of the
/// dataset behind its header block, padded to whole blocks, and the allowance; 185 MB for CIFAR-10.
fn archive_stream_most(layout: &CifarLayout) -> u64 {
    let files: u64 = (layout.sized_files())
        .map(|(_, size)| TAR_BLOCK + size.next_multiple_of(TAR_BLOCK))
        .sum();
    files + ARCHIVE_ALLOWANCE
}

/// The most a gzip file of `unpacked` bytes can be. A mirror may repack, so the published size is no
/// bound, but this is: deflate's stored blocks, its worst case (data that does not compress), add 5
/// bytes per 65,535, and the gzip header (with an optional name and comment) and trailer a few
/// hundred. A download past it cannot be the dataset's and is cut off there.
fn gzip_most(unpacked: u64) -> u64 {
    unpacked + unpacked / 1000 + (64 << 10)
}

/// Fetches and installs a CIFAR archive into `req.data_dir`, or says what to put where.
pub(crate) fn fetch_cifar(layout: &CifarLayout, req: &DataRequest) -> Result<(), DataError> {
    let folder = req.data_dir.join(layout.folder);
    let missing = |reason: String| {
        let files = missing_or_all(layout.missing_files(&folder), layout.all_files()).join(", ");
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
    let _lock = lock_download(req)?;
    // Another process may have installed it while this one waited for the lock.
    if layout.missing_files(&folder).is_empty() {
        return Ok(());
    }
    let file_name = layout.url.rsplit('/').next().unwrap_or(layout.url);
    let source = Source::of(req.mirror, file_name, layout.md5);
    let url = source.urls(&[layout.url.rsplit_once('/').map_or("", |(base, _)| base)])[0].clone();
    let staging = StagingDir::next_to(&folder, req.data_dir)?;
    let most = archive_stream_most(layout);
    download(&url, req.data_dir, gzip_most(most), req.progress)
        .and_then(|archive| {
            unpack_archive(
                layout,
                &archive,
                &source.md5,
                Path::new(file_name),
                staging.path(),
            )
            .map_err(|err| err.to_string())
        })
        .map_err(|err| missing(format!("fetching {url} failed ({err}); ")))?;
    staging.install_into(&folder)
}

/// Fetches the missing `.gz` files of an IDX dataset into `data_dir/<folder>/` (unpacked), all or
/// none of them, or says what to put where. Returns the folder.
pub(crate) fn fetch_idx(set: &IdxSet, req: &DataRequest) -> Result<PathBuf, DataError> {
    let folder = req.data_dir.join(set.folder);
    let missing = |reason: String| {
        let files: Vec<String> = missing_or_all(set.missing_files(&folder), set.file_names())
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
    let _lock = lock_download(req)?;
    // Another process may have installed it while this one waited for the lock.
    if let Some(found) = set.find_folder(req.data_dir) {
        return Ok(found);
    }
    let lacking = set.missing_files(&folder);
    let staging = StagingDir::next_to(&folder, req.data_dir)?;
    for file in set.files() {
        if lacking.contains(&file.name) {
            let gz_name = format!("{}.gz", file.name);
            let source = Source::of(req.mirror, &gz_name, file.gz_md5);
            let urls = source.urls(set.mirrors);
            fetch_gzip_file(&urls, &file, &source.md5, staging.path(), req)
                .map_err(|reason| missing(format!("{reason}; ")))?;
        }
    }
    staging.install_into(&folder)?;
    Ok(folder)
}

/// The files a message about a missing dataset names: those missing, or every file of the dataset
/// when none is (another process put them in place after this one failed).
fn missing_or_all(
    missing: Vec<&'static str>,
    all: impl IntoIterator<Item = &'static str>,
) -> Vec<&'static str> {
    if missing.is_empty() {
        all.into_iter().collect()
    } else {
        missing
    }
}

/// Takes the lock that keeps `req.kind` to one download into `req.data_dir` at a time, waiting
/// (and saying so on stderr) while another process holds it. The kernel drops it when the process
/// ends, however it ends.
fn lock_download(req: &DataRequest) -> Result<ProcessLock, DataError> {
    let path = (req.data_dir.join(LOCKS_DIR)).join(format!("download-{}.lock", req.kind));
    match ProcessLock::try_acquire(&path) {
        Err(LockError::Held(_)) => {
            eprintln!(
                "{}: another process is downloading it into {}; waiting for it",
                req.kind,
                req.data_dir.display()
            );
            Ok(ProcessLock::acquire_waiting(&path)?)
        }
        taken => Ok(taken?),
    }
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

/// Downloads `file`'s `.gz` from the first address that answers and unpacks it into `into`.
fn fetch_gzip_file(
    urls: &[String],
    file: &IdxFile,
    md5: &str,
    into: &Path,
    req: &DataRequest,
) -> Result<(), String> {
    let gz_name = format!("{}.gz", file.name);
    let mut failures = Vec::new();
    for url in urls {
        let fetched =
            download(url, req.data_dir, gzip_most(file.size), req.progress).and_then(|gz| {
                unpack_gzip(&gz, md5, Path::new(&gz_name), file, &into.join(file.name))
                    .map_err(|err| err.to_string())
            });
        match fetched {
            Ok(()) => return Ok(()),
            Err(err) => failures.push(format!("fetching {url} failed ({err})")),
        }
    }
    Err(failures.join("; "))
}

/// Streams `url` into a nameless file of `data_dir` with a byte progress bar on stderr (when
/// `progress`), refusing more than `most` bytes. The error is a reason for the caller to put next to
/// the address.
fn download(url: &str, data_dir: &Path, most: u64, progress: bool) -> Result<File, String> {
    let file_name = url.rsplit('/').next().unwrap_or(url);
    let too_large = || DataError::too_large(file_name, "is", most).to_string();
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(20))
        .timeout_read(Duration::from_secs(60))
        .build();
    let response = agent.get(url).call().map_err(|err| err.to_string())?;
    let length = response
        .header("Content-Length")
        .and_then(|value| value.parse::<u64>().ok());
    if length.is_some_and(|length| length > most) {
        return Err(too_large());
    }
    let file = nameless_file(data_dir, file_name).map_err(|err| err.to_string())?;
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
        .with_message(file_name.to_string());
    let mut body = Capped::new(response.into_reader(), most);
    let mut writer = bar.wrap_write(io::BufWriter::new(&file));
    let copied = io::copy(&mut body, &mut writer)
        .and_then(|_| writer.flush())
        .map_err(|err| format!("the transfer broke off: {err}"));
    bar.finish_and_clear();
    drop(writer);
    copied?;
    if body.went_past() {
        return Err(too_large());
    }
    Ok(file)
}

/// A new file in `dir` that has no name: created under a name of this process's own (never an
/// existing file: `create_new`) and unlinked at once, so that nothing is left of it however the
/// process ends, and nothing can reach it by its name between the checksum and the unpacking.
fn nameless_file(dir: &Path, file_name: &str) -> Result<File, DataError> {
    fs::create_dir_all(dir).map_err(|err| DataError::write(dir, err))?;
    let path = dir.join(format!(".{file_name}.{}.part", unique_suffix()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|err| DataError::write(&path, err))?;
    fs::remove_file(&path).map_err(|err| DataError::write(&path, err))?;
    Ok(file)
}

/// `<pid>-<counter>`: a name part no other process, and no other call in this one, uses.
fn unique_suffix() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{count}", std::process::id())
}

/// The MD5 of a file as 32 lowercase hex digits.
pub fn md5_hex(path: &Path) -> Result<String, DataError> {
    let file = File::open(path).map_err(|err| DataError::read(path, err))?;
    md5_of(file).map_err(|err| DataError::read(path, err))
}

fn md5_of(mut reader: impl Read) -> io::Result<String> {
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// `file` read from its start.
fn rewound(mut file: &File) -> io::Result<&File> {
    file.rewind()?;
    Ok(file)
}

/// Checks the downloaded `file` (called `name` in errors) against `expected`.
fn verify_md5(file: &File, expected: &str, name: &Path) -> Result<(), DataError> {
    let actual = rewound(file)
        .and_then(md5_of)
        .map_err(|err| DataError::read(name, err))?;
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(DataError::Checksum {
            path: name.to_path_buf(),
            expected: expected.to_ascii_lowercase(),
            actual,
        })
    }
}

/// Verifies the downloaded `.tar.gz` against `expected_md5` and unpacks the dataset's files from
/// it, from the same open file, into the staging folder `into`.
///
/// Only the dataset's files (each at its official size), its official companions (read past, not
/// installed) and its folder are accepted; anything else refuses the whole archive: another file,
/// absolute paths or `..`, symbolic or hard links, devices, and a tar stream past
/// [`archive_stream_most`]. The archive must hold every file of the dataset.
fn unpack_archive(
    layout: &CifarLayout,
    archive: &File,
    expected_md5: &str,
    name: &Path,
    into: &Path,
) -> Result<(), DataError> {
    verify_md5(archive, expected_md5, name)?;
    let gzip = GzDecoder::new(rewound(archive).map_err(|err| DataError::read(name, err))?);
    let most = archive_stream_most(layout);
    let mut stream = Capped::new(gzip, most);
    let unpacked = unpack_entries(layout, &mut tar::Archive::new(&mut stream), name, into);
    if stream.went_past() {
        return Err(DataError::too_large(name, "unpacks to", most));
    }
    let found = unpacked?;
    let lacking: Vec<&str> = (layout.all_files())
        .filter(|file| !found.contains(file))
        .collect();
    if lacking.is_empty() {
        Ok(())
    } else {
        let problem = format!("holds no {}", lacking.join(", "));
        Err(DataError::malformed(name, problem))
    }
}

/// Writes the dataset's files of `archive` into `into` and returns their names.
fn unpack_entries(
    layout: &CifarLayout,
    archive: &mut tar::Archive<impl Read>,
    name: &Path,
    into: &Path,
) -> Result<HashSet<&'static str>, DataError> {
    let broken = |err: io::Error| DataError::malformed(name, format!("broken archive: {err}"));
    let folder = Path::new(layout.folder);
    let mut found = HashSet::new();
    for entry in archive.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        let entry_type = entry.header().entry_type();
        let raw_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let refuse = |problem: &'static str| DataError::UnsafeArchive {
            archive: name.to_path_buf(),
            entry: raw_name.clone(),
            problem,
        };
        // pax global headers only carry metadata for the entries after them.
        if entry_type == EntryType::XGlobalHeader {
            continue;
        }
        let relative = safe_relative_path(&entry.path().map_err(broken)?).map_err(refuse)?;
        let dataset_file = layout
            .sized_files()
            .find(|(file, _)| relative == folder.join(file));
        let is_companion =
            (layout.archive_companions.iter()).any(|file| relative == folder.join(file));
        match entry_type {
            EntryType::Directory if relative == folder || relative.as_os_str().is_empty() => {}
            EntryType::Regular if is_companion => {}
            EntryType::Regular => {
                let Some((file, size)) = dataset_file else {
                    return Err(refuse("not a file of the dataset"));
                };
                if entry.size() != size {
                    let problem = format!(
                        "entry `{raw_name}` holds {} bytes, but the dataset's {file} has {size}",
                        entry.size()
                    );
                    return Err(DataError::malformed(name, problem));
                }
                if !found.insert(file) {
                    return Err(refuse("the archive holds this file twice"));
                }
                let target = into.join(file);
                let mut out =
                    File::create(&target).map_err(|err| DataError::write(&target, err))?;
                let written = io::copy(&mut entry, &mut out).map_err(broken)?;
                if written != size {
                    let problem = format!("entry `{raw_name}` is cut short at {written} bytes");
                    return Err(DataError::malformed(name, problem));
                }
            }
            EntryType::Directory => return Err(refuse("not a folder of the dataset")),
            EntryType::Symlink => return Err(refuse("symbolic links are not accepted")),
            EntryType::Link => return Err(refuse("hard links are not accepted")),
            _ => return Err(refuse("only regular files and folders are accepted")),
        }
    }
    Ok(found)
}

/// Verifies the downloaded `.gz` against `expected_md5` and decompresses it, from the same open
/// file, to `target` (in a staging folder), refusing anything but `file`'s official size.
fn unpack_gzip(
    gz: &File,
    expected_md5: &str,
    name: &Path,
    file: &IdxFile,
    target: &Path,
) -> Result<(), DataError> {
    verify_md5(gz, expected_md5, name)?;
    let gzip = MultiGzDecoder::new(rewound(gz).map_err(|err| DataError::read(name, err))?);
    let mut stream = Capped::new(gzip, file.size);
    let mut out = File::create(target).map_err(|err| DataError::write(target, err))?;
    let written = io::copy(&mut stream, &mut out)
        .map_err(|err| DataError::malformed(name, format!("broken gzip stream: {err}")))?;
    if stream.went_past() {
        return Err(DataError::too_large(name, "unpacks to", file.size));
    }
    if written != file.size {
        let problem = format!(
            "unpacks to {written} bytes, but the dataset's {} has {}",
            file.name, file.size
        );
        return Err(DataError::malformed(name, problem));
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

/// A reader cut off one byte past `most`: having read that byte means that the source holds more
/// than `most`, which [`Capped::went_past`] then says.
struct Capped<R>(io::Take<R>);

impl<R: Read> Capped<R> {
    fn new(reader: R, most: u64) -> Self {
        Capped(reader.take(most.saturating_add(1)))
    }

    fn went_past(&self) -> bool {
        self.0.limit() == 0
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        self.0.read(buffer)
    }
}

/// A fresh folder of this process's own, removed with whatever is left in it when dropped: the
/// downloaded files wait there until all of them are checked.
struct StagingDir(PathBuf);

impl StagingDir {
    /// In the dataset's `folder` when it is there, so that the files move in by a rename even when
    /// it is a link to another file system; else in the data folder, so that a refused download
    /// leaves no empty dataset folder behind.
    /// Called under the dataset's download lock: a staging folder of the same dataset left by a
    /// download that was killed is removed first.
    fn next_to(folder: &Path, data_dir: &Path) -> Result<Self, DataError> {
        let parent = if folder.is_dir() { folder } else { data_dir };
        fs::create_dir_all(parent).map_err(|err| DataError::write(parent, err))?;
        let dataset = folder.file_name().map(|n| n.to_string_lossy().into_owned());
        let prefix = format!(".adarat-unpack-{}-", dataset.unwrap_or_default());
        for stale in fs::read_dir(parent).into_iter().flatten().flatten() {
            if stale.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_dir_all(stale.path());
            }
        }
        let path = parent.join(format!("{prefix}{}", unique_suffix()));
        fs::create_dir(&path).map_err(|err| DataError::write(&path, err))?;
        Ok(StagingDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Moves every staged file into `folder` (created if need be), replacing those of the same
    /// name; the lock keeps other downloads out meanwhile.
    fn install_into(self, folder: &Path) -> Result<(), DataError> {
        let unreadable = |err| DataError::read(&self.0, err);
        fs::create_dir_all(folder).map_err(|err| DataError::write(folder, err))?;
        for entry in fs::read_dir(&self.0).map_err(unreadable)? {
            let entry = entry.map_err(unreadable)?;
            let target = folder.join(entry.file_name());
            fs::rename(entry.path(), &target).map_err(|err| DataError::write(&target, err))?;
        }
        Ok(())
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::super::idx::MNIST;
    use super::*;

    #[test]
    fn a_staging_folder_left_by_a_killed_download_of_the_dataset_is_removed() {
        let data = tempfile::tempdir().unwrap();
        let folder = data.path().join("cifar-10-batches-bin");
        let stale = data.path().join(".adarat-unpack-cifar-10-batches-bin-99-0");
        let other = data.path().join(".adarat-unpack-cifar-100-binary-99-0");
        for dir in [&stale, &other] {
            fs::create_dir_all(dir.join("half")).unwrap();
        }
        let staging = StagingDir::next_to(&folder, data.path()).unwrap();
        assert!(staging.path().is_dir() && !stale.exists());
        assert!(other.exists(), "another dataset's download may be running");
        drop(staging);
    }

    #[test]
    fn only_plain_relative_paths_pass() {
        assert_eq!(
            safe_relative_path(Path::new("./a/b.bin")).unwrap(),
            PathBuf::from("a/b.bin")
        );
        assert!(safe_relative_path(Path::new("a/../../b")).is_err());
        assert!(safe_relative_path(Path::new("/etc/passwd")).is_err());
    }

    #[test]
    fn the_message_names_the_files_even_when_none_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join(MNIST.folder);
        fs::create_dir_all(&folder).unwrap();
        for name in MNIST.file_names() {
            fs::write(folder.join(name), b"").unwrap();
        }
        let req = DataRequest {
            kind: crate::vocab::DatasetKind::Mnist,
            data_dir: dir.path(),
            device: tch::Device::Cpu,
            limit_train: None,
            limit_test: None,
            synthetic: crate::config::job::SyntheticSize { train: 0, test: 0 },
            download: false,
            mirror: None,
            progress: false,
        };
        let message = fetch_idx(&MNIST, &req).unwrap_err().to_string();
        for name in MNIST.file_names() {
            assert!(message.contains(&format!("{name}.gz")), "{message}");
        }
    }
}
