//! The base image pin in `kuul.lock`. When `image.base` names a tag without
//! a digest, the digest the tag resolved to is recorded in the lock's
//! `[base]` table, and later builds pull that digest until `kuul lock`
//! pins the tag's current one. A base that is `scratch` or carries its own
//! `@sha256:` digest needs no pin.
//!
//! The lock modes follow the Debian packages' rules: an ordinary build
//! writes a missing pin, `--locked` fails whenever the lock would change,
//! and `kuul lock` always resolves the tag again.

use std::path::{Path, PathBuf};

use crate::registry::BaseReference;
use crate::registry::pull::{PullError, PullOptions, resolve_digest};
use crate::report::Reporter;
use crate::sources::debian::lock::{LOCK_FILE, Lock, LockedBase};
use crate::sources::debian::{DebianError, LockMode};

/// A base image pin that does not match kuul.toml or the registry.
#[derive(Debug, thiserror::Error)]
pub enum BasePinError {
    #[error(transparent)]
    Lock(#[from] DebianError),

    #[error(transparent)]
    Pull(#[from] PullError),

    #[error(
        "`{}` pins no digest for base image `{reference}`\nhint: run `kuul lock {}` and commit the file, or build without `--locked`",
        lock_path.display(), job_dir.display()
    )]
    NotPinned { lock_path: PathBuf, job_dir: PathBuf, reference: String },

    #[error(
        "`{}` pins base image `{pinned}`, but `image.base` is `{reference}`\nhint: run `kuul lock {}` to update the lock, or build without `--locked`",
        lock_path.display(), job_dir.display()
    )]
    Stale { lock_path: PathBuf, job_dir: PathBuf, pinned: String, reference: String },

    #[error(
        "base image tag `{reference}` now points to `{current}`, but `{}` pins `{pinned}`\nhint: run `kuul lock {}` to pin the new digest, or build without `--locked` to keep the pinned one",
        lock_path.display(), job_dir.display()
    )]
    Moved { lock_path: PathBuf, job_dir: PathBuf, reference: String, pinned: String, current: String },
}

/// Checks whether `reference` names a tag without a digest, which is the
/// only kind of base reference that kuul.lock pins.
pub fn needs_pin(reference: &BaseReference) -> bool {
    reference.digest.is_none()
}

/// Returns the reference a build pulls for `image.base` (written as
/// `base_text`, parsed as `reference`): the pinned digest when kuul.lock
/// has a pin for this reference, else `reference` itself.
///
/// With [`LockMode::Locked`] the tag is resolved in the registry too, and
/// a missing pin or a tag that moved is an error.
pub fn reference_to_pull(
    base_text: &str,
    reference: &BaseReference,
    job_dir: &Path,
    mode: LockMode,
    pull_options: &PullOptions,
    runtime: &tokio::runtime::Runtime,
    reporter: &dyn Reporter,
) -> Result<BaseReference, BasePinError> {
    let lock_path = job_dir.join(LOCK_FILE);
    let lock = Lock::read(&lock_path)?;
    let pin = lock.as_ref().and_then(|lock| lock.base.as_ref());

    if !needs_pin(reference) {
        if mode == LockMode::Locked
            && let Some(pin) = pin
        {
            return Err(stale(job_dir, pin, base_text));
        }
        return Ok(reference.clone());
    }

    match (mode, lock.as_ref(), pin) {
        (LockMode::Locked, None, _) => Err(DebianError::LockMissing { path: lock_path }.into()),
        (LockMode::Locked, Some(_), None) => {
            Err(BasePinError::NotPinned { lock_path, job_dir: job_dir.to_owned(), reference: base_text.to_owned() })
        }
        (LockMode::Locked, Some(_), Some(pin)) if pin.reference != base_text => Err(stale(job_dir, pin, base_text)),
        (LockMode::Locked, Some(_), Some(pin)) => {
            let current = runtime.block_on(resolve_digest(reference, pull_options, reporter))?;
            if current != pin.digest {
                return Err(BasePinError::Moved {
                    lock_path,
                    job_dir: job_dir.to_owned(),
                    reference: base_text.to_owned(),
                    pinned: pin.digest.clone(),
                    current,
                });
            }
            Ok(with_digest(reference, &pin.digest))
        }
        (LockMode::Update, _, Some(pin)) if pin.reference == base_text => Ok(with_digest(reference, &pin.digest)),
        (LockMode::Update, _, _) => Ok(reference.clone()),
    }
}

