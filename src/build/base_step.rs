//! The base-image step of a build: pull `image.base`, import it into the
//! layout, and merge its config into kuul's settings.

use std::path::Path;

use super::{BuildError, base_pin};
use crate::image::base::manifest::Platform;
use crate::image::base::{self, BASE_DIGEST_ANNOTATION, BASE_NAME_ANNOTATION, BaseImage};
use crate::image::layout::Layout;
use crate::image::{ImageError, ImageSettings};
use crate::registry::MountSource;
use crate::registry::pull::{PullOptions, pull_base};
use crate::report::Reporter;
use crate::spec::Spec;

/// Pulls the base image and imports it into the layout at `layout_dir`, or
/// returns `None` for `scratch`. The layout is created only for a base, so a
/// `scratch` build that fails later leaves no layout behind.
///
/// A tag-only base is pulled at the digest that kuul.lock pins, and a new
/// pin is written as the lock mode allows (see [`super::base_pin`]).
pub(super) fn pull_and_import(
    spec: &Spec,
    job_dir: &Path,
    options: &super::BuildOptions,
    platform: &Platform,
    layout_dir: &Path,
    reporter: &dyn Reporter,
) -> Result<Option<BaseImage>, BuildError> {
    let lock_mode = options.debian.lock_mode;
    if spec.image.base == "scratch" {
        base_pin::check_scratch(job_dir, lock_mode)?;
        return Ok(None);
    }

    // `spec::load` validated the reference.
    let reference = crate::registry::parse_base(&spec.image.base).map_err(crate::registry::pull::PullError::from)?;
    let pull_options = PullOptions {
        insecure_registries: options.insecure_registries.clone(),
        cache_dir: options.debian.cache_dir.clone(),
        ..PullOptions::default()
    };

    // The rest of the build is synchronous, so the pull gets its own runtime.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| ImageError::Write { path: "(tokio runtime)".into(), source })?;
    let to_pull = base_pin::reference_to_pull(
        &spec.image.base,
        &reference,
        job_dir,
        lock_mode,
        &pull_options,
        &runtime,
        reporter,
    )?;
    let mut pulled = runtime.block_on(pull_base(&to_pull, platform, &pull_options, reporter))?;
    pulled.name = spec.image.base.clone();
    base_pin::record_pull(&spec.image.base, &reference, job_dir, lock_mode, &pulled.digest)?;

    reporter.step("import base layers");
    let layout = Layout::open_or_create(layout_dir)?;
    Ok(Some(base::import(&layout, &pulled)?))
}

/// Merges the base's config into `settings` with the precedence that
/// [`crate::image::base::config`] documents, and records the base in the
/// manifest annotations.
pub(super) fn merge_settings(settings: &mut ImageSettings, base: &BaseImage) {
    settings.env = base::config::merge_env(&base.config.env, &settings.env);

    let mut labels = base.config.labels.clone();
    labels.append(&mut settings.labels);
    settings.labels = labels;

    settings.annotations.insert(BASE_NAME_ANNOTATION.to_owned(), base.name.clone());
    settings.annotations.insert(BASE_DIGEST_ANNOTATION.to_owned(), base.digest.clone());
}

/// Returns the base's repository and layer digests, which a push to the same
/// registry can mount instead of uploading.
pub(super) fn mount_source(base: &BaseImage) -> Result<MountSource, BuildError> {
    let reference = crate::registry::parse_base(&base.name).map_err(crate::registry::pull::PullError::from)?;
    Ok(MountSource {
        registry: reference.registry,
        repository: reference.repository,
        digests: base.layers.iter().map(|layer| layer.descriptor.digest.clone()).collect(),
    })
}
