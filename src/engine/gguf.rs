//! A small, defensive GGUF reader: checks a model file before llama.cpp sees it (llama.cpp
//! aborts the process on some malformed files) and reads the metadata `pith model info` shows.
//!
//! Only the header is parsed: magic, version, key/value metadata and tensor descriptors. The
//! tensor data is not read, but its extent is computed so a truncated download is caught.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::EngineError;

/// A metadata value, flattened: arrays keep only their length and element type, except short
/// arrays of strings which are not needed either (the vocabulary is huge).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Array { len: u64 },
}

impl Value {
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Int(v) => u64::try_from(*v).ok(),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// What the header of a GGUF file says.
#[derive(Debug, Clone)]
pub struct GgufInfo {
    pub version: u32,
    pub file_size: u64,
    pub tensor_count: u64,
    /// Sum of the tensors' element counts.
    pub parameters: u64,
    pub metadata: BTreeMap<String, Value>,
}

impl GgufInfo {
    pub fn architecture(&self) -> Option<&str> {
        self.metadata.get("general.architecture")?.as_str()
    }
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key)?.as_str()
    }
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.metadata.get(key)?.as_u64()
    }
    /// The training context length (`{arch}.context_length`).
    pub fn context_length(&self) -> Option<u64> {
        self.get_u64(&format!("{}.context_length", self.architecture()?))
    }
    /// The `general.file_type` as llama.cpp names it (e.g. `Q4_K_M`).
    pub fn file_type(&self) -> Option<&'static str> {
        let name = match self.get_u64("general.file_type")? {
            0 => "F32",
            1 => "F16",
            2 => "Q4_0",
            3 => "Q4_1",
            7 => "Q8_0",
            8 => "Q5_0",
            9 => "Q5_1",
            10 => "Q2_K",
            11 => "Q3_K_S",
            12 => "Q3_K_M",
            13 => "Q3_K_L",
            14 => "Q4_K_S",
            15 => "Q4_K_M",
            16 => "Q5_K_S",
            17 => "Q5_K_M",
            18 => "Q6_K",
            19 => "IQ2_XXS",
            20 => "IQ2_XS",
            21 => "Q2_K_S",
            22 => "IQ3_XS",
            23 => "IQ3_XXS",
            24 => "IQ1_S",
            25 => "IQ4_NL",
            26 => "IQ3_S",
            27 => "IQ3_M",
            28 => "IQ2_S",
            29 => "IQ2_M",
            30 => "IQ4_XS",
            31 => "IQ1_M",
            32 => "BF16",
            _ => "other",
        };
        Some(name)
    }
}

const MAGIC: &[u8; 4] = b"GGUF";
/// Caps that keep a corrupt header from making us allocate gigabytes.
const MAX_STRING: u64 = 64 << 20;
const MAX_COUNT: u64 = 1 << 24;

/// Reads and checks the header of `path`. Every failure is a [`EngineError::BadModel`].
pub fn inspect(path: &Path) -> Result<GgufInfo, EngineError> {
    let bad = |reason: String| EngineError::BadModel {
        path: path.display().to_string(),
        reason,
    };
    let file = File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
    let file_size = file
        .metadata()
        .map_err(|e| bad(format!("cannot stat: {e}")))?
        .len();
    if file_size < 24 {
        return Err(bad(format!(
            "only {file_size} bytes: not a GGUF model (truncated?)"
        )));
    }
    let mut reader = Reader {
        inner: BufReader::new(file),
        pos: 0,
    };
    parse(&mut reader, file_size).map_err(bad)
}

struct Reader<R> {
    inner: R,
    pos: u64,
}

