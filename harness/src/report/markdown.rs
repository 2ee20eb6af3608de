//! The document as GitHub-flavoured Markdown: tables, no charts.

use std::fmt::Write;

use super::doc::{Block, Cell, Inline, Table};

/// Backslash-escapes what Markdown would read as markup, and only that,
/// so the raw file stays readable: `\\`, `` ` ``, `|` (a table's cell
/// separator) always; `*` and `_` unless they cannot open or close
/// emphasis (inside a word, or between spaces); `<` before what could be
/// a tag; `[` first (a task box) and `]` before `(`, `[` or `:` (a link);
/// `&` before what could be an entity; `>`, `#`, `*`, `-` and `+` first
/// (a quote, a heading, a list item). Newlines become spaces: every text here is one line of a
/// paragraph or a table row.
pub fn escape(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut o = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        let before = i.checked_sub(1).map(|j| chars[j]);
        let after = chars.get(i + 1).copied();
        let word = |x: Option<char>| x.is_some_and(char::is_alphanumeric);
        let space = |x: Option<char>| x.is_none_or(char::is_whitespace);
        let escape = match c {
            '\\' | '`' | '|' => true,
            '_' => !((word(before) && word(after)) || (space(before) && space(after))),
            '*' => i == 0 || !(space(before) && space(after)),
            '-' | '+' => i == 0 && space(after),
            '<' => after.is_some_and(|a| a.is_ascii_alphabetic() || "/!?".contains(a)),
            '[' | '>' | '#' => i == 0,
            ']' => after.is_some_and(|a| "([:".contains(a)),
            '&' => after.is_some_and(|a| a.is_alphanumeric() || a == '#'),
            _ => false,
        };
        match c {
            '\n' | '\r' => o.push(' '),
            c if escape => {
                o.push('\\');
                o.push(c);
            }
            c => o.push(c),
        }
    }
    o
}

/// A code span that survives any backticks inside, and `|` in a table.
fn code(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ");
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{}{pad}{fence}", s.replace('|', "\\|"))
}

fn inline(spans: &[Inline]) -> String {
    spans
        .iter()
        .map(|s| match s {
            Inline::Text(t) => escape(t),
            Inline::Code(t) => code(t),
            Inline::Link { text, href } => format!("[{}](<{}>)", escape(text), href.replace(['<', '>', ' '], "")),
        })
        .collect()
}

fn row(out: &mut String, cells: impl Iterator<Item = String>) {
    out.push('|');
    for c in cells {
        let _ = write!(out, " {} |", if c.is_empty() { " ".into() } else { c });
    }
    out.push('\n');
}

fn table(out: &mut String, t: &Table) {
    row(out, t.head.iter().map(|h| escape(h)));
    row(
        out,
        (0..t.head.len()).map(|i| if t.numeric.get(i) == Some(&true) { "---:" } else { "---" }.to_string()),
    );
    let cell = |c: &Cell| inline(&c.spans);
    for r in &t.rows {
        row(out, r.iter().map(cell));
    }
    // Markdown tables have no footer: the totals are set in bold.
    for r in &t.foot {
        row(
            out,
            r.iter().map(|c| match cell(c) {
                s if s.trim().is_empty() => s,
                s => format!("**{s}**"),
            }),
        );
    }
    out.push('\n');
}

fn blocks(out: &mut String, bs: &[Block]) {
    for b in bs {
        match b {
            Block::Heading(level, text) => {
                let _ = writeln!(
                    out,
                    "{} {}\n",
                    "#".repeat(usize::from((*level).clamp(1, 6))),
                    escape(text)
                );
            }
            Block::Para(spans) => {
                let _ = writeln!(out, "{}\n", inline(spans));
            }
            Block::List(items) => {
                for i in items {
                    let _ = writeln!(out, "- {}", inline(i));
                }
                out.push('\n');
            }
            Block::Table(t) => table(out, t),
            Block::Chart(_) => {}
            Block::Details { summary, body } => {
                let _ = writeln!(out, "#### {}\n", escape(summary));
                blocks(out, body);
            }
        }
    }
}

pub fn render(doc: &[Block]) -> String {
    let mut out = String::new();
    blocks(&mut out, doc);
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_tables_and_text_intact() {
        assert_eq!(escape("a|b"), "a\\|b");
        assert_eq!(escape("<b> *x* [y](z) [\"a\"]"), "\\<b> \\*x\\* [y\\](z) [\"a\"]");
        assert_eq!(escape("[ ] > # x"), "\\[ ] > # x");
        assert_eq!(escape("> q"), "\\> q");
        assert_eq!(escape("* note - x"), "\\* note - x");
        assert_eq!(escape("- x"), "\\- x");
        assert_eq!(escape("1.2 ms * and 3 < 4"), "1.2 ms * and 3 < 4");
        assert_eq!(escape("create_does_not_run"), "create_does_not_run");
        assert_eq!(escape("_x_ a\\b"), "\\_x\\_ a\\\\b");
        assert_eq!(escape("AT&T &amp; & co"), "AT\\&T \\&amp; & co");
        assert_eq!(escape("two\nlines"), "two lines");
        assert_eq!(code("a|b"), "`a\\|b`");
        assert_eq!(code("x `y`"), "`` x `y` ``");
    }

    #[test]
    fn tables_align_and_bold_the_totals() {
        let mut t = Table::new(vec!["group".into(), "run|c".into()]);
        t.rows.push(vec![Cell::code("state"), Cell::text("1/2/0")]);
        t.foot.push(vec![Cell::text("total"), Cell::text("1/2/0")]);
        let md = render(&[Block::heading(2, "Matrix"), Block::Table(t)]);
        assert_eq!(
            md,
            "## Matrix\n\n| group | run\\|c |\n| --- | ---: |\n| `state` | 1/2/0 |\n| **total** | **1/2/0** |\n"
        );
    }
}
