//! Aligned text tables in the style of `kubectl get`: upper-case headers,
//! columns separated by at least two spaces.

/// Renders `header` and `rows` with every column as wide as its widest
/// cell. Trailing spaces are trimmed from each line.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|cell| cell.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }

    let mut out = String::new();
    let header_cells: Vec<String> = header.iter().map(|cell| cell.to_string()).collect();
    for row in std::iter::once(&header_cells).chain(rows) {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(cell);
            line.push_str(&" ".repeat(width - cell.chars().count() + 2));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn render_aligns_columns() {
        let rows = vec![vec!["backup".to_owned(), "1".to_owned()], vec!["a".to_owned(), "22".to_owned()]];

        assert_eq!(render(&["NAME", "N"], &rows), "NAME    N\nbackup  1\na       22\n");
    }
}