impl<R: Read> Reader<R> {
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut buf = [0u8; N];
        self.inner
            .read_exact(&mut buf)
            .map_err(|_| format!("header ends early at byte {} (truncated file?)", self.pos))?;
        self.pos += N as u64;
        Ok(buf)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }
    fn string(&mut self) -> Result<String, String> {
        let len = self.u64()?;
        if len > MAX_STRING {
            return Err(format!(
                "string of {len} bytes at byte {}: corrupt header",
                self.pos
            ));
        }
        let mut buf = vec![0u8; len as usize];
        self.inner
            .read_exact(&mut buf)
            .map_err(|_| format!("header ends early at byte {} (truncated file?)", self.pos))?;
        self.pos += len;
        String::from_utf8(buf).map_err(|_| format!("string at byte {} is not UTF-8", self.pos))
    }
    fn skip(&mut self, n: u64) -> Result<(), String> {
        let copied = std::io::copy(&mut (&mut self.inner).take(n), &mut std::io::sink())
            .map_err(|e| e.to_string())?;
        if copied != n {
            return Err(format!(
                "header ends early at byte {} (truncated file?)",
                self.pos + copied
            ));
        }
        self.pos += n;
        Ok(())
    }

    fn value(&mut self, kind: u32) -> Result<Value, String> {
        Ok(match kind {
            0 => Value::Int(i64::from(self.bytes::<1>()?[0])),
            1 => Value::Int(i64::from(self.bytes::<1>()?[0] as i8)),
            2 => Value::Int(i64::from(u16::from_le_bytes(self.bytes()?))),
            3 => Value::Int(i64::from(i16::from_le_bytes(self.bytes()?))),
            4 => Value::Int(i64::from(self.u32()?)),
            5 => Value::Int(i64::from(i32::from_le_bytes(self.bytes()?))),
            6 => Value::Float(f64::from(f32::from_le_bytes(self.bytes()?))),
            7 => Value::Bool(self.bytes::<1>()?[0] != 0),
            8 => Value::Str(self.string()?),
            9 => {
                let element = self.u32()?;
                let len = self.u64()?;
                if len > MAX_COUNT * 16 {
                    return Err(format!("array of {len} elements: corrupt header"));
                }
                match fixed_size(element) {
                    Some(size) => self.skip(size * len)?,
                    None if element == 8 => {
                        for _ in 0..len {
                            let n = self.u64()?;
                            if n > MAX_STRING {
                                return Err("string too long in array: corrupt header".into());
                            }
                            self.skip(n)?;
                        }
                    }
                    None => return Err(format!("array of unsupported type {element}")),
                }
                Value::Array { len }
            }
            10 => Value::Int(self.u64()? as i64),
            11 => Value::Int(i64::from_le_bytes(self.bytes()?)),
            12 => Value::Float(f64::from_le_bytes(self.bytes()?)),
            other => return Err(format!("unknown metadata type {other}: corrupt header")),
        })
    }
}

fn fixed_size(kind: u32) -> Option<u64> {
    Some(match kind {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        _ => return None,
    })
}

/// (block size in elements, bytes per block) of a ggml tensor type; `None` for types this
/// reader does not know, whose tensors are then only checked by offset.
fn block_layout(kind: u32) -> Option<(u64, u64)> {
    Some(match kind {
        0 => (1, 4),      // F32
        1 => (1, 2),      // F16
        2 => (32, 18),    // Q4_0
        3 => (32, 20),    // Q4_1
        6 => (32, 22),    // Q5_0
        7 => (32, 24),    // Q5_1
        8 => (32, 34),    // Q8_0
        9 => (32, 36),    // Q8_1
        10 => (256, 84),  // Q2_K
        11 => (256, 110), // Q3_K
        12 => (256, 144), // Q4_K
        13 => (256, 176), // Q5_K
        14 => (256, 210), // Q6_K
        15 => (256, 292), // Q8_K
        24 => (1, 1),     // I8
        25 => (1, 2),     // I16
        26 => (1, 4),     // I32
        27 => (1, 8),     // I64
        28 => (1, 8),     // F64
        30 => (1, 2),     // BF16
        _ => return None,
    })
}