/// Brings the lock's `[base]` table in line with a pulled base: records
/// `digest` for a tag-only reference, and removes a pin that no longer
/// applies. Does nothing under [`LockMode::Locked`], because
/// [`reference_to_pull`] has already checked the pin.
pub fn record_pull(
    base_text: &str,
    reference: &BaseReference,
    job_dir: &Path,
    mode: LockMode,
    digest: &str,
) -> Result<(), BasePinError> {
    if mode == LockMode::Locked {
        return Ok(());
    }

    let pin = needs_pin(reference).then(|| LockedBase { reference: base_text.to_owned(), digest: digest.to_owned() });
    write_pin(&job_dir.join(LOCK_FILE), pin)?;
    Ok(())
}

/// Removes the pin of a job whose base is `scratch`. Under
/// [`LockMode::Locked`] a leftover pin is an error instead, because the
/// lock would change.
pub fn check_scratch(job_dir: &Path, mode: LockMode) -> Result<(), BasePinError> {
    let lock_path = job_dir.join(LOCK_FILE);
    if mode == LockMode::Locked {
        let lock = Lock::read(&lock_path)?;
        if let Some(pin) = lock.as_ref().and_then(|lock| lock.base.as_ref()) {
            return Err(stale(job_dir, pin, "scratch"));
        }
        return Ok(());
    }
    write_pin(&lock_path, None)?;
    Ok(())
}

/// Resolves the tag of `image.base` again and writes the pin, or removes
/// the pin when the base needs none (`kuul lock`). Returns the new pin.
pub fn refresh(
    base_text: &str,
    reference: Option<&BaseReference>,
    job_dir: &Path,
    pull_options: &PullOptions,
    reporter: &dyn Reporter,
) -> Result<Option<LockedBase>, BasePinError> {
    let lock_path = job_dir.join(LOCK_FILE);
    let Some(reference) = reference.filter(|reference| needs_pin(reference)) else {
        write_pin(&lock_path, None)?;
        return Ok(None);
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| DebianError::Io { path: "(tokio runtime)".into(), source })?;
    let digest = runtime.block_on(resolve_digest(reference, pull_options, reporter))?;

    let pin = LockedBase { reference: base_text.to_owned(), digest };
    write_pin(&lock_path, Some(pin.clone()))?;
    Ok(Some(pin))
}

/// Sets the lock's `[base]` table to `pin`, keeping the package part.
/// Writes nothing when the table is unchanged, and removes the file when
/// the lock then pins nothing at all.
fn write_pin(lock_path: &Path, pin: Option<LockedBase>) -> Result<(), DebianError> {
    let existing = Lock::read(lock_path)?;
    if existing.as_ref().and_then(|lock| lock.base.as_ref()) == pin.as_ref() {
        return Ok(());
    }

    let lock = match (existing, pin) {
        (Some(mut lock), pin) => {
            lock.base = pin;
            lock
        }
        (None, Some(pin)) => Lock::base_only(pin),
        (None, None) => return Ok(()),
    };

    if lock.is_empty() {
        return std::fs::remove_file(lock_path)
            .map_err(|source| DebianError::Io { path: lock_path.to_owned(), source });
    }
    lock.write(lock_path)
}

fn with_digest(reference: &BaseReference, digest: &str) -> BaseReference {
    BaseReference { digest: Some(digest.to_owned()), ..reference.clone() }
}

