//! A reader for glibc's `/etc/ld.so.cache`, the soname-to-path index that
//! `ldconfig` writes and `ld.so` consults before the default directories.
//!
//! Only the `glibc-ld.so.cache1.1` format is read. A file may start with the
//! pre-2.32 `ld.so-1.7.0` table, in which case the new format follows it and
//! the old table is skipped. Layout, from glibc's `sysdeps/generic/dl-cache.h`:
//!
//! ```text
//! header (48 bytes): magic "glibc-ld.so.cache" "1.1", nlibs u32,
//!     len_strings u32, flags u8, 3 bytes padding, extension_offset u32,
//!     3 unused u32
//! entries (24 bytes each): flags i32, key u32, value u32, osversion u32,
//!     hwcap u64
//! ```
//!
//! `key` and `value` are offsets of NUL-terminated strings, counted from the
//! start of the new-format header.

use std::path::Path;

const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const OLD_HEADER_SIZE: usize = 16;
const OLD_ENTRY_SIZE: usize = 12;
const NEW_HEADER_SIZE: usize = 48;
const NEW_ENTRY_SIZE: usize = 24;

/// Values of the header's endianness byte.
const ENDIAN_UNSET: u8 = 0;
const ENDIAN_LITTLE: u8 = 2;
const ENDIAN_BIG: u8 = 3;

/// The parsed cache: every entry, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdCache {
    pub entries: Vec<CacheEntry>,
}

/// One library in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// Library type and ABI, such as `0x0303` for an x86-64 libc6 library.
    pub flags: i32,
    /// The soname, such as `libc.so.6`.
    pub key: String,
    /// The path `ldconfig` found it at, such as `/lib/x86_64-linux-gnu/libc.so.6`.
    pub value: String,
    /// CPU feature bits. Zero marks the baseline library, and any other
    /// value a variant that `ld.so` loads only on CPUs with those features.
    pub hwcap: u64,
}

/// An error from reading a cache file.
#[derive(Debug, thiserror::Error)]
pub enum LdCacheError {
    #[error("failed to read ld.so cache `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid ld.so cache: {0}")]
    Invalid(&'static str),
}

impl LdCache {
    /// Reads and parses the cache file at `path`.
    pub fn load(path: &Path) -> Result<LdCache, LdCacheError> {
        let bytes =
            std::fs::read(path).map_err(|source| LdCacheError::Io { path: path.display().to_string(), source })?;

        LdCache::parse(&bytes)
    }

    /// Parses the bytes of a cache file.
    pub fn parse(bytes: &[u8]) -> Result<LdCache, LdCacheError> {
        let start = new_format_start(bytes)?;
        let data = &bytes[start..];
        if data.len() < NEW_HEADER_SIZE || !data.starts_with(NEW_MAGIC) {
            return Err(LdCacheError::Invalid("missing `glibc-ld.so.cache1.1` header"));
        }

        let big_endian = match data[28] {
            ENDIAN_LITTLE => false,
            ENDIAN_BIG => true,
            ENDIAN_UNSET => cfg!(target_endian = "big"),
            _ => return Err(LdCacheError::Invalid("unknown byte order")),
        };
        let reader = Reader { data, big_endian };

        let count = reader.u32(20)? as usize;
        let table_end = count
            .checked_mul(NEW_ENTRY_SIZE)
            .and_then(|size| size.checked_add(NEW_HEADER_SIZE))
            .ok_or(LdCacheError::Invalid("entry count overflows"))?;
        if table_end > data.len() {
            return Err(LdCacheError::Invalid("entry table runs past the end of the file"));
        }

        let mut entries = Vec::with_capacity(count);
        for index in 0..count {
            let offset = NEW_HEADER_SIZE + index * NEW_ENTRY_SIZE;
            entries.push(CacheEntry {
                flags: reader.u32(offset)? as i32,
                key: reader.string(reader.u32(offset + 4)? as usize)?,
                value: reader.string(reader.u32(offset + 8)? as usize)?,
                hwcap: reader.u64(offset + 16)?,
            });
        }

        Ok(LdCache { entries })
    }

