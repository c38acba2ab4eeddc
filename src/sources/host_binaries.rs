//! Host programs with their ELF interpreter and shared-library closure.
//!
//! Libraries are resolved in the order glibc's `ld.so` uses: the DT_RPATH of
//! the loading object and of the objects that loaded it (only when the
//! loading object has no DT_RUNPATH), the loading object's DT_RUNPATH,
//! `/etc/ld.so.cache`, then the default directories. `LD_LIBRARY_PATH` is not
//! used, because the build machine's environment does not describe the
//! container that runs the image.
//!
//! Every path is added as the host has it: each symlink met on the way,
//! such as `/lib` -> `usr/lib`, becomes a symlink entry with the host's
//! target, and the file at the end becomes a file entry.
//!
//! NOTE: libraries loaded with `dlopen` at run time (gconv modules, NSS
//! modules other than `files` and `dns`, plugins) are not in the ELF
//! dynamic section and are not found.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use goblin::elf::Elf;
use goblin::elf::dynamic::DF_1_NODEFLIB;
use goblin::elf::header::{EM_386, EM_AARCH64, EM_ARM, EM_PPC64, EM_RISCV, EM_S390, EM_X86_64};

use super::ld_cache::LdCache;
use super::{Content, Entry, EntryKind, SourceError};

/// The cache that `ldconfig` writes on the build machine.
pub const DEFAULT_LD_CACHE: &str = "/etc/ld.so.cache";

/// The directory where Debian's PostgreSQL packages install their
/// versioned programs.
const POSTGRESQL_LIB_DIR: &str = "/usr/lib/postgresql";

/// The number of symlinks followed in one path before giving up, as Linux
/// does (`MAXSYMLINKS`).
const MAX_SYMLINK_HOPS: usize = 40;

const ELF_MAGIC: &[u8] = b"\x7fELF";

/// Collects each program in `binaries` with its ELF interpreter and the
/// shared libraries it needs, sorted by path and without duplicates.
///
/// A name without `/` is searched on `search_path` (the host `PATH`) as
/// `execvp` does. A name containing `/` is used as it is.
pub fn collect(binaries: &[String], search_path: &OsStr) -> Result<Vec<Entry>, SourceError> {
    collect_with_ld_cache(binaries, search_path, Path::new(DEFAULT_LD_CACHE))
}

/// Like [`collect`], reading the ld.so cache from `ld_cache`. When that file
/// is missing or invalid, only RPATH, RUNPATH and the default directories
/// are searched.
pub fn collect_with_ld_cache(
    binaries: &[String],
    search_path: &OsStr,
    ld_cache: &Path,
) -> Result<Vec<Entry>, SourceError> {
    let cache = match LdCache::load(ld_cache) {
        Ok(cache) => Some(cache),
        Err(error) => {
            tracing::debug!(%error, "searching the default library directories without the ld.so cache");
            None
        }
    };

    let mut entries = BTreeMap::new();
    for name in binaries {
        let program = find_program(name, search_path)?;
        let closure = resolve_closure(&program, cache.as_ref())?;

        for path in closure {
            add_host_path(&path, &mut entries)?;
        }
    }

    Ok(entries.into_values().collect())
}

/// Finds a program the way `execvp` does: a name containing `/` is a path,
/// any other name is looked up in each directory of `search_path`, and the
/// first executable regular file wins.
fn find_program(name: &str, search_path: &OsStr) -> Result<PathBuf, SourceError> {
    if name.contains('/') {
        let path = std::path::absolute(name).map_err(|source| SourceError::io(name, source))?;
        let metadata = fs::metadata(&path).map_err(|source| SourceError::io(&path, source))?;
        if !metadata.is_file() {
            return Err(SourceError::NotRegularFile { path: name.to_string() });
        }
        return Ok(path);
    }

    // An empty PATH element means the current directory to execvp, which is
    // meaningless for an image, so it is skipped.
    for dir in std::env::split_paths(search_path).filter(|dir| !dir.as_os_str().is_empty()) {
        let candidate = dir.join(name);
        let Ok(metadata) = fs::metadata(&candidate) else {
            continue;
        };
        if metadata.is_file() && metadata.permissions().mode() & 0o111 != 0 {
            return std::path::absolute(&candidate).map_err(|source| SourceError::io(&candidate, source));
        }
    }

    Err(SourceError::ProgramNotFound {
        name: name.to_string(),
        search_path: search_path.to_string_lossy().into_owned(),
    })
}

