//! Dependency resolution for a fresh install, following apt's defaults.
//! Each package name has one candidate (its highest version). Pre-Depends
//! and Depends are followed with their version constraints and
//! alternatives. Provides (versioned ones included) satisfy dependencies on
//! virtual packages, and Recommends and Suggests are ignored. Essential
//! packages are installed only when something depends on them. Conflicts
//! and Breaks between chosen packages fail the resolution instead of
//! making it search for another combination.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::control::{ArchQualifier, Relation, format_group};
use super::index::{MultiArch, Package};

/// A resolution failure, with the chain of packages that led there written
/// as `a -> b (>= 1) -> c`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "package `{name}` not found for architecture `{architecture}`\nhint: check the name with `apt-cache policy {name}`, and that `[debian]` names the suite and components that contain it"
    )]
    NotFound { name: String, architecture: String },

    #[error(
        "`{name}` is a virtual package provided by {providers}\nhint: list one of the providers in `image.packages`"
    )]
    Virtual { name: String, providers: String },

    #[error(
        "unsatisfiable dependency `{dependency}` of `{package}`\n  chain: {chain}\nhint: no package in the repository satisfies it; check the suite and components in `[debian]`"
    )]
    Unsatisfiable { package: String, dependency: String, chain: String },

    /// `relation` is the field and its entry, such as ``breaks `b (<< 2)` ``;
    /// `chains` has one `chain:` line for each of the two packages.
    #[error(
        "`{package}` {relation}, but `{other}` is chosen as well\n{chains}\nhint: remove one of the requested packages that pulls them in"
    )]
    Conflict { package: String, other: String, relation: String, chains: String },
}

/// The packages of one architecture (plus `all`) with their candidates and
/// the providers of each virtual name.
pub struct Universe<'a> {
    packages: &'a [Package],
    architecture: String,
    /// Index of the candidate (highest version) of each package name.
    candidates: HashMap<&'a str, usize>,
    /// Candidates that list a name in `Provides`, with the provided version.
    providers: HashMap<&'a str, Vec<(usize, Option<&'a debversion::Version>)>>,
}

impl<'a> Universe<'a> {
    /// Indexes `packages` for `architecture`; packages of other
    /// architectures are left out, because kuul installs no foreign ones.
    pub fn new(packages: &'a [Package], architecture: &str) -> Universe<'a> {
        let mut candidates: HashMap<&str, usize> = HashMap::with_capacity(packages.len());
        for (index, package) in packages.iter().enumerate() {
            if package.architecture != architecture && package.architecture != "all" {
                continue;
            }
            let better = match candidates.get(package.name.as_str()) {
                Some(&current) => package.version > packages[current].version,
                None => true,
            };
            if better {
                candidates.insert(&package.name, index);
            }
        }

        let mut providers: HashMap<&str, Vec<(usize, Option<&debversion::Version>)>> = HashMap::new();
        for &index in candidates.values() {
            for group in &packages[index].provides {
                for provided in group {
                    let version = provided.constraint.as_ref().map(|(_, version)| version);
                    providers.entry(&provided.name).or_default().push((index, version));
                }
            }
        }
        for list in providers.values_mut() {
            list.sort_by(|a, b| packages[a.0].name.cmp(&packages[b.0].name));
        }

        Universe { packages, architecture: architecture.to_owned(), candidates, providers }
    }

    pub fn package(&self, index: usize) -> &'a Package {
        &self.packages[index]
    }

    /// Reports whether the candidate at `index` satisfies `relation`,
    /// directly or through its Provides.
    fn satisfies(&self, index: usize, relation: &Relation) -> bool {
        self.package_satisfies(&self.packages[index], relation)
    }

    /// Reports whether `package` (a candidate or an installed package)
    /// satisfies `relation`, directly or through its Provides.
    fn package_satisfies(&self, package: &Package, relation: &Relation) -> bool {
        if !self.architecture_matches(package, &relation.qualifier) {
            return false;
        }

        if package.name == relation.name {
            return match &relation.constraint {
                None => true,
                Some((operator, version)) => operator.accepts(&package.version, version),
            };
        }

        // An unversioned Provides never satisfies a versioned dependency.
        package.provides.iter().flatten().any(|provided| {
            provided.name == relation.name
                && match (&relation.constraint, &provided.constraint) {
                    (None, _) => true,
                    (Some((operator, wanted)), Some((_, given))) => operator.accepts(given, wanted),
                    (Some(_), None) => false,
                }
        })
    }

