//! The report as data: headings, paragraphs, tables, charts. The content is
//! built once and rendered twice, as Markdown and as HTML, so the two
//! renderings cannot disagree on a figure.

/// A run of text inside a paragraph, list item or table cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Inline {
    Text(String),
    /// An identifier or a command line, shown verbatim.
    Code(String),
    Link {
        text: String,
        href: String,
    },
}

/// How a table cell is shaded in HTML (Markdown has no colour).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tone {
    #[default]
    Plain,
    Good,
    Bad,
    /// Nothing to show: a group a runtime has no cases in.
    Faint,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cell {
    pub spans: Vec<Inline>,
    pub tone: Tone,
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell {
            spans: vec![Inline::Text(s.into())],
            tone: Tone::Plain,
        }
    }

    pub fn code(s: impl Into<String>) -> Cell {
        Cell {
            spans: vec![Inline::Code(s.into())],
            tone: Tone::Plain,
        }
    }

    pub fn tone(mut self, tone: Tone) -> Cell {
        self.tone = tone;
        self
    }

    /// The cell's text without markup, for tests and widths.
    pub fn plain(&self) -> String {
        self.spans
            .iter()
            .map(|s| match s {
                Inline::Text(t) | Inline::Code(t) => t.as_str(),
                Inline::Link { text, .. } => text.as_str(),
            })
            .collect()
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::text(s)
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::text(s)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub head: Vec<String>,
    /// Right-aligned columns (figures), by index.
    pub numeric: Vec<bool>,
    pub rows: Vec<Vec<Cell>>,
    /// Totals under the rows.
    pub foot: Vec<Vec<Cell>>,
}

impl Table {
    /// A table whose first column is text and the others figures.
    pub fn new(head: Vec<String>) -> Table {
        let numeric = (0..head.len()).map(|i| i > 0).collect();
        Table {
            head,
            numeric,
            rows: Vec::new(),
            foot: Vec::new(),
        }
    }

    /// A table of text columns only.
    pub fn text(head: &[&str]) -> Table {
        Table {
            head: head.iter().map(|h| h.to_string()).collect(),
            numeric: vec![false; head.len()],
            rows: Vec::new(),
            foot: Vec::new(),
        }
    }
}

/// An inline SVG chart with what a reader needs to read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub svg: String,
    pub caption: Vec<Inline>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// Level 1..=4.
    Heading(u8, String),
    Para(Vec<Inline>),
    List(Vec<Vec<Inline>>),
    Table(Table),
    /// HTML only: Markdown readers get the tables and a link to the page.
    Chart(Chart),
    /// Collapsible in HTML; a sub-heading in Markdown.
    Details {
        summary: String,
        body: Vec<Block>,
    },
}

/// Text whose `backticked` parts are code, as the bench's descriptions of
/// its figures are written.
pub fn backticks(s: &str) -> Vec<Inline> {
    s.split('`')
        .enumerate()
        .filter(|(_, part)| !part.is_empty())
        .map(|(i, part)| {
            if i % 2 == 1 {
                Inline::Code(part.to_string())
            } else {
                Inline::Text(part.to_string())
            }
        })
        .collect()
}

impl Block {
    pub fn para(s: impl Into<String>) -> Block {
        Block::Para(vec![Inline::Text(s.into())])
    }

    pub fn heading(level: u8, s: impl Into<String>) -> Block {
        Block::Heading(level, s.into())
    }
}

/// Every chart in `blocks`, nested ones included, in document order.
pub fn charts(blocks: &[Block]) -> Vec<&Chart> {
    let mut v = Vec::new();
    for b in blocks {
        match b {
            Block::Chart(c) => v.push(c),
            Block::Details { body, .. } => v.extend(charts(body)),
            _ => {}
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backticked_parts_are_code() {
        assert_eq!(
            backticks("`run` of `probe true`: create"),
            vec![
                Inline::Code("run".into()),
                Inline::Text(" of ".into()),
                Inline::Code("probe true".into()),
                Inline::Text(": create".into())
            ]
        );
        assert_eq!(backticks("plain"), vec![Inline::Text("plain".into())]);
    }
}