/// The class, byte order and machine of an ELF file. `ld.so` skips a
/// library whose values differ from the program's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Abi {
    is_64: bool,
    big_endian: bool,
    machine: u16,
}

impl Abi {
    /// Reads the ABI from the start of an ELF file, or returns `None` when
    /// the bytes are not an ELF header.
    fn from_header(bytes: &[u8]) -> Option<Abi> {
        if bytes.len() < 20 || !bytes.starts_with(ELF_MAGIC) {
            return None;
        }

        let big_endian = bytes[5] == 2;
        let machine_bytes = [bytes[18], bytes[19]];
        let machine = if big_endian { u16::from_be_bytes(machine_bytes) } else { u16::from_le_bytes(machine_bytes) };

        Some(Abi { is_64: bytes[4] == 2, big_endian, machine })
    }

    /// The Debian multiarch triplet, the `$PLATFORM` value and the ld.so
    /// cache flags for this ABI, or `None` for an ABI missing from the
    /// table below.
    ///
    /// NOTE: 32-bit ARM and RISC-V assume the hard-float ABI, and `$PLATFORM`
    /// is the generic name even where `ld.so` may pick a CPU-specific one.
    fn names(&self) -> Option<AbiNames> {
        let (triplet, platform, cache_flags) = match (self.machine, self.is_64) {
            (EM_X86_64, true) => ("x86_64-linux-gnu", Some("x86_64"), 0x0303),
            (EM_X86_64, false) => ("x86_64-linux-gnux32", Some("x86_64"), 0x0803),
            (EM_386, false) => ("i386-linux-gnu", Some("i686"), 0x0003),
            (EM_AARCH64, true) => ("aarch64-linux-gnu", Some("aarch64"), 0x0a03),
            (EM_ARM, false) => ("arm-linux-gnueabihf", None, 0x0903),
            (EM_PPC64, true) if !self.big_endian => ("powerpc64le-linux-gnu", None, 0x0503),
            (EM_S390, true) => ("s390x-linux-gnu", None, 0x0403),
            (EM_RISCV, true) => ("riscv64-linux-gnu", None, 0x1003),
            _ => return None,
        };

        Some(AbiNames { triplet, platform, cache_flags })
    }

    /// Returns the directories `ld.so` searches last: the multiarch ones, the
    /// `lib64` ones for 64-bit programs, then `/lib` and `/usr/lib`.
    ///
    /// NOTE: Debian's `ld.so` (glibc 2.36) does not search `/lib64` and
    /// `/usr/lib64`. They are here for distributions that install into them.
    fn default_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Some(names) = self.names() {
            dirs.push(PathBuf::from(format!("/lib/{}", names.triplet)));
            dirs.push(PathBuf::from(format!("/usr/lib/{}", names.triplet)));
        }
        if self.is_64 {
            dirs.push(PathBuf::from("/lib64"));
            dirs.push(PathBuf::from("/usr/lib64"));
        }
        dirs.push(PathBuf::from("/lib"));
        dirs.push(PathBuf::from("/usr/lib"));
        dirs
    }
}

struct AbiNames {
    triplet: &'static str,
    platform: Option<&'static str>,
    cache_flags: i32,
}

/// The dynamic-linking facts of one ELF file.
#[derive(Debug)]
struct ElfInfo {
    abi: Abi,
    interpreter: Option<String>,
    needed: Vec<String>,
    /// Empty when the file has a DT_RUNPATH, because `ld.so` then ignores
    /// its DT_RPATH.
    rpath: Vec<String>,
    runpath: Vec<String>,
    soname: Option<String>,
    /// DF_1_NODEFLIB: skip the cache and the default directories.
    no_default_lib: bool,
}

impl ElfInfo {
    fn parse(path: &Path, bytes: &[u8]) -> Result<ElfInfo, SourceError> {
        let elf = Elf::parse(bytes)
            .map_err(|error| SourceError::InvalidElf { path: path.display().to_string(), reason: error.to_string() })?;
        let abi = Abi::from_header(bytes).ok_or_else(|| SourceError::NotElf { path: path.display().to_string() })?;

        let split = |lists: &[&str]| -> Vec<String> {
            lists.iter().flat_map(|list| list.split(':')).map(str::to_string).collect()
        };
        let runpath = split(&elf.runpaths);
        let rpath = if runpath.is_empty() { split(&elf.rpaths) } else { Vec::new() };
        let flags_1 = elf.dynamic.as_ref().map_or(0, |dynamic| dynamic.info.flags_1);

        Ok(ElfInfo {
            abi,
            interpreter: elf.interpreter.map(str::to_string),
            needed: elf.libraries.iter().map(|name| name.to_string()).collect(),
            rpath,
            runpath,
            soname: elf.soname.map(str::to_string),
            no_default_lib: flags_1 & DF_1_NODEFLIB != 0,
        })
    }
}

