//! Key paths such as `placement.tolerations[1].effect`, and the lines where
//! they appear in a `kuul.toml`.

use std::fmt;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A path from the document root to a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

impl KeyPath {
    /// Returns this path extended by a table key.
    pub fn key(&self, name: &str) -> KeyPath {
        let mut segments = self.segments.clone();
        segments.push(Segment::Key(name.to_owned()));
        KeyPath { segments }
    }

    /// Returns this path extended by an array index.
    pub fn index(&self, index: usize) -> KeyPath {
        let mut segments = self.segments.clone();
        segments.push(Segment::Index(index));
        KeyPath { segments }
    }

    /// Parses the dotted form that [`KeyPath`]'s `Display` writes, such as
    /// `job.env."A.B"` or `kubernetes.container.volumeMounts[1].name`.
    /// Returns `None` for text that is not such a path.
    pub fn parse(text: &str) -> Option<KeyPath> {
        let mut path = KeyPath::default();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(quoted) = rest.strip_prefix('"') {
                let end = quoted.find('"')?;
                path = path.key(&quoted[..end]);
                rest = &quoted[end + 1..];
            } else {
                let end = rest.find(['.', '[']).unwrap_or(rest.len());
                if end == 0 {
                    return None;
                }
                path = path.key(&rest[..end]);
                rest = &rest[end..];
            }
            while let Some(bracketed) = rest.strip_prefix('[') {
                let end = bracketed.find(']')?;
                path = path.index(bracketed[..end].parse().ok()?);
                rest = &bracketed[end + 1..];
            }
            if let Some(next) = rest.strip_prefix('.') {
                rest = next;
                if rest.is_empty() {
                    return None;
                }
            } else if !rest.is_empty() {
                return None;
            }
        }
        Some(path)
    }
}

/// Dotted TOML form. Keys that are not bare keys are quoted, as in
/// `job.env."A.B"`.
impl fmt::Display for KeyPath {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Index(index) => write!(formatter, "[{index}]")?,
                Segment::Key(name) => {
                    if position > 0 {
                        formatter.write_str(".")?;
                    }
                    if is_bare_key(name) {
                        formatter.write_str(name)?;
                    } else {
                        write!(formatter, "{name:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn is_bare_key(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-'))
}

/// A parsed document with byte spans, for finding keys by path.
pub struct Document<'a> {
    text: &'a str,
    root: Option<Spanned<DeTable<'a>>>,
}

impl<'a> Document<'a> {
    /// Parses `text`. A document with syntax errors finds no keys, but still
    /// converts offsets to lines.
    pub fn parse(text: &'a str) -> Document<'a> {
        Document { text, root: DeTable::parse(text).ok() }
    }

    /// Returns the 1-based line of the byte offset.
    pub fn line_of_offset(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end].iter().filter(|byte| **byte == b'\n').count() + 1
    }

    /// Returns the line where `path` is written. When only a prefix of the
    /// path is in the document (a missing key that has a default), returns
    /// the line of the longest prefix found.
    pub fn line_of(&self, path: &KeyPath) -> Option<usize> {
        let root = self.root.as_ref()?;
        let mut table = Some(root.get_ref());
        let mut array: Option<&[Spanned<DeValue<'a>>]> = None;
        let mut found: Option<Range<usize>> = None;

        for segment in &path.segments {
            let value = match segment {
                Segment::Key(name) => {
                    let Some((key, value)) = table.and_then(|table| find_entry(table, name)) else {
                        break;
                    };
                    found = Some(key.span());
                    value
                }
                Segment::Index(index) => {
                    let Some(value) = array.and_then(|items| items.get(*index)) else {
                        break;
                    };
                    found = Some(value.span());
                    value
                }
            };
            table = value.get_ref().as_table();
            array = value.get_ref().as_array().map(|items| &items[..]);
        }

        found.map(|span| self.line_of_offset(span.start))
    }

    /// Returns the path of the innermost key or array item whose span
    /// contains the byte offset, for errors that carry only a span. The
    /// search visits every entry, because a table opened by a `[header]`
    /// spans only its header line, not the keys below it.
    pub fn path_at(&self, offset: usize) -> KeyPath {
        let mut path = KeyPath::default();
        if let Some(root) = &self.root {
            search_table(root.get_ref(), offset, &mut Vec::new(), &mut path);
        }
        path
    }
}

/// Depth-first search that keeps the deepest match in `best`.
fn search_table(table: &DeTable<'_>, offset: usize, current: &mut Vec<Segment>, best: &mut KeyPath) {
    for (key, value) in table.iter() {
        current.push(Segment::Key(key.get_ref().to_string()));
        if contains(key.span(), offset) || contains(value.span(), offset) {
            keep_if_deeper(current, best);
        }
        search_value(value.get_ref(), offset, current, best);
        current.pop();
    }
}

fn search_value(value: &DeValue<'_>, offset: usize, current: &mut Vec<Segment>, best: &mut KeyPath) {
    match value {
        DeValue::Table(table) => search_table(table, offset, current, best),
        DeValue::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                current.push(Segment::Index(index));
                if contains(item.span(), offset) {
                    keep_if_deeper(current, best);
                }
                search_value(item.get_ref(), offset, current, best);
                current.pop();
            }
        }
        _ => {}
    }
}

fn keep_if_deeper(current: &[Segment], best: &mut KeyPath) {
    if current.len() > best.segments.len() {
        best.segments = current.to_vec();
    }
}

fn find_entry<'d, 'a>(
    table: &'d DeTable<'a>,
    name: &str,
) -> Option<(&'d Spanned<toml::de::DeString<'a>>, &'d Spanned<DeValue<'a>>)> {
    table.iter().find(|(key, _)| key.get_ref().as_ref() == name)
}

fn contains(span: Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_display_form() {
        for text in ["job.schedule", "job.env.\"A.B\"", "kubernetes.container.volumeMounts[1].name", "a[0][2].b"] {
            let path = KeyPath::parse(text).unwrap();

            assert_eq!(path.to_string(), text);
        }
    }

    #[test]
    fn parse_rejects_malformed_paths() {
        for text in ["job.", ".job", "a[x]", "a[1", "\"open"] {
            assert_eq!(KeyPath::parse(text), None, "{text}");
        }
    }

    #[test]
    fn line_of_parsed_path() {
        let text = "[job]\nname = \"x\"\n\n[kubernetes.container]\nvolumeMounts = [\n  { name = \"a\" },\n  { name = \"b\" },\n]\n";
        let document = Document::parse(text);

        let line = document.line_of(&KeyPath::parse("kubernetes.container.volumeMounts[1].name").unwrap());

        assert_eq!(line, Some(7));
    }
}
