//! Debian control-file syntax (deb822): stanzas of `Field: value` lines,
//! continuation lines that start with a space or tab, and the relation
//! fields (`Depends`, `Provides`, ...) of Debian Policy 7.1.

use std::cmp::Ordering;

use debversion::Version;

/// Splits `text` into stanzas separated by blank lines, and calls `visit`
/// with the fields of each as `(name, value)` pairs. Values of multiline
/// fields keep their inner newlines; the leading space of each continuation
/// line is kept as well.
pub fn for_each_stanza<'a>(text: &'a str, mut visit: impl FnMut(&[(&'a str, &'a str)])) {
    let mut fields: Vec<(&str, &str)> = Vec::with_capacity(32);
    let mut current: Option<(&str, usize, usize)> = None;
    let mut offset = 0;

    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let content = line.trim_end_matches(['\n', '\r']);

        if content.trim().is_empty() {
            flush(text, &mut current, &mut fields);
            if !fields.is_empty() {
                visit(&fields);
                fields.clear();
            }
            continue;
        }
        if content.starts_with('#') {
            continue;
        }
        if content.starts_with([' ', '\t']) {
            if let Some((_, _, end)) = current.as_mut() {
                *end = start + content.len();
            }
            continue;
        }

        flush(text, &mut current, &mut fields);
        if let Some(colon) = content.find(':') {
            let value_start = start + colon + 1;
            current = Some((&content[..colon], value_start, start + content.len()));
        }
    }

    flush(text, &mut current, &mut fields);
    if !fields.is_empty() {
        visit(&fields);
    }
}

fn flush<'a>(text: &'a str, current: &mut Option<(&'a str, usize, usize)>, fields: &mut Vec<(&'a str, &'a str)>) {
    if let Some((name, start, end)) = current.take() {
        fields.push((name, text[start..end].trim()));
    }
}

/// Returns the value of field `name` (case-insensitive, as Debian Policy requires).
pub fn field<'a>(fields: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| *value)
}

/// A version relation operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Earlier,
    EarlierOrEqual,
    Equal,
    LaterOrEqual,
    Later,
}

impl Operator {
    fn parse(text: &str) -> Option<Operator> {
        match text {
            "<<" => Some(Operator::Earlier),
            "<=" | "<" => Some(Operator::EarlierOrEqual),
            "=" => Some(Operator::Equal),
            ">=" | ">" => Some(Operator::LaterOrEqual),
            ">>" => Some(Operator::Later),
            _ => None,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Operator::Earlier => "<<",
            Operator::EarlierOrEqual => "<=",
            Operator::Equal => "=",
            Operator::LaterOrEqual => ">=",
            Operator::Later => ">>",
        }
    }

    /// Reports whether `candidate` stands in this relation to `wanted`.
    pub fn accepts(self, candidate: &Version, wanted: &Version) -> bool {
        let ordering = candidate.cmp(wanted);
        match self {
            Operator::Earlier => ordering == Ordering::Less,
            Operator::EarlierOrEqual => ordering != Ordering::Greater,
            Operator::Equal => ordering == Ordering::Equal,
            Operator::LaterOrEqual => ordering != Ordering::Less,
            Operator::Later => ordering == Ordering::Greater,
        }
    }
}

/// The architecture qualifier of a relation, such as `python3:any`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchQualifier {
    None,
    Any,
    Native,
    Named(String),
}

/// One package in a relation field, such as `libc6 (>= 2.34)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub name: String,
    pub qualifier: ArchQualifier,
    pub constraint: Option<(Operator, Version)>,
}

impl std::fmt::Display for Relation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        match &self.qualifier {
            ArchQualifier::None => {}
            ArchQualifier::Any => f.write_str(":any")?,
            ArchQualifier::Native => f.write_str(":native")?,
            ArchQualifier::Named(architecture) => write!(f, ":{architecture}")?,
        }
        if let Some((operator, version)) = &self.constraint {
            write!(f, " ({} {version})", operator.symbol())?;
        }
        Ok(())
    }
}

/// A relation field: a list of groups, where each group is satisfied by any
/// one of its alternatives (`a | b`).
pub type Relations = Vec<Vec<Relation>>;

/// Formats one group of alternatives as it is written in a control file.
pub fn format_group(group: &[Relation]) -> String {
    group.iter().map(ToString::to_string).collect::<Vec<_>>().join(" | ")
}

/// Parses a relation field. Architecture restrictions (`[amd64]`) and build
/// profiles (`<!nocheck>`) are dropped, because they only occur in source
/// packages. Returns the first malformed part as the error.
pub fn parse_relations(text: &str) -> Result<Relations, String> {
    let mut groups = Vec::new();
    for group in text.split(',') {
        let group = group.trim();
        if group.is_empty() {
            continue;
        }

        let mut alternatives = Vec::new();
        for alternative in group.split('|') {
            alternatives.push(parse_relation(alternative.trim())?);
        }
        groups.push(alternatives);
    }
    Ok(groups)
}