/// One object in a program's closure.
struct LoadedObject {
    /// The path the object was found at, before resolving symlinks.
    path: PathBuf,
    /// The value of `$ORIGIN` for this object's search paths.
    origin: PathBuf,
    info: ElfInfo,
    /// Index of the object whose DT_NEEDED entry loaded this one. It is
    /// `None` for the program and its interpreter.
    loader: Option<usize>,
}

/// Returns the program, its interpreter and every library in its DT_NEEDED
/// closure, in load order.
///
/// Objects are visited breadth-first, as `ld.so` loads them, so the first
/// object to need a library decides which search path finds it. A name
/// that matches an already loaded object's soname or an earlier DT_NEEDED
/// entry is not searched again.
fn resolve_closure(program: &Path, cache: Option<&LdCache>) -> Result<Vec<PathBuf>, SourceError> {
    let info = read_program(program)?;
    let abi = info.abi;

    // The kernel gives `ld.so` the resolved path of the program, so the
    // program's `$ORIGIN` is the directory of its real file.
    let real_program = fs::canonicalize(program).map_err(|source| SourceError::io(program, source))?;
    let origin = parent_dir(&real_program);

    let interpreter = info.interpreter.clone();
    let mut objects = vec![LoadedObject { path: program.to_path_buf(), origin, info, loader: None }];

    if let Some(interpreter) = interpreter {
        let path = PathBuf::from(&interpreter);
        let info = read_candidate(&path, abi)?.ok_or_else(|| SourceError::LibraryNotFound {
            name: interpreter.clone(),
            needed_by: program.display().to_string(),
        })?;
        objects.push(LoadedObject { origin: parent_dir(&path), path, info, loader: None });
    }

    let mut known_names: HashSet<String> = HashSet::new();
    for object in &objects {
        known_names.extend(object.info.soname.clone());
        known_names.insert(object.path.display().to_string());
    }

    let mut index = 0;
    while index < objects.len() {
        for name in objects[index].info.needed.clone() {
            if known_names.contains(&name) {
                continue;
            }

            let (path, info) =
                search_library(&name, index, &objects, cache)?.ok_or_else(|| SourceError::LibraryNotFound {
                    name: name.clone(),
                    needed_by: objects[index].path.display().to_string(),
                })?;
            known_names.insert(name);

            let path_name = path.display().to_string();
            if !known_names.insert(path_name) {
                continue;
            }
            known_names.extend(info.soname.clone());
            objects.push(LoadedObject { origin: parent_dir(&path), path, info, loader: Some(index) });
        }
        index += 1;
    }

    Ok(objects.into_iter().map(|object| object.path).collect())
}

/// Reads the program itself. A file that is not ELF gets an error naming
/// what it is and, for a script, the program that really runs.
fn read_program(path: &Path) -> Result<ElfInfo, SourceError> {
    let bytes = fs::read(path).map_err(|source| SourceError::io(path, source))?;

    if !bytes.starts_with(ELF_MAGIC) {
        return Err(non_elf_error(path, &bytes));
    }

    ElfInfo::parse(path, &bytes)
}

/// Searches for the library `name` needed by `objects[loader]`.
fn search_library(
    name: &str,
    loader: usize,
    objects: &[LoadedObject],
    cache: Option<&LdCache>,
) -> Result<Option<(PathBuf, ElfInfo)>, SourceError> {
    let loading = &objects[loader];
    let abi = objects[0].info.abi;

    if name.contains('/') {
        let Some(expanded) = expand_tokens(name, &loading.origin, abi) else {
            return Ok(None);
        };
        let path = PathBuf::from(expanded);
        return Ok(read_candidate(&path, abi)?.map(|info| (path, info)));
    }

    let mut dirs = Vec::new();
    if loading.info.runpath.is_empty() {
        let mut current = Some(loader);
        while let Some(index) = current {
            dirs.extend(expand_search_path(&objects[index].info.rpath, &objects[index].origin, abi));
            current = objects[index].loader;
        }
    }
    dirs.extend(expand_search_path(&loading.info.runpath, &loading.origin, abi));

    for dir in dirs {
        let path = dir.join(name);
        if let Some(info) = read_candidate(&path, abi)? {
            return Ok(Some((path, info)));
        }
    }

    if loading.info.no_default_lib {
        return Ok(None);
    }

    let cached = cache.zip(abi.names()).and_then(|(cache, names)| cache.lookup(name, names.cache_flags));
    if let Some(cached) = cached {
        let path = PathBuf::from(cached);
        if let Some(info) = read_candidate(&path, abi)? {
            return Ok(Some((path, info)));
        }
    }

    for dir in abi.default_dirs() {
        let path = dir.join(name);
        if let Some(info) = read_candidate(&path, abi)? {
            return Ok(Some((path, info)));
        }
    }

    Ok(None)
}

