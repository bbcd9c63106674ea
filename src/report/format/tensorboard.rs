//! TensorBoard event files of each run's per-epoch scalars, so the curves open in TensorBoard (or
//! W&B, which imports them). A small writer of the documented format: TFRecord framing (length,
//! masked CRC-32C of the length, the bytes, their masked CRC-32C) around `Event` protocol buffers
//! (docs/report.md#tensorboard).
use super::{Tables, Writer};
use crate::report::groups::Run;
use crate::report::ReportError;
use std::path::{Path, PathBuf};

/// `tensorboard/<run folder name>/`, one event file per run.
pub(super) struct Tensorboard;

impl Writer for Tensorboard {
    fn write(&self, tables: &Tables, out: &Path) -> Result<Vec<PathBuf>, ReportError> {
        let dir = out.join("tensorboard");
        let runs = tables.collection.groups.iter().flat_map(|g| &g.runs);
        runs.map(|run| {
            write_run(run, &dir).map_err(|source| ReportError::Write {
                path: dir.clone(),
                source,
            })
        })
        .collect()
    }
}

/// The scalars written for every epoch, by tag; optional ones only where the run has them.
fn scalars(e: &crate::store::result::EpochRecord) -> Vec<(&'static str, f64)> {
    let mut values = vec![
        ("test/clean_acc", e.test_clean_acc),
        ("test/fgsm_acc", e.test_fgsm_acc),
        ("test/pgd_acc", e.test_pgd_acc),
        ("train/loss", e.train_loss),
        ("train/clean_acc", e.train_clean_acc),
        ("train/adv_acc", e.train_adv_acc),
        ("train/lr", e.lr),
    ];
    if let Some(ratio) = e.ratio_mean {
        values.push(("ratio/mean", ratio));
    }
    if let Some(share) = e.clean_branch_share {
        values.push(("ratio/clean_only_share", share));
    }
    values
}

/// Writes `<dir>/<run folder name>/events.out.tfevents.adarat`: one event per epoch (step = epoch)
/// after the file-version event TensorBoard expects first.
fn write_run(run: &Run, dir: &Path) -> std::io::Result<PathBuf> {
    let name = run.folder.file_name().unwrap_or_default();
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder)?;
    let mut bytes = Vec::new();
    let start = wall_time(
        run.result
            .epochs_log
            .first()
            .map(|e| e.finished_at.as_str()),
    );
    record(
        &mut bytes,
        &event(start, 0, Payload::Version("brain.Event:2")),
    );
    for e in &run.result.epochs_log {
        let when = wall_time(Some(&e.finished_at));
        let values = scalars(e);
        record(
            &mut bytes,
            &event(when, e.epoch as i64, Payload::Scalars(&values)),
        );
    }
    let path = folder.join("events.out.tfevents.adarat");
    std::fs::write(&path, bytes)?;
    Ok(path)
}

/// Seconds since the epoch of a `YYYY/MM/DD HH:MM:SS` local time; 0 when it cannot be read.
fn wall_time(text: Option<&str>) -> f64 {
    use chrono::TimeZone;
    text.and_then(|t| chrono::NaiveDateTime::parse_from_str(t, "%Y/%m/%d %H:%M:%S").ok())
        .and_then(|t| chrono::Local.from_local_datetime(&t).single())
        .map_or(0.0, |t| t.timestamp() as f64)
}

enum Payload<'a> {
    Version(&'a str),
    Scalars(&'a [(&'a str, f64)]),
}

/// `Event { wall_time = 1 (double), step = 2 (int64), file_version = 3 | summary = 5 }`, with
/// `Summary { repeated Value value = 1 }` and `Value { tag = 1, simple_value = 2 (float) }`.
fn event(wall_time: f64, step: i64, payload: Payload) -> Vec<u8> {
    let mut out = vec![0x09];
    out.extend(wall_time.to_le_bytes());
    out.push(0x10);
    varint(&mut out, step as u64);
    match payload {
        Payload::Version(version) => bytes_field(&mut out, 3, version.as_bytes()),
        Payload::Scalars(values) => {
            let mut summary = Vec::new();
            for (tag, value) in values {
                let mut entry = Vec::new();
                bytes_field(&mut entry, 1, tag.as_bytes());
                entry.push(0x15);
                entry.extend((*value as f32).to_le_bytes());
                bytes_field(&mut summary, 1, &entry);
            }
            bytes_field(&mut out, 5, &summary);
        }
    }
    out
}

fn bytes_field(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push((field << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// TFRecord framing.
fn record(out: &mut Vec<u8>, data: &[u8]) {
    let length = (data.len() as u64).to_le_bytes();
    out.extend(length);
    out.extend(masked_crc(&length).to_le_bytes());
    out.extend_from_slice(data);
    out.extend(masked_crc(data).to_le_bytes());
}

fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// CRC-32C (Castagnoli), bit by bit: event files are small.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_its_published_check_value() {
        // The CRC catalogue's check value of CRC-32/ISCSI for "123456789".
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
    }
}
