// SPDX-License-Identifier: GPL-2.0

//! A minimal plain-text table: left-aligned columns two spaces apart.

/// Rows of cells under a header line.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers and no rows.
    pub fn new<I, S>(headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; it should have as many cells as there are headers.
    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.headers.len());
        self.rows.push(row);
    }

    /// Renders the header and rows, each line starting with `indent` and
    /// ending with a newline, with no trailing spaces.
    pub fn render(&self, indent: &str) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.headers).chain(&self.rows) {
            let mut text = String::from(indent);
            for (i, (cell, width)) in line.iter().zip(&widths).enumerate() {
                if i > 0 {
                    text.push_str("  ");
                }
                text.push_str(cell);
                text.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns() {
        let mut t = Table::new(["A", "LONG", "C"]);
        t.push(vec!["1234".into(), "x".into(), "y".into()]);
        t.push(vec!["5".into(), "".into(), "zz".into()]);
        assert_eq!(
            t.render("  "),
            "  A     LONG  C\n  1234  x     y\n  5           zz\n"
        );
    }

    #[test]
    fn renders_an_empty_table_as_its_header() {
        assert_eq!(Table::new(["X", "Y"]).render(""), "X  Y\n");
    }
}