fn stale(job_dir: &Path, pin: &LockedBase, reference: &str) -> BasePinError {
    BasePinError::Stale {
        lock_path: job_dir.join(LOCK_FILE),
        job_dir: job_dir.to_owned(),
        pinned: pin.reference.clone(),
        reference: reference.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::debian::lock::LockRequest;

    const DIGEST_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const DIGEST_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const TAGGED: &str = "127.0.0.1:5000/ops/base:12";

    fn reference(text: &str) -> BaseReference {
        crate::registry::parse_base(text).unwrap()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    fn pick(dir: &Path, text: &str, mode: LockMode) -> Result<BaseReference, BasePinError> {
        let options = PullOptions { cache_dir: dir.join("cache"), ..PullOptions::default() };
        reference_to_pull(text, &reference(text), dir, mode, &options, &runtime(), &crate::report::SilentReporter)
    }

    fn package_lock() -> Lock {
        let request = LockRequest {
            packages: vec!["busybox".to_owned()],
            suite: "bookworm".to_owned(),
            components: vec!["main".to_owned()],
            architecture: "amd64".to_owned(),
            installed: Vec::new(),
        };
        Lock::new(request, Vec::new())
    }

    fn pin(digest: &str) -> LockedBase {
        LockedBase { reference: TAGGED.to_owned(), digest: digest.to_owned() }
    }

    #[test]
    fn update_without_lock_pulls_tag() {
        let dir = tempfile::tempdir().unwrap();

        let chosen = pick(dir.path(), TAGGED, LockMode::Update).unwrap();

        assert_eq!(chosen.digest, None);
    }

    #[test]
    fn update_with_pin_pulls_digest() {
        let dir = tempfile::tempdir().unwrap();
        Lock::base_only(pin(DIGEST_A)).write(&dir.path().join(LOCK_FILE)).unwrap();

        let chosen = pick(dir.path(), TAGGED, LockMode::Update).unwrap();

        assert_eq!(chosen.digest.as_deref(), Some(DIGEST_A));
        assert_eq!(chosen.tag.as_deref(), Some("12"));
    }

    #[test]
    fn update_with_other_reference_pulls_tag() {
        let dir = tempfile::tempdir().unwrap();
        let other = LockedBase { reference: "127.0.0.1:5000/ops/base:11".to_owned(), digest: DIGEST_A.to_owned() };
        Lock::base_only(other).write(&dir.path().join(LOCK_FILE)).unwrap();

        let chosen = pick(dir.path(), TAGGED, LockMode::Update).unwrap();

        assert_eq!(chosen.digest, None);
    }

    #[test]
    fn locked_without_lock_fails() {
        let dir = tempfile::tempdir().unwrap();

        let error = pick(dir.path(), TAGGED, LockMode::Locked).unwrap_err();

        assert!(matches!(error, BasePinError::Lock(DebianError::LockMissing { .. })), "{error}");
    }

    #[test]
    fn locked_without_base_pin_fails() {
        let dir = tempfile::tempdir().unwrap();
        package_lock().write(&dir.path().join(LOCK_FILE)).unwrap();

        let error = pick(dir.path(), TAGGED, LockMode::Locked).unwrap_err();

        assert!(matches!(error, BasePinError::NotPinned { .. }), "{error}");
        assert!(error.to_string().contains(&format!("hint: run `kuul lock {}`", dir.path().display())), "{error}");
    }

    #[test]
    fn locked_with_digest_reference_rejects_leftover_pin() {
        let dir = tempfile::tempdir().unwrap();
        Lock::base_only(pin(DIGEST_A)).write(&dir.path().join(LOCK_FILE)).unwrap();

        let error = pick(dir.path(), &format!("127.0.0.1:5000/ops/base@{DIGEST_B}"), LockMode::Locked).unwrap_err();

        assert!(matches!(error, BasePinError::Stale { .. }), "{error}");
    }

    #[test]
    fn digest_reference_needs_no_lock() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("127.0.0.1:5000/ops/base:12@{DIGEST_B}");

        let chosen = pick(dir.path(), &text, LockMode::Locked).unwrap();

        assert_eq!(chosen.digest.as_deref(), Some(DIGEST_B));
    }

    #[test]
    fn record_pull_keeps_packages() {
        let dir = tempfile::tempdir().unwrap();
        let lock_path = dir.path().join(LOCK_FILE);
        package_lock().write(&lock_path).unwrap();

        record_pull(TAGGED, &reference(TAGGED), dir.path(), LockMode::Update, DIGEST_A).unwrap();

        let lock = Lock::read(&lock_path).unwrap().unwrap();
        assert_eq!(lock.base, Some(pin(DIGEST_A)));
        assert_eq!(lock.sets, package_lock().sets);
    }

    #[test]
    fn record_pull_skipped_when_locked() {
        let dir = tempfile::tempdir().unwrap();

        record_pull(TAGGED, &reference(TAGGED), dir.path(), LockMode::Locked, DIGEST_A).unwrap();

        assert!(!dir.path().join(LOCK_FILE).exists());
    }

    #[test]
    fn scratch_removes_base_only_lock() {
        let dir = tempfile::tempdir().unwrap();
        let lock_path = dir.path().join(LOCK_FILE);
        Lock::base_only(pin(DIGEST_A)).write(&lock_path).unwrap();

        check_scratch(dir.path(), LockMode::Update).unwrap();

        assert!(!lock_path.exists());
    }

    #[test]
    fn scratch_keeps_package_part() {
        let dir = tempfile::tempdir().unwrap();
        let lock_path = dir.path().join(LOCK_FILE);
        let mut lock = package_lock();
        lock.base = Some(pin(DIGEST_A));
        lock.write(&lock_path).unwrap();

        check_scratch(dir.path(), LockMode::Update).unwrap();

        assert_eq!(Lock::read(&lock_path).unwrap(), Some(package_lock()));
    }

    #[test]
    fn scratch_with_pin_fails_when_locked() {
        let dir = tempfile::tempdir().unwrap();
        Lock::base_only(pin(DIGEST_A)).write(&dir.path().join(LOCK_FILE)).unwrap();

        let error = check_scratch(dir.path(), LockMode::Locked).unwrap_err();

        assert!(matches!(error, BasePinError::Stale { .. }), "{error}");
        assert!(error.to_string().contains("but `image.base` is `scratch`"), "{error}");
    }
}
