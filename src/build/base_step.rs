//! The base-image step of a build: pull `image.base`, import it into the
//! layout, and merge its config into kuul's settings.

use super::BuildError;
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
pub(super) fn pull_and_import(
    spec: &Spec,
    options: &super::BuildOptions,
    platform: &Platform,
    layout_dir: &std::path::Path,
    reporter: &dyn Reporter,
) -> Result<Option<BaseImage>, BuildError> {
    if spec.image.base == "scratch" {
        return Ok(None);
    }

    // `spec::load` validated the reference.
    let reference = crate::registry::parse_base(&spec.image.base).map_err(crate::registry::pull::PullError::from)?;
    // NOTE: `--insecure-registry` does not reach this step yet, so only a
    // loopback base registry can be plain HTTP.
    let pull_options = PullOptions { cache_dir: options.debian.cache_dir.clone(), ..PullOptions::default() };

    // The rest of the build is synchronous, so the pull gets its own runtime.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| ImageError::Write { path: "(tokio runtime)".into(), source })?;
    let pulled = runtime.block_on(pull_base(&reference, platform, &pull_options, reporter))?;

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
