//! Sources of file entries for image layers. Each kind of dependency is its
//! own module and produces a list of [`Entry`] values; the `image` module
//! turns a list into a tar layer.

pub mod host_binaries;
pub mod job_files;
pub mod system_files;

use std::path::PathBuf;

/// One filesystem object to place in an image layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Absolute path inside the image, such as `/usr/bin/busybox`: starts
    /// with `/`, has no `.` or `..` components, no trailing `/`.
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits, including setuid, setgid and sticky (`0o7777` mask).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// What an [`Entry`] is and where its content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Directory,
    /// A regular file whose bytes are read when the layer is written, so
    /// large files are streamed and never held in memory.
    File { content: Content, size: u64 },
    Symlink { target: String },
    /// A hard link to another path in the same layer.
    Hardlink { target: String },
}

/// The bytes of a regular file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A file on the build machine, read at layer-writing time.
    Host(PathBuf),
    /// Bytes that kuul generated, such as `/etc/passwd`.
    Inline(Vec<u8>),
}

impl Entry {
    /// A root-owned directory with mode 0755.
    pub fn directory(path: impl Into<String>) -> Entry {
        Entry { path: path.into(), kind: EntryKind::Directory, mode: 0o755, uid: 0, gid: 0 }
    }

    /// A root-owned symbolic link.
    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::Symlink { target: target.into() },
            mode: 0o777,
            uid: 0,
            gid: 0,
        }
    }

    /// A root-owned regular file with generated content.
    pub fn inline_file(path: impl Into<String>, bytes: Vec<u8>, mode: u32) -> Entry {
        let size = bytes.len() as u64;
        Entry {
            path: path.into(),
            kind: EntryKind::File { content: Content::Inline(bytes), size },
            mode,
            uid: 0,
            gid: 0,
        }
    }
}

/// The entries of one image layer, with a short description that goes into
/// the image history (`job files`, `host binaries`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerContent {
    pub description: String,
    pub entries: Vec<Entry>,
}