fn parse_relation(text: &str) -> Result<Relation, String> {
    let text = strip_restrictions(text);
    let (name_part, constraint_part) = match text.find('(') {
        Some(open) => (text[..open].trim(), Some(&text[open..])),
        None => (text.trim(), None),
    };

    let (name, qualifier) = match name_part.split_once(':') {
        None => (name_part, ArchQualifier::None),
        Some((name, "any")) => (name, ArchQualifier::Any),
        Some((name, "native")) => (name, ArchQualifier::Native),
        Some((name, architecture)) => (name, ArchQualifier::Named(architecture.to_owned())),
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(text.to_owned());
    }

    let constraint = match constraint_part {
        None => None,
        Some(part) => {
            let inner = part.strip_prefix('(').and_then(|rest| rest.trim_end().strip_suffix(')'));
            let inner = inner.ok_or_else(|| text.to_owned())?.trim();
            let split = inner.find(|c: char| !matches!(c, '<' | '>' | '=')).unwrap_or(inner.len());
            let operator = Operator::parse(&inner[..split]).ok_or_else(|| text.to_owned())?;
            let version = inner[split..].trim().parse::<Version>().map_err(|_| text.to_owned())?;
            Some((operator, version))
        }
    };

    Ok(Relation { name: name.to_owned(), qualifier, constraint })
}

/// Cuts `text` at the first `[` or `<` outside the version constraint's
/// parentheses, where architecture restrictions and build profiles start.
fn strip_restrictions(text: &str) -> &str {
    let mut in_constraint = false;
    for (index, c) in text.char_indices() {
        match c {
            '(' => in_constraint = true,
            ')' => in_constraint = false,
            '[' | '<' if !in_constraint => return text[..index].trim(),
            _ => {}
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(text: &str) -> Version {
        text.parse().unwrap()
    }

    #[test]
    fn stanzas_split_on_blank_lines() {
        let text = "Package: a\nVersion: 1\n\nPackage: b\nDescription: short\n long line\n .\n more\n";
        let mut seen = Vec::new();
        for_each_stanza(text, |fields| seen.push(fields.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>()));

        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0], ["Package=a", "Version=1"]);
        assert_eq!(seen[1], ["Package=b", "Description=short\n long line\n .\n more"]);
    }

    #[test]
    fn field_lookup_ignores_case() {
        let fields = [("Package", "busybox"), ("Multi-Arch", "foreign")];

        assert_eq!(field(&fields, "multi-arch"), Some("foreign"));
        assert_eq!(field(&fields, "Depends"), None);
    }

    #[test]
    fn relations_with_versions_and_alternatives() {
        let relations = parse_relations("libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, perl:any").unwrap();

        assert_eq!(relations.len(), 3);
        assert_eq!(relations[0][0].constraint, Some((Operator::LaterOrEqual, version("2.34"))));
        assert_eq!(relations[1].len(), 2);
        assert_eq!(relations[1][1].name, "debconf-2.0");
        assert_eq!(relations[2][0].qualifier, ArchQualifier::Any);
    }

    #[test]
    fn relations_tolerate_missing_spaces() {
        let relations = parse_relations("foo(<<2.0~),bar (=1:1.2-3)").unwrap();

        assert_eq!(relations[0][0].constraint, Some((Operator::Earlier, version("2.0~"))));
        assert_eq!(relations[1][0].constraint, Some((Operator::Equal, version("1:1.2-3"))));
    }

    #[test]
    fn relations_drop_architecture_restrictions() {
        let relations = parse_relations("libfoo [amd64] <!nocheck>, bar (>= 1) [!i386]").unwrap();

        assert_eq!(relations[0][0].name, "libfoo");
        assert_eq!(relations[1][0].constraint, Some((Operator::LaterOrEqual, version("1"))));
    }

    #[test]
    fn relations_reject_bad_operator() {
        assert!(parse_relations("foo (~= 1)").is_err());
    }

    #[test]
    fn operators_compare_debian_versions() {
        assert!(Operator::LaterOrEqual.accepts(&version("1.0-1"), &version("1.0~rc1")));
        assert!(Operator::Earlier.accepts(&version("1:0.9"), &version("2:0.1")));
        assert!(!Operator::Later.accepts(&version("1.0"), &version("1.0")));
    }

    #[test]
    fn relation_display_round_trips() {
        let relations = parse_relations("python3:any (>= 3.11~)").unwrap();

        assert_eq!(relations[0][0].to_string(), "python3:any (>= 3.11~)");
    }
}