/// Reads a library candidate. Returns `None`, so the search goes on, when
/// the file cannot be opened, is not a regular file, or is an ELF file of
/// another class, byte order or machine.
fn read_candidate(path: &Path, abi: Abi) -> Result<Option<ElfInfo>, SourceError> {
    let Ok(mut file) = fs::File::open(path) else {
        return Ok(None);
    };
    if !file.metadata().is_ok_and(|metadata| metadata.is_file()) {
        return Ok(None);
    }

    let mut header = [0u8; 20];
    if file.read_exact(&mut header).is_err() || Abi::from_header(&header) != Some(abi) {
        return Ok(None);
    }

    let bytes = fs::read(path).map_err(|source| SourceError::io(path, source))?;
    ElfInfo::parse(path, &bytes).map(Some)
}

/// Expands each element of an RPATH or RUNPATH list. Elements that are
/// empty, stay relative or contain a token that cannot be expanded are
/// dropped, because a relative element would depend on the working
/// directory of the job.
fn expand_search_path(elements: &[String], origin: &Path, abi: Abi) -> Vec<PathBuf> {
    elements
        .iter()
        .filter_map(|element| expand_tokens(element, origin, abi))
        .filter(|expanded| expanded.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

/// Expands `$ORIGIN`, `$LIB` and `$PLATFORM` (also written `${...}`).
/// Returns `None` when a token has no known value for `abi`. Other `$` text
/// is kept as it is, as `ld.so` does.
///
/// `$LIB` is `lib/<multiarch triplet>`, the value Debian's `ld.so` uses
/// (checked with `LD_DEBUG=libs` on Debian 12, glibc 2.36).
fn expand_tokens(text: &str, origin: &Path, abi: Abi) -> Option<String> {
    let names = abi.names();
    let mut expanded = String::new();
    let mut rest = text;

    while let Some(dollar) = rest.find('$') {
        expanded.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];

        let (token, length) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            (&after[..end], end)
        };

        let value = match token {
            "ORIGIN" => Some(origin.to_str()?.to_string()),
            "LIB" => Some(format!("lib/{}", names.as_ref()?.triplet)),
            "PLATFORM" => Some(names.as_ref()?.platform?.to_string()),
            _ => None,
        };
        match value {
            Some(value) => {
                expanded.push_str(&value);
                rest = &after[length..];
            }
            None => {
                expanded.push('$');
                rest = after;
            }
        }
    }

    expanded.push_str(rest);
    Some(expanded)
}

fn parent_dir(path: &Path) -> PathBuf {
    path.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
}

/// Builds the error for a program that is not an ELF file.
fn non_elf_error(path: &Path, bytes: &[u8]) -> SourceError {
    let path_name = path.display().to_string();
    let Some(script) = bytes.strip_prefix(b"#!") else {
        return SourceError::NotElf { path: path_name };
    };

    let first_line = script.split(|&byte| byte == b'\n').next().unwrap_or_default();
    let interpreter = String::from_utf8_lossy(first_line).trim().to_string();

    let hint = if is_pg_wrapper(path, bytes) {
        pg_wrapper_hint(path)
    } else {
        let program = interpreter_program(&interpreter);
        format!("list `{program}` in `image.binaries` and put the script in the job directory")
    };

    SourceError::Script { path: path_name, interpreter, hint }
}

/// Returns the program a `#!` line runs: the first word, or the word after
/// `env` for lines such as `/usr/bin/env python3`.
fn interpreter_program(interpreter: &str) -> String {
    let mut words = interpreter.split_whitespace();
    let first = words.next().unwrap_or_default();

    if first.rsplit('/').next() == Some("env")
        && let Some(program) = words.find(|word| !word.starts_with('-'))
    {
        return program.to_string();
    }
    first.to_string()
}

