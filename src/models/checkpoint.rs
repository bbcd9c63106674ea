//! Checkpoint files: safetensors under the PyTorch state_dict names.
//!
//! Layout: an 8-byte little-endian header length, a JSON header mapping each tensor name to its dtype,
//! shape and byte range in the data section, then the data section. The header is checked against the
//! file size before any tensor is built, so a truncated or foreign file gives an error, never a crash.
use super::ModelError;
use crate::torch_error::first_line;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::ops::Range;
use std::path::Path;
use tch::{Kind, Tensor};

const LENGTH_PREFIX: usize = 8;
/// The optional free-form entry of a safetensors header; not a tensor.
const METADATA_KEY: &str = "__metadata__";

/// Writes the tensors to a temporary file in the destination folder, then renames it over `path`, so a
/// reader never sees a half-written checkpoint.
pub fn save(path: &Path, tensors: &[(String, Tensor)]) -> Result<(), ModelError> {
    let write_error = |reason: String| ModelError::Write {
        path: path.to_path_buf(),
        reason,
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| write_error("the path names no file".to_string()))?;
    let temporary = path.with_file_name(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    // The writer copies raw bytes, which needs contiguous CPU tensors.
    let on_cpu: Vec<(&str, Tensor)> = tensors
        .iter()
        .map(|(name, tensor)| {
            (
                name.as_str(),
                tensor.to_device(tch::Device::Cpu).contiguous(),
            )
        })
        .collect();
    let written = crate::faults::full_disk(path)
        .map_err(|err| err.to_string())
        .and_then(|()| {
            Tensor::write_safetensors(&on_cpu, &temporary)
                .map_err(|err| first_line(&err.to_string()))
        })
        .and_then(|()| {
            fs::File::open(&temporary)
                .and_then(|file| file.sync_all())
                .and_then(|()| fs::rename(&temporary, path))
                .map_err(|err| err.to_string())
        });
    written.map_err(|reason| {
        // Best effort: the temporary file is garbage either way, and the write error is what matters.
        let _ = fs::remove_file(&temporary);
        write_error(reason)
    })
}

/// Copies every tensor of the checkpoint into `targets`, strictly like PyTorch's
/// `load_state_dict(strict=True)`: the names must match exactly, and every shape and dtype too. Nothing is
/// copied unless everything matches.
pub(super) fn load_into(path: &Path, targets: &[(String, Tensor)]) -> Result<(), ModelError> {
    let bytes = fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file = SafetensorsFile::parse(path, &bytes)?;
    check_names(path, &file, targets)?;
    // After check_names every target has its entry.
    let pairs: Vec<(&Entry, &Tensor)> = targets
        .iter()
        .filter_map(|(name, target)| file.entries.get(name).map(|entry| (name, entry, target)))
        .map(|(name, entry, target)| {
            check_entry(path, name, entry, target).map(|()| (entry, target))
        })
        .collect::<Result<_, _>>()?;
    crate::thread_modes::no_grad(|| {
        for (entry, target) in pairs {
            let data = &file.data[entry.bytes.clone()];
            let torch_error = |err: tch::TchError| ModelError::Torch(first_line(&err.to_string()));
            let source =
                Tensor::f_from_data_size(data, &entry.shape, target.kind()).map_err(torch_error)?;
            target
                .shallow_clone()
                .f_copy_(&source)
                .map_err(torch_error)?;
        }
        Ok(())
    })
}

/// One tensor as the header describes it.
struct Entry {
    dtype: String,
    shape: Vec<i64>,
    /// Byte range within the data section.
    bytes: Range<usize>,
}

struct SafetensorsFile<'a> {
    entries: BTreeMap<String, Entry>,
    data: &'a [u8],
}

