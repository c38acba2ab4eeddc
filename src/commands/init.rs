//! `kuul init`: write a job directory from an embedded template.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, bail};
use include_dir::{Dir, include_dir};

use crate::build::SPEC_FILE;
use crate::cli::InitArgs;

/// The scaffolds under `templates/`, compiled into the binary.
static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// The text in template files that the job name replaces.
const NAME_PLACEHOLDER: &str = "{{name}}";

pub fn run(args: InitArgs) -> anyhow::Result<()> {
    let Some(template) = TEMPLATES.get_dir(args.template.as_str()) else {
        bail!("unknown template `{}`\nhint: choose one of: {}", args.template, template_names().join(", "));
    };

    ensure_empty(&args.dir)?;
    let name = match &args.name {
        Some(name) => name.clone(),
        None => default_name(&args.dir)?,
    };
    check_name(&name, args.name.is_some())?;

    let files = render(template, &name);
    let spec_text = files
        .iter()
        .find(|(path, _)| path == SPEC_FILE)
        .map(|(_, text)| String::from_utf8_lossy(text).into_owned())
        .with_context(|| format!("template `{}` has no {SPEC_FILE}", args.template))?;
    // The name was checked above, so an error here is a broken template.
    crate::spec::parse(&spec_text, &args.dir.join(SPEC_FILE))
        .with_context(|| format!("template `{}` renders an invalid kuul.toml", args.template))?;

    for (relative, bytes) in &files {
        write_file(&args.dir.join(relative), bytes)?;
    }

    eprintln!("wrote {} from template `{}`", args.dir.display(), args.template);
    println!("next: kuul check {0} && kuul build {0}", args.dir.display());
    Ok(())
}

/// Rejects a job name that is not a DNS-1123 label of at most 52
/// characters, suggesting one that is.
fn check_name(name: &str, from_option: bool) -> anyhow::Result<()> {
    let max = crate::spec::MAX_JOB_NAME_LENGTH;
    if crate::spec::names::is_dns1123_label(name) && name.len() <= max {
        return Ok(());
    }

    let source = if from_option { "`--name`" } else { "the directory name" };
    let mut suggestion: String =
        name.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    suggestion.truncate(max);
    let suggestion = suggestion.trim_matches('-');
    let example = if suggestion.is_empty() { "nightly-backup" } else { suggestion };
    bail!(
        "invalid job name `{name}` from {source}: a job name has lowercase letters, digits and `-`, \
         at most {max} characters, and starts and ends with a letter or digit\n\
         hint: pass a valid name, such as `--name {example}`"
    );
}

fn template_names() -> Vec<&'static str> {
    let mut names: Vec<_> =
        TEMPLATES.dirs().filter_map(|dir| dir.path().file_name().and_then(|name| name.to_str())).collect();
    names.sort_unstable();
    names
}

/// Takes the job name from the directory's last component.
fn default_name(dir: &Path) -> anyhow::Result<String> {
    let absolute = std::path::absolute(dir).with_context(|| format!("invalid directory `{}`", dir.display()))?;
    absolute
        .file_name()
        .and_then(|name| name.to_str())
        .map(str::to_owned)
        .with_context(|| format!("cannot take a job name from `{}`\nhint: pass `--name`", dir.display()))
}

/// Returns every file of the template with its path relative to the template
/// directory and the placeholder replaced, sorted by path.
fn render(template: &Dir<'static>, name: &str) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    collect(template, template.path(), name, &mut files);
    files.sort();
    files
}

fn collect(dir: &Dir<'static>, root: &Path, name: &str, files: &mut Vec<(String, Vec<u8>)>) {
    for file in dir.files() {
        let relative = file.path().strip_prefix(root).unwrap_or(file.path());
        let bytes = match std::str::from_utf8(file.contents()) {
            Ok(text) => text.replace(NAME_PLACEHOLDER, name).into_bytes(),
            Err(_) => file.contents().to_vec(),
        };
        files.push((relative.to_string_lossy().into_owned(), bytes));
    }
    for child in dir.dirs() {
        collect(child, root, name, files);
    }
}

fn ensure_empty(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("`{}` exists and is not a directory\nhint: choose a new directory", dir.display());
    }
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!("directory `{}` is not empty\nhint: choose a new directory", dir.display());
            }
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).with_context(|| format!("failed to read `{}`", dir.display())),
    }
}

/// Writes one file; scripts (content starting with `#!`) get mode 0755.
fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("failed to create `{}`", parent.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("failed to write `{}`", path.display()))?;
    let mode = if bytes.starts_with(b"#!") { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("failed to set the mode of `{}`", path.display()))?;
    Ok(())
}