    fn architecture_matches(&self, package: &Package, qualifier: &ArchQualifier) -> bool {
        match qualifier {
            ArchQualifier::None | ArchQualifier::Native => true,
            // `:any` requests a package that any architecture may use.
            ArchQualifier::Any => package.multi_arch == MultiArch::Allowed,
            ArchQualifier::Named(architecture) => {
                &package.architecture == architecture || package.architecture == "all"
            }
        }
    }

    /// Returns the candidate apt would install for `relation`: the package
    /// of that name when its candidate satisfies the relation, else the
    /// providing candidate with the highest priority, then the first by name.
    fn choose(&self, relation: &Relation) -> Option<usize> {
        if let Some(&index) = self.candidates.get(relation.name.as_str())
            && self.satisfies(index, relation)
        {
            return Some(index);
        }

        let providers = self.providers.get(relation.name.as_str())?;
        providers
            .iter()
            .map(|&(index, _)| index)
            .filter(|&index| self.satisfies(index, relation))
            .min_by_key(|&index| priority_rank(&self.packages[index].priority))
    }
}

fn priority_rank(priority: &str) -> u8 {
    match priority {
        "required" => 0,
        "important" => 1,
        "standard" => 2,
        "optional" => 3,
        _ => 4,
    }
}

/// Why a package was chosen: the package whose dependency pulled it in, and
/// that dependency as written.
#[derive(Debug, Clone)]
struct Reason {
    parent: String,
    dependency: String,
}

/// The outcome of a resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// Indexes of the packages to install, sorted by package name.
    pub chosen: Vec<usize>,
    /// Requested names that an installed package already satisfies, as
    /// `name version`, in request order.
    pub already_installed: Vec<String>,
}

/// Resolves `requests` on top of the `installed` packages (those of a base
/// image, empty for a fresh image).
///
/// An installed package of the native architecture or `all` satisfies a
/// dependency as a chosen one does, so it pulls nothing in. A requested
/// name that an installed package has or provides is not installed again,
/// whatever the candidate's version, because apt would keep it too.
pub fn resolve(universe: &Universe, installed: &[Package], requests: &[String]) -> Result<Resolution, ResolveError> {
    let installed: Vec<&Package> = installed
        .iter()
        .filter(|package| package.architecture == universe.architecture || package.architecture == "all")
        .collect();
    let mut selected: BTreeMap<&str, usize> = BTreeMap::new();
    let mut reasons: HashMap<String, Reason> = HashMap::new();
    let mut queue = VecDeque::new();
    let mut already_installed = Vec::new();

    for name in requests {
        let request = Relation { name: name.clone(), qualifier: ArchQualifier::None, constraint: None };
        if let Some(package) = installed.iter().find(|package| universe.package_satisfies(package, &request)) {
            already_installed.push(format!("{} {}", package.name, package.version));
            continue;
        }

        let index = requested_candidate(universe, name)?;
        if selected.insert(&universe.packages[index].name, index).is_none() {
            queue.push_back(index);
        }
    }

    while let Some(index) = queue.pop_front() {
        let package = universe.package(index);
        for group in package.pre_depends.iter().chain(&package.depends) {
            let by_installed = installed
                .iter()
                .any(|&installed| group.iter().any(|relation| universe.package_satisfies(installed, relation)));
            let satisfied = by_installed
                || selected.values().any(|&chosen| group.iter().any(|relation| universe.satisfies(chosen, relation)));
            if satisfied {
                continue;
            }

            let Some(choice) = group.iter().find_map(|relation| universe.choose(relation)) else {
                return Err(ResolveError::Unsatisfiable {
                    package: package.name.clone(),
                    dependency: format_group(group),
                    chain: chain(&reasons, &package.name, Some(&format_group(group))),
                });
            };

            let chosen = universe.package(choice);
            selected.insert(&chosen.name, choice);
            reasons
                .insert(chosen.name.clone(), Reason { parent: package.name.clone(), dependency: format_group(group) });
            queue.push_back(choice);
        }
    }

    check_conflicts(universe, &selected, &reasons)?;
    check_installed_conflicts(universe, &installed, &selected, &reasons)?;
    Ok(Resolution { chosen: selected.into_values().collect(), already_installed })
}

/// Returns the candidate for a requested name, or the only provider of a
/// virtual name, as apt does on its command line.
fn requested_candidate(universe: &Universe, name: &str) -> Result<usize, ResolveError> {
    if let Some(&index) = universe.candidates.get(name) {
        return Ok(index);
    }

    match universe.providers.get(name).map(Vec::as_slice) {
        Some([(index, _)]) => Ok(*index),
        Some(providers) if !providers.is_empty() => Err(ResolveError::Virtual {
            name: name.to_owned(),
            providers: providers
                .iter()
                .map(|(index, _)| format!("`{}`", universe.packages[*index].name))
                .collect::<Vec<_>>()
                .join(", "),
        }),
        _ => Err(ResolveError::NotFound { name: name.to_owned(), architecture: universe.architecture.clone() }),
    }
}