/// Tells whether `path` is Debian's `pg_wrapper` (from
/// postgresql-client-common), the Perl script behind `/usr/bin/pg_dump`,
/// `/usr/bin/psql` and the other client commands.
fn is_pg_wrapper(path: &Path, bytes: &[u8]) -> bool {
    let mentions_wrapper = bytes.windows(b"pg_wrapper".len()).any(|window| window == b"pg_wrapper");
    let links_to_wrapper = fs::read_link(path).is_ok_and(|target| target.ends_with("postgresql-common/pg_wrapper"));

    mentions_wrapper || links_to_wrapper
}

fn pg_wrapper_hint(path: &Path) -> String {
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();

    match newest_postgresql_program(Path::new(POSTGRESQL_LIB_DIR), &name) {
        Some(real) => format!(
            "`{}` is Debian's pg_wrapper, which picks a PostgreSQL version at run time, so list `{}` in `image.binaries` instead",
            path.display(),
            real.display()
        ),
        None => format!(
            "`{}` is Debian's pg_wrapper, so install a PostgreSQL client package and list `{POSTGRESQL_LIB_DIR}/<version>/bin/{name}` in `image.binaries`",
            path.display()
        ),
    }
}

/// Returns `<lib_dir>/<version>/bin/<name>` for the highest version that
/// has the program, comparing versions such as `9.6` and `15` numerically.
fn newest_postgresql_program(lib_dir: &Path, name: &str) -> Option<PathBuf> {
    let versions = fs::read_dir(lib_dir).ok()?;

    versions
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version: Vec<u32> =
                entry.file_name().to_str()?.split('.').map(str::parse).collect::<Result<_, _>>().ok()?;
            let program = entry.path().join("bin").join(name);
            program.is_file().then_some((version, program))
        })
        .max_by(|left, right| left.0.cmp(&right.0))
        .map(|(_, program)| program)
}

/// Adds `path` as the host has it: every symlink met while resolving it
/// becomes a symlink entry with the host's target, and the regular file at
/// the end becomes a root-owned file entry without setuid and setgid bits.
/// Directories on the way get no entry, because the image module adds
/// missing parents.
fn add_host_path(path: &Path, entries: &mut BTreeMap<String, Entry>) -> Result<(), SourceError> {
    let text = utf8_path(path)?;
    let mut remaining: Vec<String> = components(text).rev().map(str::to_string).collect();
    let mut resolved: Vec<String> = Vec::new();
    let mut hops = 0;

    while let Some(component) = remaining.pop() {
        match component.as_str() {
            "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }

        let image_path = format!("/{}", resolved.iter().chain([&component]).cloned().collect::<Vec<_>>().join("/"));
        let metadata = fs::symlink_metadata(&image_path).map_err(|source| SourceError::io(&image_path, source))?;

        if metadata.file_type().is_symlink() {
            hops += 1;
            if hops > MAX_SYMLINK_HOPS {
                return Err(SourceError::SymlinkLoop { path: text.to_string() });
            }

            let target_path = fs::read_link(&image_path).map_err(|source| SourceError::io(&image_path, source))?;
            let target = utf8_path(&target_path)?.to_string();
            if target.starts_with('/') {
                resolved.clear();
            }
            remaining.extend(components(&target).rev().map(str::to_string));
            entries.entry(image_path.clone()).or_insert_with(|| Entry::symlink(image_path, target));
            continue;
        }

        if !remaining.is_empty() {
            resolved.push(component);
            continue;
        }

        if !metadata.is_file() {
            return Err(SourceError::NotRegularFile { path: image_path });
        }
        let mode = metadata.permissions().mode() & 0o7777 & !0o6000;
        entries.entry(image_path.clone()).or_insert_with(|| Entry {
            path: image_path.clone(),
            kind: EntryKind::File { content: Content::Host(PathBuf::from(&image_path)), size: metadata.len() },
            mode,
            uid: 0,
            gid: 0,
        });
    }

    Ok(())
}

fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|component| !component.is_empty())
}