impl<'a> SafetensorsFile<'a> {
    fn parse(path: &Path, bytes: &'a [u8]) -> Result<Self, ModelError> {
        let corrupt = |reason: String| ModelError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let Some((prefix, rest)) = bytes.split_first_chunk::<LENGTH_PREFIX>() else {
            return Err(corrupt(format!("the file has only {} bytes", bytes.len())));
        };
        let header_length = u64::from_le_bytes(*prefix);
        let header_length = usize::try_from(header_length)
            .ok()
            .filter(|&length| length <= rest.len())
            .ok_or_else(|| {
                corrupt(format!(
                    "its header length field says {header_length} bytes but only {} follow \
                     (truncated, or not a safetensors file)",
                    rest.len()
                ))
            })?;
        let (header, data) = rest.split_at(header_length);
        let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(header)
            .map_err(|err| corrupt(format!("its header is not a JSON object ({err})")))?;
        let mut entries = BTreeMap::new();
        for (name, description) in header {
            if name == METADATA_KEY {
                continue;
            }
            let entry = parse_entry(&description).ok_or_else(|| {
                corrupt(format!(
                    "the header entry of `{name}` lacks a valid dtype, shape or data_offsets"
                ))
            })?;
            let expected_length = dtype_size(&entry.dtype)
                .zip(element_count(&entry.shape))
                .and_then(|(size, count)| size.checked_mul(count))
                .ok_or_else(|| {
                    corrupt(format!(
                        "tensor `{name}` has unsupported dtype {} or an absurd shape",
                        entry.dtype
                    ))
                })?;
            if entry.bytes.len() != expected_length {
                return Err(corrupt(format!(
                    "tensor `{name}` ({} {:?}) needs {expected_length} bytes but its data_offsets span {}",
                    entry.dtype,
                    entry.shape,
                    entry.bytes.len()
                )));
            }
            if entry.bytes.end > data.len() {
                return Err(corrupt(format!(
                    "tensor `{name}` ends at byte {} of the data section, which holds only {} bytes (truncated?)",
                    entry.bytes.end,
                    data.len()
                )));
            }
            entries.insert(name, entry);
        }
        Ok(SafetensorsFile { entries, data })
    }
}

fn parse_entry(description: &serde_json::Value) -> Option<Entry> {
    let dtype = description.get("dtype")?.as_str()?.to_string();
    let shape = description
        .get("shape")?
        .as_array()?
        .iter()
        .map(|dim| dim.as_i64().filter(|&dim| dim >= 0))
        .collect::<Option<Vec<i64>>>()?;
    let offsets = description.get("data_offsets")?.as_array()?;
    let [start, end] = offsets.as_slice() else {
        return None;
    };
    let start = usize::try_from(start.as_u64()?).ok()?;
    let end = usize::try_from(end.as_u64()?).ok()?;
    (start <= end).then_some(Entry {
        dtype,
        shape,
        bytes: start..end,
    })
}

fn element_count(shape: &[i64]) -> Option<usize> {
    shape.iter().try_fold(1usize, |count, &dim| {
        count.checked_mul(usize::try_from(dim).ok()?)
    })
}

/// Bytes per element of a safetensors dtype.
fn dtype_size(dtype: &str) -> Option<usize> {
    match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => Some(1),
        "U16" | "I16" | "F16" | "BF16" => Some(2),
        "U32" | "I32" | "F32" => Some(4),
        "U64" | "I64" | "F64" => Some(8),
        _ => None,
    }
}

/// The safetensors spelling of a tensor kind (only kinds a network holds).
fn dtype_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Float => "F32",
        Kind::Double => "F64",
        Kind::Half => "F16",
        Kind::BFloat16 => "BF16",
        Kind::Int64 => "I64",
        Kind::Int => "I32",
        Kind::Uint8 => "U8",
        Kind::Bool => "BOOL",
        _ => "unsupported",
    }
}

fn check_names(
    path: &Path,
    file: &SafetensorsFile,
    targets: &[(String, Tensor)],
) -> Result<(), ModelError> {
    let wanted: BTreeSet<&str> = targets.iter().map(|(name, _)| name.as_str()).collect();
    let missing: Vec<&(String, Tensor)> = targets
        .iter()
        .filter(|(name, _)| !file.entries.contains_key(name))
        .collect();
    if let Some((name, tensor)) = missing.first() {
        return Err(ModelError::MissingTensor {
            path: path.to_path_buf(),
            name: name.clone(),
            expected: tensor.size(),
            others: missing.len() - 1,
        });
    }
    let unexpected: Vec<(&String, &Entry)> = file
        .entries
        .iter()
        .filter(|(name, _)| !wanted.contains(name.as_str()))
        .collect();
    if let Some((name, entry)) = unexpected.first() {
        return Err(ModelError::UnexpectedTensor {
            path: path.to_path_buf(),
            name: name.to_string(),
            found: entry.shape.clone(),
            others: unexpected.len() - 1,
        });
    }
    Ok(())
}

fn check_entry(path: &Path, name: &str, entry: &Entry, target: &Tensor) -> Result<(), ModelError> {
    let expected_shape = target.size();
    if entry.shape != expected_shape {
        return Err(ModelError::ShapeMismatch {
            path: path.to_path_buf(),
            name: name.to_string(),
            expected: expected_shape,
            found: entry.shape.clone(),
        });
    }
    let expected_dtype = dtype_name(target.kind());
    if entry.dtype != expected_dtype {
        return Err(ModelError::DtypeMismatch {
            path: path.to_path_buf(),
            name: name.to_string(),
            expected: expected_dtype.to_string(),
            found: entry.dtype.clone(),
        });
    }
    Ok(())
}