    /// Returns the path of the baseline library named `soname` whose flags
    /// equal `flags`, taking the first match in file order as `ld.so` does.
    ///
    /// Entries with a non-zero hwcap are skipped because they apply only on
    /// CPUs with extra features, and the CPU that runs the image is unknown.
    pub fn lookup(&self, soname: &str, flags: i32) -> Option<&str> {
        self.entries
            .iter()
            .find(|entry| entry.flags == flags && entry.hwcap == 0 && entry.key == soname)
            .map(|entry| entry.value.as_str())
    }
}

/// Returns the offset of the new-format header, skipping an old-format
/// table in front of it.
fn new_format_start(bytes: &[u8]) -> Result<usize, LdCacheError> {
    if !bytes.starts_with(OLD_MAGIC) {
        return Ok(0);
    }

    if bytes.len() < OLD_HEADER_SIZE {
        return Err(LdCacheError::Invalid("truncated old-format header"));
    }
    let count = u32::from_ne_bytes(bytes[12..16].try_into().expect("4 bytes")) as usize;
    let old_end = count
        .checked_mul(OLD_ENTRY_SIZE)
        .and_then(|size| size.checked_add(OLD_HEADER_SIZE))
        .ok_or(LdCacheError::Invalid("old-format entry count overflows"))?;

    // The new header is aligned like its 8-byte hwcap field.
    let start = old_end.next_multiple_of(8);
    if start > bytes.len() {
        return Err(LdCacheError::Invalid("old-format table runs past the end of the file"));
    }
    Ok(start)
}

/// Bounds-checked reads from the new-format part of the file.
struct Reader<'a> {
    data: &'a [u8],
    big_endian: bool,
}

impl Reader<'_> {
    fn u32(&self, offset: usize) -> Result<u32, LdCacheError> {
        let bytes: [u8; 4] = self
            .data
            .get(offset..offset + 4)
            .ok_or(LdCacheError::Invalid("field runs past the end of the file"))?
            .try_into()
            .expect("4 bytes");
        Ok(if self.big_endian { u32::from_be_bytes(bytes) } else { u32::from_le_bytes(bytes) })
    }

    fn u64(&self, offset: usize) -> Result<u64, LdCacheError> {
        let bytes: [u8; 8] = self
            .data
            .get(offset..offset + 8)
            .ok_or(LdCacheError::Invalid("field runs past the end of the file"))?
            .try_into()
            .expect("8 bytes");
        Ok(if self.big_endian { u64::from_be_bytes(bytes) } else { u64::from_le_bytes(bytes) })
    }

    fn string(&self, offset: usize) -> Result<String, LdCacheError> {
        let tail = self.data.get(offset..).ok_or(LdCacheError::Invalid("string offset past the end of the file"))?;
        let length =
            tail.iter().position(|&byte| byte == 0).ok_or(LdCacheError::Invalid("string without a terminating NUL"))?;

        String::from_utf8(tail[..length].to_vec()).map_err(|_| LdCacheError::Invalid("string is not valid UTF-8"))
    }
}