fn parse<R: Read>(r: &mut Reader<R>, file_size: u64) -> Result<GgufInfo, String> {
    if &r.bytes::<4>()? != MAGIC {
        return Err("not a GGUF file (bad magic)".into());
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(format!("unsupported GGUF version {version}"));
    }
    let tensor_count = r.u64()?;
    let kv_count = r.u64()?;
    if tensor_count > MAX_COUNT || kv_count > MAX_COUNT {
        return Err("implausible tensor or metadata count: corrupt header".into());
    }
    let mut metadata = BTreeMap::new();
    for _ in 0..kv_count {
        let key = r.string()?;
        let kind = r.u32()?;
        let value = r.value(kind)?;
        metadata.insert(key, value);
    }
    let alignment = metadata
        .get("general.alignment")
        .and_then(Value::as_u64)
        .filter(|a| *a > 0)
        .unwrap_or(32);
    let mut data_extent = 0u64;
    let mut parameters = 0u64;
    for _ in 0..tensor_count {
        let name = r.string()?;
        let n_dims = r.u32()?;
        if n_dims > 8 {
            return Err(format!(
                "tensor {name} has {n_dims} dimensions: corrupt header"
            ));
        }
        let mut elements = 1u64;
        for _ in 0..n_dims {
            elements = elements.saturating_mul(r.u64()?);
        }
        let kind = r.u32()?;
        let offset = r.u64()?;
        parameters = parameters.saturating_add(elements);
        let size = block_layout(kind)
            .map(|(block, bytes)| elements.div_ceil(block).saturating_mul(bytes))
            .unwrap_or(0);
        data_extent = data_extent.max(offset.saturating_add(size));
    }
    let data_start = r.pos.div_ceil(alignment) * alignment;
    let needed = data_start.saturating_add(data_extent);
    if needed > file_size {
        return Err(format!(
            "truncated: tensor data needs {needed} bytes but the file has {file_size}"
        ));
    }
    if tensor_count == 0 {
        return Err("the file holds no tensors".into());
    }
    Ok(GgufInfo {
        version,
        file_size,
        tensor_count,
        parameters,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gguf_bytes(truncate_data: bool) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"GGUF");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes()); // tensors
        b.extend_from_slice(&1u64.to_le_bytes()); // kv
        let key = b"general.architecture";
        b.extend_from_slice(&(key.len() as u64).to_le_bytes());
        b.extend_from_slice(key);
        b.extend_from_slice(&8u32.to_le_bytes());
        b.extend_from_slice(&5u64.to_le_bytes());
        b.extend_from_slice(b"llama");
        let name = b"w";
        b.extend_from_slice(&(name.len() as u64).to_le_bytes());
        b.extend_from_slice(name);
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&16u64.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes()); // F32
        b.extend_from_slice(&0u64.to_le_bytes());
        while b.len() % 32 != 0 {
            b.push(0);
        }
        let data = if truncate_data { 10 } else { 64 };
        b.extend(std::iter::repeat_n(0u8, data));
        b
    }

    fn check(bytes: &[u8]) -> Result<GgufInfo, EngineError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        std::fs::write(&path, bytes).unwrap();
        inspect(&path)
    }

    #[test]
    fn reads_a_well_formed_header() {
        let info = check(&gguf_bytes(false)).unwrap();
        assert_eq!(info.architecture(), Some("llama"));
        assert_eq!(info.parameters, 16);
    }

    #[test]
    fn rejects_truncated_data_bad_magic_and_short_header() {
        let err = check(&gguf_bytes(true)).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        let mut bad = gguf_bytes(false);
        bad[0] = b'X';
        assert!(check(&bad).unwrap_err().to_string().contains("bad magic"));
        let full = gguf_bytes(false);
        let err = check(&full[..40]).unwrap_err().to_string();
        assert!(err.contains("ends early"), "{err}");
    }
}
