//! Sources of file entries for image layers. Each kind of dependency is its
//! own module and produces a list of [`Entry`] values; the `image` module
//! turns a list into a tar layer.

pub mod debian;
pub mod host_binaries;
pub mod job_files;
pub mod ld_cache;
pub mod system_files;

use std::path::PathBuf;

/// An error from collecting the entries of a source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("failed to read `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("path `{path}` has a name that is not valid UTF-8\nhint: rename it, because image paths must be UTF-8")]
    NonUtf8Path { path: String },

    #[error(
        "workdir `{workdir}` is not a normalized absolute path\nhint: set `image.workdir` to an absolute path without `.` or `..`, such as `/job`"
    )]
    InvalidWorkdir { workdir: String },

    #[error(
        "job file `{path}` not found in the job directory\nhint: paths in `image.files` are relative to the directory that contains kuul.toml"
    )]
    JobFileNotFound { path: String },

    #[error(
        "job file `{path}` leads to `{target}`, outside the job directory\nhint: move the file into the job directory, or make the link point inside it"
    )]
    OutsideJobDir { path: String, target: String },

    #[error(
        "symlink `{path}` has the absolute target `{target}`, which does not exist in the image\nhint: replace it with a relative symlink that stays inside the job directory"
    )]
    AbsoluteSymlink { path: String, target: String },

    #[error(
        "`{path}` is a {kind}, which cannot be stored in an image layer\nhint: remove it from the job directory or list only the files you need in `image.files`"
    )]
    UnsupportedFileType { path: String, kind: &'static str },

    #[error("too many levels of symbolic links at `{path}`")]
    SymlinkLoop { path: String },

    #[error(
        "program `{name}` not found on PATH `{search_path}`\nhint: install it on the build machine, or give its absolute path in `image.binaries`"
    )]
    ProgramNotFound { name: String, search_path: String },

    #[error("`{path}` is not a regular file\nhint: `image.binaries` takes programs, not directories or devices")]
    NotRegularFile { path: String },

    #[error("`{path}` is a script run by `{interpreter}`, not an ELF executable\nhint: {hint}")]
    Script { path: String, interpreter: String, hint: String },

    #[error(
        "`{path}` is not an ELF executable\nhint: `image.binaries` takes compiled programs, so put other files in the job directory"
    )]
    NotElf { path: String },

    #[error("failed to parse ELF file `{path}`: {reason}")]
    InvalidElf { path: String, reason: String },

    #[error(
        "shared library `{name}` needed by `{needed_by}` not found\nhint: install the package that provides it on the build machine. kuul searches RPATH, RUNPATH, /etc/ld.so.cache and the default library directories, but not LD_LIBRARY_PATH"
    )]
    LibraryNotFound { name: String, needed_by: String },

    #[error(transparent)]
    Debian(Box<debian::DebianError>),
}

impl From<debian::DebianError> for SourceError {
    fn from(error: debian::DebianError) -> Self {
        SourceError::Debian(Box::new(error))
    }
}

impl SourceError {
    fn io(path: impl Into<PathBuf>, source: std::io::Error) -> SourceError {
        SourceError::Io { path: path.into(), source }
    }
}

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

/// The kind of an [`Entry`] and the source of its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Directory,
    /// A regular file whose bytes are read when the layer is written, so
    /// large files are streamed and never held in memory.
    File {
        content: Content,
        size: u64,
    },
    Symlink {
        target: String,
    },
    /// A hard link to another path in the same layer.
    Hardlink {
        target: String,
    },
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
    /// Creates a root-owned directory with mode 0755.
    pub fn directory(path: impl Into<String>) -> Entry {
        Entry { path: path.into(), kind: EntryKind::Directory, mode: 0o755, uid: 0, gid: 0 }
    }

    /// Creates a root-owned symbolic link.
    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> Entry {
        Entry { path: path.into(), kind: EntryKind::Symlink { target: target.into() }, mode: 0o777, uid: 0, gid: 0 }
    }

    /// Creates a root-owned regular file with generated content.
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