/// Fails when a chosen package conflicts with or breaks another chosen one.
/// A package's relations never count against itself, so the
/// Provides/Conflicts/Replaces idiom for a virtual name stays valid.
fn check_conflicts(
    universe: &Universe,
    selected: &BTreeMap<&str, usize>,
    reasons: &HashMap<String, Reason>,
) -> Result<(), ResolveError> {
    for &index in selected.values() {
        let package = universe.package(index);
        let relations = package
            .conflicts
            .iter()
            .map(|group| ("conflicts with", group))
            .chain(package.breaks.iter().map(|group| ("breaks", group)));

        for (relation_name, group) in relations {
            for relation in group {
                let hit = selected.values().find(|&&other| other != index && universe.satisfies(other, relation));
                if let Some(&other) = hit {
                    let other_name = &universe.package(other).name;
                    return Err(ResolveError::Conflict {
                        package: package.name.clone(),
                        other: other_name.clone(),
                        relation: format!("{relation_name} `{relation}`"),
                        chains: format!(
                            "  chain: {}\n  chain: {}",
                            chain(reasons, &package.name, None),
                            chain(reasons, other_name, None)
                        ),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Fails when a chosen package conflicts with or breaks an installed one.
/// apt would remove or upgrade the installed package, but kuul only adds a
/// layer on top of the base and cannot change what the base contains.
fn check_installed_conflicts(
    universe: &Universe,
    installed: &[&Package],
    selected: &BTreeMap<&str, usize>,
    reasons: &HashMap<String, Reason>,
) -> Result<(), ResolveError> {
    for &index in selected.values() {
        let package = universe.package(index);
        let relations = package
            .conflicts
            .iter()
            .map(|group| ("conflicts with", group))
            .chain(package.breaks.iter().map(|group| ("breaks", group)));

        for (relation_name, group) in relations {
            for relation in group {
                let hit = installed.iter().find(|installed| {
                    installed.name != package.name && universe.package_satisfies(installed, relation)
                });
                if let Some(other) = hit {
                    return Err(ResolveError::Conflict {
                        package: package.name.clone(),
                        other: format!("{} {}", other.name, other.version),
                        relation: format!("{relation_name} `{relation}`"),
                        chains: format!(
                            "  chain: {}\n  chain: `{}` is installed in the base image",
                            chain(reasons, &package.name, None),
                            other.name
                        ),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Writes the chain from a requested package down to `name`, followed by
/// `last` when given.
fn chain(reasons: &HashMap<String, Reason>, name: &str, last: Option<&str>) -> String {
    let mut steps = Vec::new();
    if let Some(last) = last {
        steps.push(last.to_owned());
    }

    let mut current = name.to_owned();
    let mut hops = 0;
    while let Some(reason) = reasons.get(&current) {
        steps.push(reason.dependency.clone());
        current = reason.parent.clone();
        hops += 1;
        if hops > reasons.len() {
            break;
        }
    }
    steps.push(current);
    steps.reverse();
    steps.join(" -> ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::debian::index::parse_packages;

    fn universe_from(text: &str) -> Vec<Package> {
        let (mut packages, mut invalid) = (Vec::new(), Vec::new());
        parse_packages(text, &mut packages, &mut invalid);
        assert!(invalid.is_empty(), "{invalid:?}");
        packages
    }

    fn stanza(name: &str, version: &str, extra: &str) -> String {
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: amd64\nFilename: pool/{name}_{version}.deb\nSize: 1\nSHA256: 00\n{extra}\n"
        )
    }

    fn names(universe: &Universe, resolved: &[usize]) -> Vec<String> {
        resolved.iter().map(|&index| universe.package(index).name.clone()).collect()
    }

    fn resolve_names(text: &str, requests: &[&str]) -> Result<Vec<String>, ResolveError> {
        let packages = universe_from(text);
        let universe = Universe::new(&packages, "amd64");
        let requests: Vec<String> = requests.iter().map(|name| name.to_string()).collect();
        resolve(&universe, &[], &requests).map(|resolution| names(&universe, &resolution.chosen))
    }

    #[test]
    fn depends_and_pre_depends_followed() {
        let text = [
            stanza("app", "1", "Pre-Depends: libc6\nDepends: libfoo (>= 2)"),
            stanza("libc6", "2.36", ""),
            stanza("libfoo", "2.1", "Depends: libc6 (>= 2.34)"),
        ]
        .join("\n");

        assert_eq!(resolve_names(&text, &["app"]).unwrap(), ["app", "libc6", "libfoo"]);
    }

    #[test]
    fn recommends_ignored() {
        let text = [stanza("app", "1", "Recommends: extra"), stanza("extra", "1", "")].join("\n");

        assert_eq!(resolve_names(&text, &["app"]).unwrap(), ["app"]);
    }

    #[test]
    fn essential_only_when_depended_on() {
        let text = [stanza("app", "1", ""), stanza("bash", "5", "Essential: yes")].join("\n");

        assert_eq!(resolve_names(&text, &["app"]).unwrap(), ["app"]);
    }

    #[test]
    fn highest_version_is_candidate() {
        let text =
            [stanza("app", "1", "Depends: lib"), stanza("lib", "1.0", ""), stanza("lib", "1.0+deb12u1", "")].join("\n");
        let packages = universe_from(&text);
        let universe = Universe::new(&packages, "amd64");
        let resolved = resolve(&universe, &[], &["app".to_owned()]).unwrap().chosen;

        assert_eq!(universe.package(resolved[1]).version.to_string(), "1.0+deb12u1");
    }

    #[test]
    fn first_satisfiable_alternative_chosen() {
        let text = [
            stanza("app", "1", "Depends: missing | second | third"),
            stanza("second", "1", ""),
            stanza("third", "1", ""),
        ]
        .join("\n");

        assert_eq!(resolve_names(&text, &["app"]).unwrap(), ["app", "second"]);
    }

    #[test]
    fn alternative_already_chosen_preferred() {
        let text = [
            stanza("app", "1", "Depends: first | second, second"),
            stanza("first", "1", ""),
            stanza("second", "1", ""),
        ]
        .join("\n");

        // `second` is only queued after the first group is processed, so the
        // first group picks `first`, as apt does for a fresh install.
        assert_eq!(resolve_names(&text, &["app"]).unwrap(), ["app", "first", "second"]);
    }

    #[test]
    fn virtual_package_through_provides() {
        let text =
            [stanza("app", "1", "Depends: mail-transport-agent"), stanza("mta", "1", "Provides: mail-transport-agent")]
                .join("\n");

        assert_eq!(resolve_names(&text, &["app"]).unwrap(), ["app", "mta"]);
    }

    #[test]
    fn versioned_provides_satisfy_versioned_depends() {
        let text = [
            stanza("app", "1", "Depends: libapi (>= 2)"),
            stanza("old", "1", "Provides: libapi"),
            stanza("new", "1", "Provides: libapi (= 2.5)"),
        ]
        .join("\n");

        assert_eq!(resolve_names(&text, &["app"]).unwrap(), ["app", "new"]);
    }

    #[test]
    fn any_qualifier_needs_multi_arch_allowed() {
        let allowed = [stanza("app", "1", "Depends: perl:any"), stanza("perl", "5", "Multi-Arch: allowed")].join("\n");
        let plain = [stanza("app", "1", "Depends: perl:any"), stanza("perl", "5", "")].join("\n");

        assert_eq!(resolve_names(&allowed, &["app"]).unwrap(), ["app", "perl"]);
        assert!(matches!(resolve_names(&plain, &["app"]), Err(ResolveError::Unsatisfiable { .. })));
    }

    #[test]
    fn unsatisfiable_reports_chain() {
        let text = [
            stanza("app", "1", "Depends: lib (>= 1)"),
            stanza("lib", "1", "Depends: libc6 (>= 9)"),
            stanza("libc6", "2", ""),
        ]
        .join("\n");
        let error = resolve_names(&text, &["app"]).unwrap_err();

        assert_eq!(
            error,
            ResolveError::Unsatisfiable {
                package: "lib".to_owned(),
                dependency: "libc6 (>= 9)".to_owned(),
                chain: "app -> lib (>= 1) -> libc6 (>= 9)".to_owned(),
            }
        );
    }

    #[test]
    fn conflict_between_chosen_packages_fails() {
        let text = [stanza("a", "1", "Conflicts: b"), stanza("b", "1", "")].join("\n");
        let error = resolve_names(&text, &["a", "b"]).unwrap_err();

        assert!(
            matches!(error, ResolveError::Conflict { ref package, ref other, .. } if package == "a" && other == "b"),
            "{error}"
        );
    }

    #[test]
    fn breaks_with_version_respected() {
        let text = [stanza("a", "1", "Breaks: b (<< 2)"), stanza("b", "2", "")].join("\n");

        assert_eq!(resolve_names(&text, &["a", "b"]).unwrap(), ["a", "b"]);
    }

    #[test]
    fn self_conflict_through_provides_allowed() {
        let text = stanza("mta", "1", "Provides: mail-transport-agent\nConflicts: mail-transport-agent");

        assert_eq!(resolve_names(&text, &["mta"]).unwrap(), ["mta"]);
    }

    #[test]
    fn unknown_request_not_found() {
        let error = resolve_names(&stanza("a", "1", ""), &["nope"]).unwrap_err();

        assert!(matches!(error, ResolveError::NotFound { .. }));
    }

    #[test]
    fn foreign_architecture_ignored() {
        let text = stanza("a", "1", "").replace("amd64", "arm64");

        assert!(matches!(resolve_names(&text, &["a"]), Err(ResolveError::NotFound { .. })));
    }

    /// Resolves `requests` with the packages of `installed_text` (a dpkg
    /// status file) installed.
    fn resolve_on_base(
        text: &str,
        installed_text: &str,
        requests: &[&str],
    ) -> Result<(Vec<String>, Vec<String>), ResolveError> {
        let packages = universe_from(text);
        let (mut installed, mut invalid) = (Vec::new(), Vec::new());
        crate::sources::debian::installed::parse_status(installed_text, &mut installed, &mut invalid);
        assert!(invalid.is_empty(), "{invalid:?}");
        let universe = Universe::new(&packages, "amd64");
        let requests: Vec<String> = requests.iter().map(|name| name.to_string()).collect();
        let resolution = resolve(&universe, &installed, &requests)?;
        Ok((names(&universe, &resolution.chosen), resolution.already_installed))
    }

    fn status(name: &str, version: &str, extra: &str) -> String {
        format!("Package: {name}\nStatus: install ok installed\nVersion: {version}\nArchitecture: amd64\n{extra}\n")
    }

    #[test]
    fn installed_dependency_pulls_nothing() {
        let text = [stanza("app", "1", "Depends: libc6 (>= 2.34)"), stanza("libc6", "2.36", "")].join("\n");
        let (chosen, _) = resolve_on_base(&text, &status("libc6", "2.36", ""), &["app"]).unwrap();

        assert_eq!(chosen, ["app"]);
    }

    #[test]
    fn installed_too_old_pulls_candidate() {
        let text = [stanza("app", "1", "Depends: libc6 (>= 2.36)"), stanza("libc6", "2.36", "")].join("\n");
        let (chosen, _) = resolve_on_base(&text, &status("libc6", "2.31", ""), &["app"]).unwrap();

        assert_eq!(chosen, ["app", "libc6"]);
    }

    #[test]
    fn installed_provides_satisfies_virtual() {
        let text = [stanza("app", "1", "Depends: awk"), stanza("gawk", "5", "Provides: awk")].join("\n");
        let (chosen, _) = resolve_on_base(&text, &status("mawk", "1.3", "Provides: awk"), &["app"]).unwrap();

        assert_eq!(chosen, ["app"]);
    }

    #[test]
    fn installed_request_not_reinstalled() {
        let text = [stanza("busybox", "1.36", ""), stanza("app", "1", "")].join("\n");
        let (chosen, skipped) = resolve_on_base(&text, &status("busybox", "1.35", ""), &["busybox", "app"]).unwrap();

        assert_eq!(chosen, ["app"]);
        assert_eq!(skipped, ["busybox 1.35"]);
    }

    #[test]
    fn installed_not_fully_installed_ignored() {
        let text = [stanza("app", "1", "Depends: libc6"), stanza("libc6", "2.36", "")].join("\n");
        let half = "Package: libc6\nStatus: install ok half-configured\nVersion: 2.36\nArchitecture: amd64\n";
        let (chosen, _) = resolve_on_base(&text, half, &["app"]).unwrap();

        assert_eq!(chosen, ["app", "libc6"]);
    }

    #[test]
    fn installed_foreign_architecture_ignored() {
        let text = [stanza("app", "1", "Depends: libc6"), stanza("libc6", "2.36", "")].join("\n");
        let foreign = status("libc6", "2.36", "").replace("amd64", "i386");
        let (chosen, _) = resolve_on_base(&text, &foreign, &["app"]).unwrap();

        assert_eq!(chosen, ["app", "libc6"]);
    }

    #[test]
    fn conflict_with_installed_fails() {
        let text = stanza("app", "1", "Conflicts: mawk");
        let error = resolve_on_base(&text, &status("mawk", "1.3", ""), &["app"]).unwrap_err();

        assert!(
            matches!(error, ResolveError::Conflict { ref package, ref other, .. } if package == "app" && other == "mawk 1.3"),
            "{error}"
        );
    }
}