fn utf8_path(path: &Path) -> Result<&str, SourceError> {
    path.to_str().ok_or_else(|| SourceError::NonUtf8Path { path: path.to_string_lossy().into_owned() })
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::sources::ld_cache::build_cache;

    const HOST_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
    const SETUP_HINT: &str = "run `scripts/setup-test-env`";

    fn require(path: &str) {
        assert!(Path::new(path).exists(), "`{path}` is missing; {SETUP_HINT}");
    }

    fn find<'a>(entries: &'a [Entry], path: &str) -> &'a Entry {
        entries
            .iter()
            .find(|entry| entry.path == path)
            .unwrap_or_else(|| panic!("no entry `{path}` in {:#?}", paths(entries)))
    }

    fn paths(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|entry| entry.path.as_str()).collect()
    }

    fn symlink_target(entry: &Entry) -> &str {
        match &entry.kind {
            EntryKind::Symlink { target } => target,
            other => panic!("`{}` is not a symlink: {other:?}", entry.path),
        }
    }

    fn is_file(entry: &Entry) -> bool {
        matches!(entry.kind, EntryKind::File { .. })
    }

    /// Returns the canonical paths of the libraries that the real `ld.so`
    /// loads for `program`, as `ldd` lists them.
    fn ldd_libraries(program: &str) -> Vec<PathBuf> {
        let output = Command::new("ldd").arg(program).output().expect("ldd runs");
        assert!(output.status.success(), "ldd {program} failed");

        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .filter_map(|line| line.split("=> ").nth(1))
            .filter_map(|rest| rest.split(' ').next())
            .map(|path| fs::canonicalize(path).unwrap())
            .collect()
    }

    /// Returns the canonical host paths of every file entry.
    fn real_files(entries: &[Entry]) -> HashSet<PathBuf> {
        entries
            .iter()
            .filter_map(|entry| match &entry.kind {
                EntryKind::File { content: Content::Host(path), .. } => Some(fs::canonicalize(path).unwrap()),
                _ => None,
            })
            .collect()
    }

    fn gcc(args: &[&str], dir: &Path) {
        let status = Command::new("gcc")
            .args(args)
            .current_dir(dir)
            .status()
            .unwrap_or_else(|error| panic!("gcc failed to start: {error}; {SETUP_HINT}"));
        assert!(status.success(), "gcc {args:?} failed");
    }

    /// Builds `bin/prog` needing `libouter.so` in `lib/`, which needs
    /// `libinner.so` in `lib/`, with `bin/prog` carrying
    /// `$ORIGIN/../lib` as RUNPATH or, with `new_dtags` false, as RPATH.
    fn build_origin_layout(dir: &Path, new_dtags: bool) {
        fs::create_dir_all(dir.join("lib")).unwrap();
        fs::create_dir_all(dir.join("bin")).unwrap();
        fs::write(dir.join("inner.c"), "int inner(void) { return 1; }\n").unwrap();
        fs::write(dir.join("outer.c"), "int inner(void);\nint outer(void) { return inner(); }\n").unwrap();
        fs::write(dir.join("prog.c"), "int outer(void);\nint main(void) { return outer(); }\n").unwrap();

        gcc(&["-shared", "-fPIC", "-o", "lib/libinner.so", "inner.c"], dir);
        gcc(&["-shared", "-fPIC", "-o", "lib/libouter.so", "outer.c", "-Llib", "-linner"], dir);
        let dtags = if new_dtags { "-Wl,--enable-new-dtags" } else { "-Wl,--disable-new-dtags" };
        gcc(
            &[
                "-o",
                "bin/prog",
                "prog.c",
                "-Llib",
                "-louter",
                "-Wl,-rpath-link,lib",
                "-Wl,-rpath,$ORIGIN/../lib",
                dtags,
            ],
            dir,
        );
    }

    #[test]
    fn busybox_includes_interpreter_chain() {
        require("/usr/bin/busybox");

        let entries = collect(&["busybox".to_string()], OsStr::new(HOST_PATH)).unwrap();

        assert!(is_file(find(&entries, "/usr/bin/busybox")));
        assert_eq!(symlink_target(find(&entries, "/lib64")), "usr/lib64");
        assert_eq!(
            symlink_target(find(&entries, "/usr/lib64/ld-linux-x86-64.so.2")),
            "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
        );
        assert_eq!(symlink_target(find(&entries, "/lib")), "usr/lib");
        assert!(is_file(find(&entries, "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")));
        assert!(is_file(find(&entries, "/usr/lib/x86_64-linux-gnu/libc.so.6")));
    }

    #[test]
    fn busybox_matches_ldd() {
        require("/usr/bin/busybox");

        let entries = collect(&["busybox".to_string()], OsStr::new(HOST_PATH)).unwrap();
        let files = real_files(&entries);

        for library in ldd_libraries("/usr/bin/busybox") {
            assert!(files.contains(&library), "`{}` missing from {files:#?}", library.display());
        }
    }

    #[test]
    fn entries_sorted_and_deduplicated() {
        require("/usr/bin/busybox");

        let once = collect(&["busybox".to_string()], OsStr::new(HOST_PATH)).unwrap();
        let twice = collect(&["busybox".to_string(), "/usr/bin/busybox".to_string()], OsStr::new(HOST_PATH)).unwrap();

        assert_eq!(once, twice);
        assert!(paths(&once).is_sorted(), "{:#?}", paths(&once));
    }

    #[test]
    fn entries_are_root_owned() {
        require("/usr/bin/busybox");

        let entries = collect(&["busybox".to_string()], OsStr::new(HOST_PATH)).unwrap();

        for entry in &entries {
            assert_eq!((entry.uid, entry.gid), (0, 0), "`{}`", entry.path);
        }
    }

    #[test]
    fn pg_dump_includes_libpq_closure() {
        require("/usr/lib/postgresql/15/bin/pg_dump");

        let entries = collect(&["/usr/lib/postgresql/15/bin/pg_dump".to_string()], OsStr::new(HOST_PATH)).unwrap();
        let files = real_files(&entries);

        assert!(is_file(find(&entries, "/usr/lib/postgresql/15/bin/pg_dump")));
        assert_eq!(symlink_target(find(&entries, "/usr/lib/x86_64-linux-gnu/libpq.so.5")), "libpq.so.5.15");
        for library in ldd_libraries("/usr/lib/postgresql/15/bin/pg_dump") {
            assert!(files.contains(&library), "`{}` missing from {files:#?}", library.display());
        }
    }

    #[test]
    fn pg_wrapper_names_real_binary() {
        require("/usr/bin/pg_dump");
        require("/usr/lib/postgresql/15/bin/pg_dump");

        let error = collect(&["pg_dump".to_string()], OsStr::new(HOST_PATH)).unwrap_err();
        let message = error.to_string();

        assert!(matches!(error, SourceError::Script { .. }), "{message}");
        assert!(message.contains("/usr/lib/postgresql/15/bin/pg_dump"), "{message}");
        assert!(message.contains("pg_wrapper"), "{message}");
    }

    #[test]
    fn shell_script_rejected_as_script() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("backup.sh");
        fs::write(&script, "#!/bin/sh\necho backup\n").unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();

        let error = collect(&["backup.sh".to_string()], dir.path().as_os_str()).unwrap_err();
        let message = error.to_string();

        assert!(message.contains("is a script run by `/bin/sh`"), "{message}");
        assert!(message.contains("hint: list `/bin/sh` in `image.binaries`"), "{message}");
    }

    #[test]
    fn text_file_rejected_as_not_elf() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("notes");
        fs::write(&file, "plain text\n").unwrap();

        let error = collect(&[file.display().to_string()], OsStr::new(HOST_PATH)).unwrap_err();

        assert!(matches!(error, SourceError::NotElf { .. }), "{error}");
    }

    #[test]
    fn missing_program_names_path() {
        let error = collect(&["kuul-no-such-program".to_string()], OsStr::new(HOST_PATH)).unwrap_err();
        let message = error.to_string();

        assert!(message.contains("`kuul-no-such-program`"), "{message}");
        assert!(message.contains(HOST_PATH), "{message}");
    }

    #[test]
    fn origin_runpath_finds_direct_library() {
        let dir = tempfile::tempdir().unwrap();
        build_origin_layout(dir.path(), true);
        fs::write(dir.path().join("prog.c"), "int inner(void);\nint main(void) { return inner(); }\n").unwrap();
        gcc(
            &["-o", "bin/direct", "prog.c", "-Llib", "-linner", "-Wl,-rpath,$ORIGIN/../lib", "-Wl,--enable-new-dtags"],
            dir.path(),
        );
        let program = dir.path().join("bin/direct").display().to_string();

        let entries = collect(&[program], OsStr::new(HOST_PATH)).unwrap();

        let inner = fs::canonicalize(dir.path().join("lib/libinner.so")).unwrap();
        assert!(real_files(&entries).contains(&inner), "{:#?}", paths(&entries));
    }

    #[test]
    fn runpath_not_inherited_by_libraries() {
        let dir = tempfile::tempdir().unwrap();
        build_origin_layout(dir.path(), true);
        let prog = dir.path().join("bin/prog").display().to_string();

        let error = collect(&[prog], OsStr::new(HOST_PATH)).unwrap_err();

        // RUNPATH applies only to the program's own DT_NEEDED entries, so
        // libouter.so cannot find libinner.so. The real ld.so fails the same
        // way when it runs bin/prog.
        let message = error.to_string();
        assert!(message.contains("`libinner.so`"), "{message}");
        assert!(message.contains("lib/libouter.so"), "{message}");
    }

    #[test]
    fn origin_rpath_inherited_by_libraries() {
        let dir = tempfile::tempdir().unwrap();
        build_origin_layout(dir.path(), false);
        let prog = dir.path().join("bin/prog").display().to_string();

        let entries = collect(&[prog], OsStr::new(HOST_PATH)).unwrap();

        let lib_dir = fs::canonicalize(dir.path()).unwrap().join("lib");
        let files = real_files(&entries);
        assert!(files.contains(&lib_dir.join("libouter.so")), "{files:#?}");
        assert!(files.contains(&lib_dir.join("libinner.so")), "{files:#?}");
    }

    #[test]
    fn ld_cache_parameter_is_used() {
        let dir = tempfile::tempdir().unwrap();
        build_origin_layout(dir.path(), true);
        let lib_dir = dir.path().join("lib");
        let inner = lib_dir.join("libinner.so").display().to_string();
        let cache = dir.path().join("ld.so.cache");
        fs::write(&cache, build_cache(&[(0x0303, "libinner.so", &inner, 0)])).unwrap();
        let prog = dir.path().join("bin/prog").display().to_string();

        let entries = collect_with_ld_cache(&[prog], OsStr::new(HOST_PATH), &cache).unwrap();

        assert!(real_files(&entries).contains(&fs::canonicalize(&inner).unwrap()));
    }

    #[test]
    fn missing_ld_cache_uses_default_dirs() {
        require("/usr/bin/busybox");

        let entries = collect_with_ld_cache(
            &["busybox".to_string()],
            OsStr::new(HOST_PATH),
            Path::new("/nonexistent/ld.so.cache"),
        )
        .unwrap();

        assert!(is_file(find(&entries, "/usr/lib/x86_64-linux-gnu/libc.so.6")));
    }

    #[test]
    fn setuid_bits_stripped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tool");
        fs::write(&file, "x").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o6755)).unwrap();
        let mut entries = BTreeMap::new();

        add_host_path(&file, &mut entries).unwrap();

        let entry = entries.values().find(|entry| is_file(entry)).unwrap();
        assert_eq!(entry.mode, 0o755);
    }

    #[test]
    fn expand_tokens_replaces_known_tokens() {
        let abi = Abi { is_64: true, big_endian: false, machine: EM_X86_64 };
        let origin = Path::new("/opt/app/bin");

        assert_eq!(expand_tokens("$ORIGIN/../lib", origin, abi).unwrap(), "/opt/app/bin/../lib");
        assert_eq!(expand_tokens("${ORIGIN}/lib", origin, abi).unwrap(), "/opt/app/bin/lib");
        assert_eq!(expand_tokens("/usr/$LIB", origin, abi).unwrap(), "/usr/lib/x86_64-linux-gnu");
        assert_eq!(expand_tokens("/opt/${PLATFORM}", origin, abi).unwrap(), "/opt/x86_64");
        assert_eq!(expand_tokens("/opt/$OTHER/x", origin, abi).unwrap(), "/opt/$OTHER/x");
    }

    #[test]
    fn expand_tokens_drops_unknown_platform() {
        let abi = Abi { is_64: true, big_endian: false, machine: EM_RISCV };

        assert_eq!(expand_tokens("/opt/$PLATFORM", Path::new("/"), abi), None);
    }

    #[test]
    fn interpreter_program_skips_env() {
        assert_eq!(interpreter_program("/usr/bin/env python3"), "python3");
        assert_eq!(interpreter_program("/usr/bin/env -S python3 -u"), "python3");
        assert_eq!(interpreter_program("/bin/bash -e"), "/bin/bash");
    }

    #[test]
    fn newest_postgresql_program_compares_numerically() {
        let dir = tempfile::tempdir().unwrap();
        for version in ["9.6", "15", "16"] {
            fs::create_dir_all(dir.path().join(version).join("bin")).unwrap();
        }
        fs::write(dir.path().join("9.6/bin/pg_dump"), "").unwrap();
        fs::write(dir.path().join("15/bin/pg_dump"), "").unwrap();

        let newest = newest_postgresql_program(dir.path(), "pg_dump");

        assert_eq!(newest, Some(dir.path().join("15/bin/pg_dump")));
    }
}