/// Builds a little-endian new-format cache from (flags, key, value, hwcap)
/// tuples, with the string table after the entries.
#[cfg(test)]
pub(crate) fn build_cache(entries: &[(i32, &str, &str, u64)]) -> Vec<u8> {
    let strings_start = NEW_HEADER_SIZE + entries.len() * NEW_ENTRY_SIZE;
    let mut strings = Vec::new();
    let mut table = Vec::new();
    for (flags, key, value, hwcap) in entries {
        let key_offset = strings_start + strings.len();
        strings.extend_from_slice(key.as_bytes());
        strings.push(0);
        let value_offset = strings_start + strings.len();
        strings.extend_from_slice(value.as_bytes());
        strings.push(0);

        table.extend_from_slice(&flags.to_le_bytes());
        table.extend_from_slice(&(key_offset as u32).to_le_bytes());
        table.extend_from_slice(&(value_offset as u32).to_le_bytes());
        table.extend_from_slice(&0u32.to_le_bytes());
        table.extend_from_slice(&hwcap.to_le_bytes());
    }

    let mut bytes = NEW_MAGIC.to_vec();
    bytes.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&[ENDIAN_LITTLE, 0, 0, 0]);
    bytes.extend_from_slice(&[0; 16]);
    assert_eq!(bytes.len(), NEW_HEADER_SIZE);
    bytes.extend_from_slice(&table);
    bytes.extend_from_slice(&strings);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_every_entry() {
        let bytes = build_cache(&[
            (0x0303, "libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6", 0),
            (0x0003, "libc.so.6", "/lib/i386-linux-gnu/libc.so.6", 0),
        ]);

        let cache = LdCache::parse(&bytes).unwrap();

        assert_eq!(cache.entries.len(), 2);
        assert_eq!(cache.entries[0].key, "libc.so.6");
        assert_eq!(cache.entries[0].value, "/lib/x86_64-linux-gnu/libc.so.6");
        assert_eq!(cache.entries[1].flags, 0x0003);
    }

    #[test]
    fn lookup_matches_flags() {
        let bytes = build_cache(&[
            (0x0003, "libz.so.1", "/lib/i386-linux-gnu/libz.so.1", 0),
            (0x0303, "libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1", 0),
            (0x0a03, "libz.so.1", "/lib/aarch64-linux-gnu/libz.so.1", 0),
        ]);
        let cache = LdCache::parse(&bytes).unwrap();

        assert_eq!(cache.lookup("libz.so.1", 0x0303), Some("/lib/x86_64-linux-gnu/libz.so.1"));
        assert_eq!(cache.lookup("libz.so.1", 0x0003), Some("/lib/i386-linux-gnu/libz.so.1"));
        assert_eq!(cache.lookup("libz.so.1", 0x0a03), Some("/lib/aarch64-linux-gnu/libz.so.1"));
        assert_eq!(cache.lookup("libz.so.1", 0x0803), None);
        assert_eq!(cache.lookup("libm.so.6", 0x0303), None);
    }

    #[test]
    fn lookup_skips_hwcap_variants() {
        let bytes = build_cache(&[
            (0x0303, "libm.so.6", "/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libm.so.6", 1 << 62),
            (0x0303, "libm.so.6", "/lib/x86_64-linux-gnu/libm.so.6", 0),
        ]);
        let cache = LdCache::parse(&bytes).unwrap();

        assert_eq!(cache.lookup("libm.so.6", 0x0303), Some("/lib/x86_64-linux-gnu/libm.so.6"));
    }

    #[test]
    fn parse_skips_old_format_table() {
        let new_part = build_cache(&[(0x0303, "libc.so.6", "/usr/lib/libc.so.6", 0)]);
        let mut bytes = OLD_MAGIC.to_vec();
        bytes.push(0);
        bytes.extend_from_slice(&1u32.to_ne_bytes());
        bytes.extend_from_slice(&[0; OLD_ENTRY_SIZE]);
        bytes.resize(bytes.len().next_multiple_of(8), 0);
        bytes.extend_from_slice(&new_part);

        let cache = LdCache::parse(&bytes).unwrap();

        assert_eq!(cache.lookup("libc.so.6", 0x0303), Some("/usr/lib/libc.so.6"));
    }

    #[test]
    fn parse_rejects_truncated_table() {
        let mut bytes = build_cache(&[(0x0303, "libc.so.6", "/usr/lib/libc.so.6", 0)]);
        bytes.truncate(NEW_HEADER_SIZE + 10);

        let error = LdCache::parse(&bytes).unwrap_err();

        assert!(error.to_string().contains("past the end"), "{error}");
    }

    #[test]
    fn parse_rejects_unknown_magic() {
        let error = LdCache::parse(b"not a cache file at all, just some text here....").unwrap_err();

        assert!(error.to_string().contains("header"), "{error}");
    }

    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    #[test]
    fn parse_reads_host_cache() {
        let path = Path::new("/etc/ld.so.cache");
        assert!(path.exists(), "`/etc/ld.so.cache` is missing; run `scripts/setup-test-env`");

        let cache = LdCache::load(path).unwrap();

        assert!(cache.lookup("libc.so.6", 0x0303).is_some(), "no x86-64 libc.so.6 in the host cache");
    }
}
